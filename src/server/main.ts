#!/usr/bin/env node
/**
 * kv-server: one raftkv node. Serves proto/kv.proto to clients on --client-addr and Raft to its
 * peers on its own address from --peers, with its state in --data-dir. This file is the command
 * line and the signals; KvServer (kv-server.ts) is the node.
 *
 * Exit codes: 0 after a clean shutdown (SIGINT/SIGTERM), 1 when the node cannot run (data dir
 * refused, port taken, a fatal disk error), 2 for bad flags.
 */
import { randomInt } from 'node:crypto';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { checkFlags, UsageError, type ServerConfig } from './config.js';
import { createLogger, LEVELS, type Level } from './logger.js';
import { DEFAULT_SNAPSHOT_RETAIN, DEFAULT_SNAPSHOT_THRESHOLD } from './snapshotter.js';

const EXAMPLE =
  'kv-server --id 1 --peers 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003 --client-addr 127.0.0.1:9001 --data-dir data/1';
const SHUTDOWN_DEADLINE_MS = 5000;

/** Parses the command line; throws UsageError. (`--help`/`--version` print and exit 0.) */
function parseArgs(argv: string[]): ServerConfig {
  const args = yargs(argv)
    .scriptName('kv-server')
    .usage('$0 --id N --peers ID=HOST:PORT,... --client-addr HOST:PORT --data-dir DIR [options]\n\nRuns one raftkv node.')
    .options({
      id: { type: 'number', demandOption: true, describe: "this node's id (must appear in --peers)" },
      peers: { type: 'string', demandOption: true, describe: "every node's Raft address, this one included: 1=127.0.0.1:7001,2=..." },
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
  return checkFlags({
    id: args.id,
    peers: args.peers,
    clientAddr: args['client-addr'],
    dataDir: args['data-dir'],
    electionTimeout: args['election-timeout'],
    heartbeat: args.heartbeat,
    clusterId: args['cluster-id'],
    clientPeers: args['client-peers'],
    logLevel: args['log-level'] as Level,
    snapshotThreshold: args['snapshot-threshold'],
    snapshotRetain: args['snapshot-retain'],
    join: args.join === true,
    unsafeNoFsync: args['unsafe-no-fsync'] === true,
  });
}

async function main(): Promise<void> {
  let cfg: ServerConfig;
  try {
    cfg = parseArgs(hideBin(process.argv));
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`kv-server: ${e.message}\nRun kv-server --help for usage. Example:\n  ${EXAMPLE}\n`);
    process.exit(2);
  }
  const log = createLogger(cfg.logLevel, { node: cfg.id });
  // Loaded after the flags are checked: gRPC and SQLite take most of the start-up time.
  const [grpc, { KvServer, StartError }, { systemClock }, { dataDirDisk }, { grpcNetwork }] = await Promise.all([
    import('@grpc/grpc-js'),
    import('./kv-server.js'),
    import('../clock.js'),
    import('./disk.js'),
    import('./grpc-network.js'),
  ]);
  // grpc-js's own diagnostics (e.g. a failed bind, which we report ourselves) go to our log.
  const grpcLog = (...args: unknown[]): void => log.debug(args.map(String).join(' '), { component: 'grpc' });
  grpc.setLogger({ error: grpcLog, info: grpcLog, debug: grpcLog });

  let stopping = false;
  const exit = (code: number): never => process.exit(code);
  const server = new KvServer(cfg, {
    clock: systemClock,
    disk: dataDirDisk(cfg.dataDir, { unsafeNoFsync: cfg.unsafeNoFsync }),
    network: grpcNetwork(),
    logger: log,
    seed: randomInt(2 ** 31),
    onFatal: () => exit(1),
  });
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info('shutting down', { signal });
    setTimeout(() => {
      log.error('shutdown took too long; exiting', { deadline_ms: SHUTDOWN_DEADLINE_MS });
      exit(1);
    }, SHUTDOWN_DEADLINE_MS).unref();
    server.stop().then(
      () => {
        log.info('stopped');
        exit(0);
      },
      (e: unknown) => {
        log.error('error during shutdown', { error: e instanceof Error ? e.message : String(e) });
        exit(1);
      },
    );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));

  try {
    await server.start();
  } catch (e) {
    if (stopping) return;
    const message = e instanceof Error ? e.message : String(e);
    if (e instanceof StartError) process.stderr.write(`kv-server: ${message}\n`);
    else process.stderr.write(`kv-server: unexpected error while starting: ${e instanceof Error ? (e.stack ?? message) : message}\n`);
    exit(1);
  }
}

await main();
