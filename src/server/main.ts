#!/usr/bin/env node
/**
 * kv-server: one raftkv node. Serves proto/kv.proto to clients on --client-addr and Raft to its
 * peers on its own address from --peers, with its log in <data-dir>/raft.db.
 *
 * Exit codes: 0 after a clean shutdown (SIGINT/SIGTERM), 1 when the node cannot run (data dir
 * refused, port taken), 2 for bad flags.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import type * as grpcTypes from '@grpc/grpc-js';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { checkAddress } from '../client/address.js';
import type { NodeId } from '../raft/core/types.js';
import type { RaftNode } from '../raft/node.js';
import type { ReplicatedLog } from '../raft/replicated-log.js';
import type { SqliteStorage } from '../raft/storage/sqlite.js';
import type { GrpcTransport } from '../raft/transport/grpc.js';
import type { PeerAddress } from '../raft/transport/transport.js';
import type { KvStore } from './kv-store.js';
import type { KvHandlers } from './kv-service.js';
import { DEFAULT_SNAPSHOT_RETAIN, DEFAULT_SNAPSHOT_THRESHOLD } from './snapshotter.js';

// Flags are checked before gRPC, SQLite and Raft are loaded (they take most of the start-up
// time), so that a usage error is answered at once.

// ---------------------------------------------------------------------------------------------
// Logging: one line per event on stderr, `ts LEVEL msg key=value ...`.

const LEVELS = ['debug', 'info', 'warn', 'error'] as const;
type Level = (typeof LEVELS)[number];
type Fields = Record<string, string | number | boolean | undefined>;

export interface Logger {
  debug(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
}

function formatValue(v: string | number | boolean): string {
  const s = String(v);
  return s === '' || /[\s="]/.test(s) ? JSON.stringify(s) : s;
}

export function createLogger(min: Level, base: Fields = {}, write: (line: string) => void = (l) => process.stderr.write(l)): Logger {
  const threshold = LEVELS.indexOf(min);
  const emit = (level: Level, msg: string, fields: Fields = {}): void => {
    if (LEVELS.indexOf(level) < threshold) return;
    let line = `${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} ${msg}`;
    for (const [k, v] of Object.entries({ ...base, ...fields })) if (v !== undefined) line += ` ${k}=${formatValue(v)}`;
    write(line + '\n');
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
  };
}

// ---------------------------------------------------------------------------------------------
// Flags.

export class UsageError extends Error {
  override name = 'UsageError';
}

export interface ServerConfig {
  id: NodeId;
  peers: PeerAddress[];
  /** This node's peer (Raft) address, from --peers. */
  peerAddr: string;
  clientAddr: string;
  dataDir: string;
  electionTimeoutMs: number;
  heartbeatMs: number;
  clusterId: string;
  clusterIdDerived: boolean;
  /** Client addresses for leader hints (this node's included). */
  clientAddrs: Map<NodeId, string>;
  logLevel: Level;
  unsafeNoFsync: boolean;
  snapshotThreshold: number;
  snapshotRetain: number;
  join: boolean;
}

function parseIdList(flag: string, text: string): Map<NodeId, string> {
  const out = new Map<NodeId, string>();
  const seen = new Set<string>();
  const items = text.split(',').map((s) => s.trim());
  if (items.length === 0 || items.every((s) => s === '')) throw new UsageError(`--${flag} is empty`);
  for (const item of items) {
    if (item === '') throw new UsageError(`--${flag}: empty entry in "${text}"`);
    const eq = item.indexOf('=');
    if (eq < 0) throw new UsageError(`--${flag}: "${item}" is not id=host:port (e.g. 1=127.0.0.1:7001)`);
    const idText = item.slice(0, eq).trim();
    if (!/^\d+$/.test(idText) || !Number.isSafeInteger(Number(idText)) || Number(idText) < 1) {
      throw new UsageError(`--${flag}: node id "${idText}" in "${item}" is not a positive integer`);
    }
    const id = Number(idText);
    const addr = checkAddress(item.slice(eq + 1));
    if (!addr.ok) throw new UsageError(`--${flag}: ${addr.error}`);
    if (out.has(id)) throw new UsageError(`--${flag}: node id ${id} is listed twice`);
    if (seen.has(addr.address)) throw new UsageError(`--${flag}: address ${addr.address} is listed twice`);
    seen.add(addr.address);
    out.set(id, addr.address);
  }
  return out;
}

