#!/usr/bin/env node
/**
 * kv-server: one raftkv node. Serves proto/kv.proto to clients on --client-addr and Raft to its
 * peers on its peer address (--peer-addr, or its entry in --peers), with its state in --data-dir.
 * This file is the command line and the signals; KvServer (kv-server.ts) is the node.
 *
 * Exit codes: 0 after a clean shutdown (SIGINT/SIGTERM), 1 when the node cannot run (data dir
 * refused or not permitted, port taken, better-sqlite3 missing, a fatal disk error), 2 for bad flags.
 */
import { randomInt } from 'node:crypto';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { ownPackageJson, packageVersion } from '../version.js';
import { checkFlags, dataDirAccessProblem, UsageError, type ServerConfig } from './config.js';
import { createLogger, LEVELS, type Level } from './logger.js';
import { DEFAULT_SNAPSHOT_RETAIN, DEFAULT_SNAPSHOT_THRESHOLD } from './snapshotter.js';

const EXAMPLE =
  'kv-server --id 1 --peers 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003 --client-addr 127.0.0.1:9001 --data-dir data/1';
const JOIN_EXAMPLE = 'kv-server --id 4 --peer-addr 127.0.0.1:7004 --client-addr 127.0.0.1:9004 --data-dir data/4 --join 127.0.0.1:9001,127.0.0.1:9002';
const SHUTDOWN_DEADLINE_MS = 5000;

/** Parses the command line; throws UsageError. (`--help`/`--version` print and exit 0.) */
function parseArgs(argv: string[]): ServerConfig {
  const args = yargs(argv)
    .scriptName('kv-server')
    .usage(
      '$0 --id N --peers ID=HOST:PORT,... --client-addr HOST:PORT --data-dir DIR [options]\n' +
        '$0 --id N --peer-addr HOST:PORT --client-addr HOST:PORT --data-dir DIR --join HOST:PORT,... [options]\n\n' +
        'Runs one raftkv node. --peers bootstraps a new cluster; --join starts a node to be added to a running one ' +
        '(kv-cli member add). Once a data dir holds state, the cluster it belongs to and the members it has ' +
        'replicated decide: --join is then ignored, and --peers is used only until the first membership change.',
    )
    .options({
      // Numbers stay as typed (parse-numbers off) for checkFlags, which checks them and quotes them.
      id: { requiresArg: true, demandOption: true, describe: "this node's id (in --peers, if given); never reused in a cluster" },
      peers: { type: 'string', describe: "bootstrap a new cluster of these members, this one included: 1=127.0.0.1:7001,2=..." },
      'peer-addr': { type: 'string', describe: "this node's Raft address, host:port (default: its entry in --peers)" },
      join: {
        type: 'string',
        describe: 'on an empty data dir: ask these members (their client addresses, host:port,...) for the cluster, and wait to be added',
      },
      'client-addr': { type: 'string', demandOption: true, describe: 'host:port to serve clients on' },
      'data-dir': { type: 'string', demandOption: true, describe: 'directory of this node (created on first start)' },
      'election-timeout': { requiresArg: true, default: 300, describe: 'base election timeout, ms (20 to 60000)' },
      heartbeat: { requiresArg: true, default: 50, describe: 'heartbeat interval, ms (less than the election timeout)' },
      'cluster-id': { type: 'string', describe: 'cluster id of a new cluster (default: for a data dir that exists, the one it holds; else derived from --peers)' },
      'client-peers': {
        type: 'string',
        describe: 'client addresses of the --peers, for leader hints: 1=127.0.0.1:9001,2=... (members added later bring theirs)',
      },
      'log-level': { choices: LEVELS, default: 'info' as Level, describe: 'lowest level logged' },
      'snapshot-threshold': {
        requiresArg: true,
        default: DEFAULT_SNAPSHOT_THRESHOLD,
        describe: 'take a snapshot after this many log entries since the last one (0: only on demand)',
      },
      'snapshot-retain': {
        requiresArg: true,
        default: DEFAULT_SNAPSHOT_RETAIN,
        describe: 'log entries kept behind a snapshot for followers that are a little behind',
      },
      'unsafe-no-fsync': { type: 'boolean', default: false, describe: 'do not wait for the disk (tests, benchmarks only: may lose committed data)' },
    })
    .example(EXAMPLE, '')
    .example(JOIN_EXAMPLE, '')
    // Our version: yargs would search for a package.json from where it is installed, which in a
    // project that depends on raftkv is the project's own.
    .version(packageVersion())
    .strict()
    .parserConfiguration({ 'duplicate-arguments-array': false, 'parse-numbers': false })
    .wrap(Math.min(110, process.stderr.columns || 100))
    .fail((msg, err) => {
      throw new UsageError(msg ?? err?.message ?? 'bad arguments');
    })
    .parseSync();
  if (args._.length > 0) throw new UsageError(`unexpected argument(s): ${args._.join(' ')}`);
  return checkFlags({
    id: args.id,
    peers: args.peers,
    peerAddr: args['peer-addr'],
    join: args.join,
    clientAddr: args['client-addr'],
    dataDir: args['data-dir'],
    electionTimeout: args['election-timeout'],
    heartbeat: args.heartbeat,
    clusterId: args['cluster-id'],
    clientPeers: args['client-peers'],
    logLevel: args['log-level'] as Level,
    snapshotThreshold: args['snapshot-threshold'],
    snapshotRetain: args['snapshot-retain'],
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
  // Refusals that need no node: one line each, exit 1, nothing created or changed.
  const refusal = dataDirAccessProblem(cfg.dataDir) ?? (await sqliteProblem());
  if (refusal !== undefined) {
    process.stderr.write(`kv-server: ${refusal}\n`);
    process.exit(1);
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
    // A leader hands leadership over first, so that a rolling restart costs no election timeout.
    server.stop({ handOff: true }).then(
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
    else if (typeof (e as NodeJS.ErrnoException).code === 'string' && (e as NodeJS.ErrnoException).syscall !== undefined) {
      // A system call refused (its message names the call and the path): no stack to read.
      process.stderr.write(`kv-server: cannot start: ${message}\n`);
    } else process.stderr.write(`kv-server: unexpected error while starting: ${e instanceof Error ? (e.stack ?? message) : message}\n`);
    exit(1);
  }
}

/**
 * Why SQLite cannot be used, or undefined. better-sqlite3 is an optional peer dependency of
 * raftkv, so that the SDK and kv-cli install without compiling it: kv-server says what to install.
 */
async function sqliteProblem(): Promise<string | undefined> {
  const wanted = `better-sqlite3@${ownPackageJson().peerDependencies?.['better-sqlite3'] ?? 'latest'}`;
  let Database: typeof import('better-sqlite3');
  try {
    Database = (await import('better-sqlite3')).default;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ERR_MODULE_NOT_FOUND' && err.message.includes("'better-sqlite3'")) {
      return (
        'kv-server keeps its log in SQLite through the better-sqlite3 package, which is not installed ' +
        `(raftkv leaves it out so that the client installs without a C++ build). Install it beside raftkv: npm install ${wanted}`
      );
    }
    return `cannot load better-sqlite3: ${err.message.split('\n')[0]}`;
  }
  try {
    new Database(':memory:').close();
  } catch (e) {
    const why = (e instanceof Error ? e.message : String(e)).split('\n')[0];
    return `better-sqlite3 is installed but its native module does not load (${why}). Rebuild it for this Node: npm rebuild better-sqlite3`;
  }
  return undefined;
}

await main();
