/**
 * kv-server's command line: the flags, their help, and their parsing into a checked ServerConfig
 * (config.ts checks the values).
 */
import yargs from 'yargs';
import { packageVersion } from '../version.js';
import { checkFlags, UsageError, type ServerConfig } from './config.js';
import { FORMATS, LEVELS, type Format, type Level } from './logger.js';
import { DEFAULT_SNAPSHOT_RETAIN, DEFAULT_SNAPSHOT_THRESHOLD } from './snapshotter.js';

export const EXAMPLE =
  'kv-server --id 1 --peers 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003 --client-addr 127.0.0.1:9001 --data-dir data/1';
const JOIN_EXAMPLE = 'kv-server --id 4 --peer-addr 127.0.0.1:7004 --client-addr 127.0.0.1:9004 --data-dir data/4 --join 127.0.0.1:9001,127.0.0.1:9002';
const RESTORE_EXAMPLE = `${EXAMPLE} --restore backup.snap   (each node of the new cluster, the same file)`;
const FORCE_EXAMPLE = `${EXAMPLE} --force-new-cluster   (the one survivor of a lost quorum)`;

/** Parses the command line; throws UsageError. (`--help`/`--version` print and exit 0.) */
export function parseArgs(argv: string[]): ServerConfig {
  const args = yargs(argv)
    .scriptName('kv-server')
    .usage(
      '$0 --id N --peers ID=HOST:PORT,... --client-addr HOST:PORT --data-dir DIR [options]\n' +
        '$0 --id N --peer-addr HOST:PORT --client-addr HOST:PORT --data-dir DIR --join HOST:PORT,... [options]\n\n' +
        'Runs one raftkv node. --peers bootstraps a new cluster; --join starts a node to be added to a running one ' +
        '(kv-cli member add). Once a data dir holds state, the cluster it belongs to and the members it has ' +
        'replicated decide: --join is then ignored, and --peers is used only until the first membership change.\n\n' +
        'Disaster recovery (README: "Disaster recovery"): --restore FILE starts a new cluster, with a new cluster id, from ' +
        'a backup (kv-cli backup FILE), each of its --peers on an empty data dir with the same file. --force-new-cluster ' +
        'turns the data dir of a surviving member of a cluster that lost its quorum into a cluster of this node alone, ' +
        'with a new cluster id; add members again with kv-cli member add. Both refuse rather than guess.',
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
      'log-format': { choices: FORMATS, default: 'auto' as Format, describe: 'log lines as JSON or text (auto: JSON unless stderr is a terminal)' },
      'snapshot-threshold': {
        requiresArg: true,
        default: DEFAULT_SNAPSHOT_THRESHOLD,
        describe: 'take a snapshot after this many log entries since the last one, once they hold half as many bytes as that snapshot (0: only on demand)',
      },
      'snapshot-retain': {
        requiresArg: true,
        default: DEFAULT_SNAPSHOT_RETAIN,
        describe: 'log entries kept behind a snapshot for followers that are a little behind',
      },
      'quota-bytes': {
        requiresArg: true,
        describe:
          'quota on the state: bytes of keys and values, and 128 per key; beyond it puts are refused (no-space) and deletes taken ' +
          '(default: a quarter of the heap limit, at most 2 GiB)',
      },
      restore: {
        type: 'string',
        describe: 'on an empty data dir: start a new cluster (new cluster id, --peers as its members) from this backup file (kv-cli backup)',
      },
      'force-new-cluster': {
        type: 'boolean',
        default: false,
        describe:
          "make this node's data dir a cluster of this node alone, under a new cluster id, keeping its log (after a loss of quorum; " +
          'may lose writes the node did not have: README). Idempotent; remove the flag once members are added again',
      },
      'cert-file': { type: 'string', group: 'TLS:', describe: 'client port: serve TLS with this certificate (PEM; re-read on SIGHUP)' },
      'key-file': { type: 'string', group: 'TLS:', describe: "client port: the certificate's private key (PEM)" },
      'trusted-ca-file': { type: 'string', group: 'TLS:', describe: "client port: the CA that signs clients' certificates (with --client-cert-auth)" },
      'client-cert-auth': { type: 'boolean', default: false, group: 'TLS:', describe: 'client port: refuse clients without a certificate signed by --trusted-ca-file' },
      'peer-cert-file': { type: 'string', group: 'TLS:', describe: 'peer port: mutual TLS with this certificate (PEM; re-read on SIGHUP)' },
      'peer-key-file': { type: 'string', group: 'TLS:', describe: "peer port: the certificate's private key (PEM)" },
      'peer-trusted-ca-file': { type: 'string', group: 'TLS:', describe: "peer port: the CA that signs every member's peer certificate" },
      'metrics-addr': {
        type: 'string',
        describe: 'serve HTTP on host:port: /metrics (Prometheus), /health, /livez, /readyz, /status (README: Observability)',
      },
      'unsafe-no-fsync': { type: 'boolean', default: false, describe: 'do not wait for the disk (tests, benchmarks only: may lose committed data)' },
    })
    .example(EXAMPLE, '')
    .example(JOIN_EXAMPLE, '')
    .example(RESTORE_EXAMPLE, '')
    .example(FORCE_EXAMPLE, '')
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
    logFormat: args['log-format'] as Format,
    snapshotThreshold: args['snapshot-threshold'],
    snapshotRetain: args['snapshot-retain'],
    quotaBytes: args['quota-bytes'],
    unsafeNoFsync: args['unsafe-no-fsync'] === true,
    restore: args.restore,
    forceNewCluster: args['force-new-cluster'] === true,
    certFile: args['cert-file'],
    keyFile: args['key-file'],
    trustedCaFile: args['trusted-ca-file'],
    clientCertAuth: args['client-cert-auth'] === true,
    peerCertFile: args['peer-cert-file'],
    peerKeyFile: args['peer-key-file'],
    peerTrustedCaFile: args['peer-trusted-ca-file'],
    metricsAddr: args['metrics-addr'],
  });
}