/** The default cluster id: a short hash of the sorted peer list, so every node derives the same. */
export function deriveClusterId(peers: ReadonlyMap<NodeId, string>): string {
  const canonical = [...peers.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([id, addr]) => `${id}=${addr}`)
    .join(',');
  return 'raftkv-' + createHash('sha256').update(canonical).digest('hex').slice(0, 12);
}

function count(flag: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new UsageError(`--${flag} must be a whole number ≥ 0, got ${JSON.stringify(v)}`);
  }
  return v;
}

function positiveMs(flag: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
    throw new UsageError(`--${flag} must be a positive whole number of milliseconds, got ${JSON.stringify(v)}`);
  }
  return v;
}

const EXAMPLE =
  'kv-server --id 1 --peers 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003 --client-addr 127.0.0.1:9001 --data-dir data/1';

/** Parses and checks the command line; throws UsageError. (`--help`/`--version` print and exit 0.) */
export function parseArgs(argv: string[]): ServerConfig {
  const args = yargs(argv)
    .scriptName('kv-server')
    .usage('$0 --id N --peers ID=HOST:PORT,... --client-addr HOST:PORT --data-dir DIR [options]\n\nRuns one raftkv node.')
    .options({
      id: { type: 'number', demandOption: true, describe: "this node's id (must appear in --peers)" },
      peers: {
        type: 'string',
        demandOption: true,
        describe: "every node's Raft address, this one included: 1=127.0.0.1:7001,2=...",
      },
      'client-addr': { type: 'string', demandOption: true, describe: 'host:port to serve clients on' },
      'data-dir': { type: 'string', demandOption: true, describe: 'directory of this node (created on first start)' },
      'election-timeout': { type: 'number', default: 300, describe: 'base election timeout, ms' },
      heartbeat: { type: 'number', default: 50, describe: 'heartbeat interval, ms (< election timeout)' },
      'cluster-id': { type: 'string', describe: 'cluster id (default: derived from the sorted --peers list)' },
      'client-peers': {
        type: 'string',
        describe: 'client addresses of the nodes, for leader hints: 1=127.0.0.1:9001,2=... (without it, no hints)',
      },
      'log-level': { choices: LEVELS, default: 'info' as Level, describe: 'lowest level logged' },
      'snapshot-threshold': {
        type: 'number',
        default: DEFAULT_SNAPSHOT_THRESHOLD,
        describe: 'take a snapshot after this many log entries since the last one (0: only on demand)',
      },
      'snapshot-retain': {
        type: 'number',
        default: DEFAULT_SNAPSHOT_RETAIN,
        describe: 'log entries kept behind a snapshot for followers that are a little behind',
      },
      join: {
        type: 'boolean',
        default: false,
        describe: 'this node lost its data dir and rejoins its cluster empty: stay out of elections until the leader has contacted it',
      },
      'unsafe-no-fsync': { type: 'boolean', default: false, describe: 'do not wait for the disk (tests, benchmarks only: may lose committed data)' },
    })
    .example(EXAMPLE, '')
    .strict()
    .parserConfiguration({ 'duplicate-arguments-array': false })
    .wrap(Math.min(110, process.stderr.columns || 100))
    .fail((msg, err) => {
      throw new UsageError(msg ?? err?.message ?? 'bad arguments');
    })
    .parseSync();

  if (args._.length > 0) throw new UsageError(`unexpected argument(s): ${args._.join(' ')}`);
  const idRaw: unknown = args.id;
  if (typeof idRaw !== 'number' || !Number.isSafeInteger(idRaw) || idRaw < 1) {
    throw new UsageError(`--id must be a positive integer, got ${JSON.stringify(idRaw)}`);
  }
  const id = idRaw;
  const peerMap = parseIdList('peers', String(args.peers));
  const peerAddr = peerMap.get(id);
  if (peerAddr === undefined) {
    throw new UsageError(`--id ${id} is not in --peers (nodes listed: ${[...peerMap.keys()].join(', ')})`);
  }
  const client = checkAddress(String(args['client-addr']));
  if (!client.ok) throw new UsageError(`--client-addr: ${client.error}`);
  for (const [pid, addr] of peerMap) {
    if (addr === client.address) {
      throw new UsageError(`--client-addr ${client.address} is also the peer address of node ${pid}: use another port`);
    }
  }
  const electionTimeoutMs = positiveMs('election-timeout', args['election-timeout']);
  const heartbeatMs = positiveMs('heartbeat', args.heartbeat);
  if (heartbeatMs >= electionTimeoutMs) {
    throw new UsageError(`--heartbeat (${heartbeatMs} ms) must be less than --election-timeout (${electionTimeoutMs} ms)`);
  }
  if (electionTimeoutMs < 20) throw new UsageError(`--election-timeout must be at least 20 ms, got ${electionTimeoutMs}`);

  let clusterId: string;
  const clusterIdDerived = args['cluster-id'] === undefined;
  if (args['cluster-id'] === undefined) clusterId = deriveClusterId(peerMap);
  else {
    clusterId = String(args['cluster-id']).trim();
    if (!/^[A-Za-z0-9._:-]{1,128}$/.test(clusterId)) {
      throw new UsageError('--cluster-id must be 1-128 characters of letters, digits, ".", "_", ":" or "-"');
    }
  }

  const clientAddrs = new Map<NodeId, string>();
  if (args['client-peers'] !== undefined) {
    const cp = parseIdList('client-peers', String(args['client-peers']));
    for (const [pid, addr] of cp) {
      if (!peerMap.has(pid)) throw new UsageError(`--client-peers: node ${pid} is not in --peers`);
      if (pid === id && addr !== client.address) {
        throw new UsageError(`--client-peers gives ${addr} for this node, but --client-addr is ${client.address}`);
      }
      for (const [qid, paddr] of peerMap) {
        if (paddr === addr) throw new UsageError(`--client-peers: ${addr} is the peer address of node ${qid}`);
      }
      clientAddrs.set(pid, addr);
    }
  }
  clientAddrs.set(id, client.address);

  if (args.join === true && peerMap.size === 1) throw new UsageError('--join needs a cluster to join: --peers lists only this node');
  const dataDirText = String(args['data-dir']);
  if (dataDirText.trim() === '') throw new UsageError('--data-dir is empty');
  const dataDir = nodePath.resolve(dataDirText);
  const parent = nodePath.dirname(dataDir);
  const parentStat = fs.statSync(parent, { throwIfNoEntry: false });
  if (!parentStat?.isDirectory()) {
    throw new UsageError(`--data-dir ${dataDirText}: the parent directory ${parent} does not exist (create it first)`);
  }
  const dirStat = fs.statSync(dataDir, { throwIfNoEntry: false });
  if (dirStat !== undefined && !dirStat.isDirectory()) throw new UsageError(`--data-dir ${dataDirText} exists and is not a directory`);

  return {
    id,
    peers: [...peerMap.entries()].map(([pid, address]) => ({ id: pid, address })),
    peerAddr,
    clientAddr: client.address,
    dataDir,
    electionTimeoutMs,
    heartbeatMs,
    clusterId,
    clusterIdDerived,
    clientAddrs,
    logLevel: args['log-level'] as Level,
    unsafeNoFsync: args['unsafe-no-fsync'] === true,
    snapshotThreshold: count('snapshot-threshold', args['snapshot-threshold']),
    snapshotRetain: count('snapshot-retain', args['snapshot-retain']),
    join: args.join === true,
  };
}

