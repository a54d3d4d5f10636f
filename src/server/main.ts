#!/usr/bin/env node
/**
 * kv-server: one raftkv node. Serves proto/kv.proto to clients on --client-addr and Raft to its
 * peers on its peer address (--peer-addr, or its entry in --peers), with its state in --data-dir.
 * This file is the command line and the signals; KvServer (kv-server.ts) is the node.
 *
 * Exit codes: 0 after a clean shutdown (SIGINT/SIGTERM), 1 when the node cannot run (data dir
 * refused or not permitted, a certificate file that does not check, port taken, better-sqlite3
 * missing, a fatal disk error), 2 for bad flags. SIGHUP reads the certificate files again.
 */
import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hideBin } from 'yargs/helpers';
import { dataDirAccessProblem, UsageError, type ServerConfig } from './config.js';
import { EXAMPLE, parseArgs } from './flags.js';
import { createLogger } from './logger.js';
import { sqliteProblem } from './preflight.js';
import type { ServerTls } from './server-tls.js';
import { CertificateError } from '../tls-files.js';
import { dropIpServerNameWarning } from '../quiet-warnings.js';
import { tuneHeap } from './heap.js';
import { packageFile } from '../version.js';

const SHUTDOWN_DEADLINE_MS = 5000;

async function main(): Promise<void> {
  tuneHeap();
  dropIpServerNameWarning();
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
  // Certificates are read before anything else is opened: a bad one refuses the start, naming the file.
  // (Loaded here, not with the flags: it loads gRPC, and --help or a bad flag should not wait for it.)
  const { loadServerTls, plaintextWarnings, reloadServerTls } = await import('./server-tls.js');
  let tls: ServerTls;
  try {
    tls = loadServerTls(cfg);
  } catch (e) {
    if (!(e instanceof CertificateError)) throw e;
    process.stderr.write(`kv-server: cannot start: ${e.message}\n`);
    process.exit(1);
  }
  const log = createLogger({ min: cfg.logLevel, base: { node: cfg.id }, format: cfg.logFormat ?? 'auto' });
  // Term and role on every line once the node knows them, fed by its observer below.
  let status: { term?: number; role?: string } = {};
  log.bind(() => status);
  for (const warning of plaintextWarnings(cfg)) log.warn(warning);
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
  const metrics = cfg.metricsAddr !== undefined ? new (await import('./metrics.js')).ServerMetrics() : undefined;
  const server = new KvServer(cfg, {
    clock: systemClock,
    disk: dataDirDisk(cfg.dataDir, { unsafeNoFsync: cfg.unsafeNoFsync }),
    network: grpcNetwork(undefined, tls, metrics && ((method, code, s) => metrics.clientCall(method, code, s))),
    metrics,
    logger: log,
    observer: { roleChanged: (s) => void (status = { term: s.term, role: s.role }) },
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
  // Certificate rotation without a restart: new connections use the files' new contents.
  process.on('SIGHUP', () => reloadServerTls(tls, log));

  if (metrics && cfg.metricsAddr !== undefined) {
    // Bound before the node starts: /livez answers, and /readyz says "starting", while it does.
    const { listenObservability } = await import('./metrics-http.js');
    try {
      const http = await listenObservability(cfg.metricsAddr, {
        metrics: () => metrics.scrape(),
        health: () => server.health(),
        ready: () => server.ready(),
        status: () => server.statusReport(),
        cluster: () => server.clusterView(),
        page: readFileSync(packageFile('static/status.html')),
      });
      log.info('serving metrics', { metrics_addr: http.address });
    } catch (e) {
      process.stderr.write(`kv-server: ${(e as Error).message}\n`);
      exit(1);
    }
  }

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

await main();
