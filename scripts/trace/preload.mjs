// Loaded into each kv-server by scripts/trace/put-legs.mjs (node --import): stamps the events of a
// put's path with the machine's monotonic clock (shared by all processes) and writes them, at
// exit, to $RAFTKV_TRACE_DIR/<pid>.json. Wraps the classes' methods; changes nothing else.
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const build = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../build/src');
const events = [];
const now = () => Number(process.hrtime.bigint() / 1000n); // µs
const stamp = (name, detail = '') => events.push([now(), name, detail]);

function wrap(proto, method, before, after) {
  const orig = proto[method];
  proto[method] = function (...args) {
    before?.call(this, ...args);
    const r = orig.apply(this, args);
    if (after) {
      if (r && typeof r.then === 'function') r.then(() => after.call(this, ...args), () => {});
      else after.call(this, ...args);
    }
    return r;
  };
}

const { KvStore } = await import(path.join(build, 'server/kv-store.js'));
const { GrpcTransport } = await import(path.join(build, 'raft/transport/grpc.js'));
const { PeerLink } = await import(path.join(build, 'raft/transport/peer-link.js'));
const { SqliteStorage } = await import(path.join(build, 'raft/storage/sqlite.js'));

wrap(KvStore.prototype, 'write', () => stamp('kv-write'));
wrap(KvStore.prototype, 'applied', (e) => e.type === 'normal' && stamp('apply', e.index));
wrap(GrpcTransport.prototype, 'send', (m) => m.type === 'app' && m.entries?.length && stamp('send-app', m.to));
wrap(GrpcTransport.prototype, 'receiveBatch', (batch) => {
  for (const m of batch.messages) {
    if (m.type === 'MESSAGE_TYPE_APP' && m.entries?.length) stamp('recv-app', m.from);
    else if (m.type === 'MESSAGE_TYPE_APP_RESP') stamp('recv-appresp', m.from);
  }
});
wrap(PeerLink.prototype, 'flush', () => stamp('flush'));
wrap(SqliteStorage.prototype, 'sync', () => stamp('sync-start'), () => stamp('sync-end'));

process.on('exit', () => {
  writeFileSync(path.join(process.env.RAFTKV_TRACE_DIR ?? '/tmp', `${process.pid}.json`), JSON.stringify(events));
});