// ---------------------------------------------------------------------------------------------
// The process.

class FatalError extends Error {
  override name = 'FatalError';
}

const DB_FILE = 'raft.db';
const SNAP_DIR = 'snap';
const SHUTDOWN_DEADLINE_MS = 5000;

async function run(): Promise<void> {
  let cfg: ServerConfig;
  try {
    cfg = parseArgs(hideBin(process.argv));
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`kv-server: ${e.message}\nRun kv-server --help for usage. Example:\n  ${EXAMPLE}\n`);
    process.exit(2);
  }
  const log = createLogger(cfg.logLevel, { node: cfg.id });
  const [grpc, { RaftNode }, { SqliteStorage, StorageError }, { GrpcTransport }, { KvStore }, { kvServerOptions, kvServiceHandlers }, { loadKvProto }, { Snapshotter }, { SnapshotError }] =
    await Promise.all([
      import('@grpc/grpc-js'),
      import('../raft/node.js'),
      import('../raft/storage/sqlite.js'),
      import('../raft/transport/grpc.js'),
      import('./kv-store.js'),
      import('./kv-service.js'),
      import('../kv-api.js'),
      import('./snapshotter.js'),
      import('./snapshot.js'),
    ]);
  // grpc-js's own diagnostics (e.g. a failed bind, which we report ourselves) go to our log.
  const grpcLog = (...args: unknown[]): void => log.debug(args.map(String).join(' '), { component: 'grpc' });
  grpc.setLogger({ error: grpcLog, info: grpcLog, debug: grpcLog });

  let server: grpcTypes.Server | undefined;
  let transport: GrpcTransport | undefined;
  let storage: SqliteStorage | undefined;
  let node: RaftNode | undefined;
  let store: KvStore | undefined;
  let stopping = false;

  const closeServer = async (): Promise<void> => {
    const s = server;
    server = undefined;
    if (!s) return;
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => {
        s.forceShutdown();
        resolve();
      }, 1000);
      s.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
  };

  /** Releases whatever has been set up so far, in reverse order. */
  const teardown = async (): Promise<void> => {
    store?.close(); // in-flight requests fail with UNAVAILABLE; later ones too
    await closeServer();
    if (node) await node.stop(); // closes transport and storage
    else {
      await transport?.close();
      storage?.close();
    }
  };

  const shutdown = (signal: string, exitCode = 0): void => {
    if (stopping) {
      log.info('already shutting down', { signal });
      return;
    }
    stopping = true;
    log.info('shutting down', { signal });
    const hard = setTimeout(() => {
      log.error('shutdown took too long; exiting', { deadline_ms: SHUTDOWN_DEADLINE_MS });
      process.exit(1);
    }, SHUTDOWN_DEADLINE_MS);
    hard.unref();
    teardown().then(
      () => {
        log.info('stopped');
        process.exit(exitCode);
      },
      (e: unknown) => {
        log.error('error during shutdown', { error: e instanceof Error ? e.message : String(e) });
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));

  try {
    log.info('starting', {
      cluster: cfg.clusterId,
      peer_addr: cfg.peerAddr,
      client_addr: cfg.clientAddr,
      peers: cfg.peers.map((p) => `${p.id}=${p.address}`).join(','),
      data_dir: cfg.dataDir,
      election_timeout_ms: cfg.electionTimeoutMs,
      heartbeat_ms: cfg.heartbeatMs,
      leader_hints: cfg.peers.length === 1 ? undefined : cfg.clientAddrs.size > 1 ? 'on' : 'off (no --client-peers)',
    });
    if (cfg.unsafeNoFsync) {
      log.warn(
        'UNSAFE: --unsafe-no-fsync is set: writes are acknowledged before they reach the disk; a machine crash or ' +
          'power loss can lose committed data and break Raft safety. For tests and benchmarks only.',
      );
    }

    // The data dir is only checked here; it is touched after both ports are bound, so that a node
    // that cannot start leaves it as it was.
    const dbPath = nodePath.join(cfg.dataDir, DB_FILE);
    const dbExists = fs.existsSync(dbPath);
    if (!dbExists && fs.existsSync(cfg.dataDir)) {
      const others = fs.readdirSync(cfg.dataDir).filter((f) => !f.startsWith(DB_FILE) && f !== SNAP_DIR);
      if (others.length > 0) {
        throw new FatalError(
          `${cfg.dataDir} is not empty but has no ${DB_FILE} (found ${others.slice(0, 5).join(', ')}${others.length > 5 ? ', ...' : ''}): ` +
            'refusing to start a new node in a directory that holds something else. Point --data-dir at an empty or new directory.',
        );
      }
    }

    // Client API first, answering UNAVAILABLE until the node is up.
    let impl: KvHandlers | undefined;
    const starting = { code: grpc.status.UNAVAILABLE, details: `node ${cfg.id} is starting`, metadata: new grpc.Metadata() };
    const names = ['Get', 'Put', 'Append', 'Delete', 'CompareAndSwap', 'Status', 'Snapshot'] as const;
    const handlers: grpcTypes.UntypedServiceImplementation = {};
    for (const name of names) {
      const handler: grpcTypes.handleUnaryCall<unknown, unknown> = (call, callback) => {
        const h = impl?.[name] as grpcTypes.handleUnaryCall<unknown, unknown> | undefined;
        if (h) h(call, callback);
        else callback(starting);
      };
      handlers[name] = handler;
    }
    server = new grpc.Server(kvServerOptions());
    server.addService(loadKvProto().Kv.service, handlers);
    const srv = server;
    await new Promise<void>((resolve, reject) => {
      srv.bindAsync(cfg.clientAddr, grpc.ServerCredentials.createInsecure(), (err) => {
        if (err) reject(new FatalError(`cannot listen for clients on ${cfg.clientAddr} (port already in use?): ${err.message}`));
        else resolve();
      });
    });
    if (stopping) return;

    transport = new GrpcTransport({
      clusterId: cfg.clusterId,
      self: cfg.id,
      listen: cfg.peerAddr,
      peers: cfg.peers,
      logger: (line) => {
        if (/refused|dropped|failed|lost|mismatch/.test(line)) log.warn(line);
        else log.info(line);
      },
    });
    try {
      await transport.start();
    } catch (e) {
      throw new FatalError(e instanceof Error ? e.message : String(e));
    }
    if (stopping) return;

    if (!fs.existsSync(cfg.dataDir)) fs.mkdirSync(cfg.dataDir);
    try {
      storage = SqliteStorage.open(dbPath, {
        clusterId: cfg.clusterId,
        nodeId: cfg.id,
        create: true,
        unsafeNoFsync: cfg.unsafeNoFsync,
      });
    } catch (e) {
      if (e instanceof StorageError) {
        let msg = e.message;
        if (e.code === 'WRONG_CLUSTER' && cfg.clusterIdDerived) {
          msg +=
            ` (This node's cluster id ${cfg.clusterId} was derived from --peers; if the peer addresses changed, ` +
            'start it with the original id: --cluster-id.)';
        }
        throw new FatalError(msg);
      }
      throw e;
    }
    log.info(dbExists ? 'opened data file' : 'created data file', { path: dbPath });

    // KvStore and RaftNode need each other: the store proposes through the node, the node
    // applies into the store.
    let raftNode: RaftNode | undefined;
    const replicated: ReplicatedLog = {
      propose: (data) => raftNode?.propose(data),
      readIndex: (ctx) => raftNode?.readIndex(ctx) ?? false,
      leaderId: () => raftNode?.leaderId() ?? 0,
    };
    store = new KvStore(replicated, Date.now);
    const kvStore = store;
    const snapshotter = new Snapshotter({
      dir: nodePath.join(cfg.dataDir, SNAP_DIR),
      ids: { clusterId: cfg.clusterId, nodeId: cfg.id },
      store: kvStore,
      threshold: cfg.snapshotThreshold,
      retain: cfg.snapshotRetain,
      log: (line) => log.info(line),
    });
    try {
      snapshotter.restore(storage);
    } catch (e) {
      if (e instanceof SnapshotError || e instanceof Error) throw new FatalError(e.message);
      throw e;
    }
    if (snapshotter.index > 0) log.info('restored snapshot', { index: snapshotter.index, keys: kvStore.sm.size });
    let lastLeader = -1;
    raftNode = new RaftNode({
      id: cfg.id,
      peers: cfg.peers.map((p) => p.id),
      storage,
      transport,
      electionTimeoutMs: cfg.electionTimeoutMs,
      heartbeatMs: cfg.heartbeatMs,
      handler: {
        applied: (e) => {
          kvStore.applied(e);
          snapshotter.maybeSnapshot();
        },
        readConfirmed: (rs) => kvStore.readConfirmed(rs),
        leadershipLost: (leaderId) => kvStore.leadershipLost(leaderId),
      },
      snapshots: snapshotter,
      joining: cfg.join,
      onFatal: (e) => {
        log.error('fatal error; stopping', { error: e instanceof Error ? e.message : String(e) });
        shutdown('fatal error', 1);
      },
      log: (line, kind) => {
        if (kind !== 'role') return log.info(line);
        const s = raftNode?.status();
        if (!s) return;
        const fields = { role: s.role, term: s.term, leader: s.leaderId === 0 ? 'none' : s.leaderId };
        if (s.role === 'leader') log.info('became leader', fields);
        else if (s.leaderId !== lastLeader) log.info(s.leaderId === 0 ? 'no leader known' : 'following leader', fields);
        else log.info('role changed', fields);
        lastLeader = s.leaderId;
      },
    });
    snapshotter.attach((meta, retain) => raftNode?.compact(meta, retain) ?? false);
    node = raftNode;
    const st = raftNode.status();
    log.info('node started', { term: st.term, last_log_index: st.lastIndex, commit: st.commit });
    impl = kvServiceHandlers({
      store: kvStore,
      raft: raftNode,
      snapshotter,
      nodeId: cfg.id,
      clusterId: cfg.clusterId,
      clientAddrs: cfg.clientAddrs,
    });
    log.info('serving clients', { client_addr: cfg.clientAddr });
  } catch (e) {
    if (stopping) return;
    stopping = true;
    const message = e instanceof Error ? e.message : String(e);
    if (e instanceof FatalError) process.stderr.write(`kv-server: ${message}\n`);
    else process.stderr.write(`kv-server: unexpected error while starting: ${e instanceof Error ? (e.stack ?? message) : message}\n`);
    await teardown().catch(() => {});
    process.exit(1);
  }
}

await run();
