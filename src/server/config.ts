import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { getHeapStatistics } from 'node:v8';
import { checkAddress } from '../address.js';
import type { NodeId } from '../raft/core/types.js';
import type { Format, Level } from './logger.js';
import type { TlsFiles } from '../tls-files.js';

/** What one kv-server node is: everything KvServer needs to know, checked. */
export interface ServerConfig {
  id: NodeId;
  /**
   * The members of a cluster being bootstrapped (--peers), this node included: their peer (Raft)
   * addresses. Empty for a node added to a running cluster (--join). Once the cluster's
   * configuration changes, the replicated one is used, whatever this says.
   */
  peers: { id: NodeId; address: string }[];
  /** This node's peer address (--peer-addr, or its entry in --peers). */
  peerAddr: string;
  clientAddr: string;
  dataDir: string;
  electionTimeoutMs: number;
  heartbeatMs: number;
  /** For a new data dir: given, or derived from --peers; "" with --join (the cluster says). */
  clusterId: string;
  /**
   * The cluster id was not given (--cluster-id): it was derived from --peers, or comes from the
   * cluster (--join). A data dir's own cluster id is authoritative then.
   */
  clusterIdDerived: boolean;
  /** Client addresses of the --peers for leader hints, from --client-peers (this node's included). */
  clientAddrs: Map<NodeId, string>;
  logLevel: Level;
  logFormat?: Format;
  unsafeNoFsync: boolean;
  /** Entries since the last snapshot that trigger the next (0: only on demand). */
  snapshotThreshold: number;
  /** Bytes of entries since the last snapshot that trigger the next (0: no size trigger). */
  snapshotBytes: number;
  snapshotRetain: number;
  /** --quota-bytes: the state's quota (KvStore's Admission.maxStateBytes). */
  quotaBytes: number;
  /**
   * --join: client addresses of members of a running cluster. On an empty data dir the node asks
   * them for the cluster id and the members' addresses and waits to be added; ignored otherwise.
   */
  join?: string[];
  /**
   * --restore: the backup (kv-cli backup's file, an absolute path) a new cluster starts from. On
   * an empty data dir the node writes the backup's state as its snapshot, with --peers as the
   * configuration and a new cluster id, then starts as a bootstrapped node (restore.ts).
   */
  restore?: string;
  /**
   * --force-new-cluster: after a loss of quorum, this node's data dir becomes a cluster of this
   * node alone, under a new cluster id, keeping its whole log (force-new-cluster.ts).
   */
  forceNewCluster?: boolean;
  /**
   * TLS on the client port (--cert-file, --key-file; --trusted-ca-file and --client-cert-auth
   * for clients' certificates). Absent: plaintext.
   */
  clientTls?: { files: TlsFiles; clientCertAuth: boolean };
  /** Mutual TLS on the peer port and to peers (--peer-cert-file, --peer-key-file, --peer-trusted-ca-file). Absent: plaintext. */
  peerTls?: TlsFiles;
  /** --metrics-addr: where to serve /metrics, /health, /livez, /readyz and /status over HTTP (none if absent). */
  metricsAddr?: string;
  /** Raft's switches; kv-server leaves them on (the simulator turns them off to show what they prevent). */
  protocol?: { preVote?: boolean; checkQuorum?: boolean };
}

/** The command line as parsed, before checking (kv-server's flags, camel-cased). */
export interface ServerFlags {
  id: unknown;
  peers?: unknown;
  peerAddr?: unknown;
  join?: unknown;
  clientAddr: unknown;
  dataDir: unknown;
  electionTimeout: unknown;
  heartbeat: unknown;
  clusterId?: unknown;
  clientPeers?: unknown;
  logLevel: Level;
  logFormat?: Format;
  snapshotThreshold: unknown;
  snapshotRetain: unknown;
  quotaBytes?: unknown;
  unsafeNoFsync: boolean;
  restore?: unknown;
  forceNewCluster?: boolean;
  certFile?: unknown;
  keyFile?: unknown;
  trustedCaFile?: unknown;
  clientCertAuth?: boolean;
  peerCertFile?: unknown;
  peerKeyFile?: unknown;
  peerTrustedCaFile?: unknown;
  metricsAddr?: unknown;
}

export class UsageError extends Error {
  override name = 'UsageError';
}

/**
 * The range of --election-timeout: below 20 ms a node cannot hear its leader through ordinary
 * scheduling jitter; above a minute a lost leader is not replaced in any useful time (and a
 * timeout such as 1e12 means it never is).
 */
const ELECTION_TIMEOUT_MS = { min: 20, max: 60_000 };
/** The range of --snapshot-threshold and --snapshot-retain (0 turns the threshold off). */
const LOG_ENTRIES = { min: 0, max: 1_000_000_000 };
const MiB = 1024 * 1024;

/**
 * The default quota on the state: a quarter of this process's heap limit (its state, the log since
 * the last snapshot, a snapshot's capture, an installed snapshot decoded beside the old state and
 * the garbage collector's headroom all share the heap), at most 2 GiB (etcd's default).
 */
export function defaultQuotaBytes(heapLimit = getHeapStatistics().heap_size_limit): number {
  return Math.min(2048 * MiB, Math.floor(heapLimit / 4));
}

/** --quota-bytes: from 1 MiB to half the heap limit (a state larger than that cannot be held with its log and a snapshot). */
function quotaBytes(v: unknown, heapLimit = getHeapStatistics().heap_size_limit): number {
  if (v === undefined) return defaultQuotaBytes(heapLimit);
  const n = wholeNumber('quota-bytes', v, { min: MiB, max: Number.MAX_SAFE_INTEGER }, 'bytes');
  if (n > heapLimit / 2) {
    throw new UsageError(
      `--quota-bytes ${n} is more than half of this process's heap limit (${heapLimit} bytes): the state would not fit beside its log and a snapshot; ` +
        `give node a larger heap (node --max-old-space-size=MB) or a smaller quota`,
    );
  }
  return n;
}

/** Checks every flag and how they fit together; throws UsageError naming the flag. */
export function checkFlags(f: ServerFlags): ServerConfig {
  const id = digits(f.id);
  if (!Number.isSafeInteger(id) || id < 1) throw new UsageError(`--id must be a positive integer, got ${JSON.stringify(f.id)}`);
  const peerMap = f.peers === undefined ? new Map<NodeId, string>() : parseIdList('peers', String(f.peers));
  const join = f.join === undefined ? undefined : parseEndpoints(String(f.join));
  const peerAddr = ownPeerAddr(id, peerMap, f.peerAddr);
  if (join && peerMap.size > 0) {
    throw new UsageError('--join adds this node to a running cluster and --peers bootstraps a new one: give one of them');
  }
  const restore = checkRestore(f, peerMap.size > 0, join !== undefined);
  const client = checkAddress(String(f.clientAddr));
  if (!client.ok) throw new UsageError(`--client-addr: ${client.error}`);
  for (const [pid, addr] of [...peerMap, [id, peerAddr] as const]) {
    if (addr === client.address) {
      throw new UsageError(`--client-addr ${client.address} is also the peer address of node ${pid}: use another port`);
    }
  }
  const metricsAddr = checkMetricsAddr(f.metricsAddr, [...peerMap.values(), peerAddr, client.address]);
  const electionTimeoutMs = wholeNumber('election-timeout', f.electionTimeout, ELECTION_TIMEOUT_MS, 'ms');
  const heartbeatMs = wholeNumber('heartbeat', f.heartbeat, { min: 1, max: ELECTION_TIMEOUT_MS.max - 1 }, 'ms');
  if (heartbeatMs >= electionTimeoutMs) {
    throw new UsageError(`--heartbeat (${heartbeatMs} ms) must be less than --election-timeout (${electionTimeoutMs} ms)`);
  }

  const clusterIdDerived = f.clusterId === undefined;
  let clusterId: string;
  if (clusterIdDerived) clusterId = peerMap.size > 0 ? deriveClusterId(peerMap) : '';
  else {
    if (join) throw new UsageError('--cluster-id goes with --peers: a node that joins takes its cluster\'s id');
    clusterId = String(f.clusterId).trim();
    if (!/^[A-Za-z0-9._:-]{1,128}$/.test(clusterId)) {
      throw new UsageError('--cluster-id must be 1-128 characters of letters, digits, ".", "_", ":" or "-"');
    }
  }

  const clientAddrs = new Map<NodeId, string>();
  if (f.clientPeers !== undefined) {
    if (peerMap.size === 0) throw new UsageError('--client-peers goes with --peers (a node that joins learns the addresses from its cluster)');
    for (const [pid, addr] of parseIdList('client-peers', String(f.clientPeers))) {
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

  return {
    id,
    peers: [...peerMap.entries()].map(([pid, address]) => ({ id: pid, address })),
    peerAddr,
    clientAddr: client.address,
    dataDir: checkDataDir(String(f.dataDir)),
    electionTimeoutMs,
    heartbeatMs,
    clusterId,
    clusterIdDerived,
    clientAddrs,
    logLevel: f.logLevel,
    logFormat: f.logFormat ?? 'auto',
    unsafeNoFsync: f.unsafeNoFsync,
    snapshotThreshold: wholeNumber('snapshot-threshold', f.snapshotThreshold, LOG_ENTRIES, 'entries'),
    snapshotBytes: 0,
    snapshotRetain: wholeNumber('snapshot-retain', f.snapshotRetain, LOG_ENTRIES, 'entries'),
    quotaBytes: quotaBytes(f.quotaBytes),
    ...(join ? { join } : {}),
    ...(restore !== undefined ? { restore } : {}),
    ...(f.forceNewCluster === true ? { forceNewCluster: true } : {}),
    ...tlsFlags(f),
    ...(metricsAddr !== undefined ? { metricsAddr } : {}),
  };
}

/**
 * The TLS flags, as files to read at start (tls-files.ts checks their contents): which go
 * together. The peer port's TLS is always mutual: a peer is a node of the cluster or nothing.
 */
function tlsFlags(f: ServerFlags): Pick<ServerConfig, 'clientTls' | 'peerTls'> {
  const file = (flag: string, v: unknown): { flag: string; path: string } | undefined => {
    if (v === undefined) return undefined;
    const text = String(v);
    if (text.trim() === '') throw new UsageError(`--${flag} is empty: give a PEM file`);
    return { flag: `--${flag}`, path: nodePath.resolve(text) };
  };
  const out: Pick<ServerConfig, 'clientTls' | 'peerTls'> = {};
  const cert = file('cert-file', f.certFile);
  const key = file('key-file', f.keyFile);
  const ca = file('trusted-ca-file', f.trustedCaFile);
  if (cert || key || ca || f.clientCertAuth === true) {
    if (!cert || !key) throw new UsageError('TLS on the client port needs both --cert-file and --key-file');
    if (f.clientCertAuth === true && !ca) throw new UsageError('--client-cert-auth needs --trusted-ca-file: the CA that signs the clients\' certificates');
    if (ca && f.clientCertAuth !== true) {
      throw new UsageError('--trusted-ca-file goes with --client-cert-auth (to accept only clients with a certificate it signed)');
    }
    out.clientTls = { files: { cert, key, ...(ca ? { ca } : {}) }, clientCertAuth: f.clientCertAuth === true };
  }
  const peerCert = file('peer-cert-file', f.peerCertFile);
  const peerKey = file('peer-key-file', f.peerKeyFile);
  const peerCa = file('peer-trusted-ca-file', f.peerTrustedCaFile);
  if (peerCert || peerKey || peerCa) {
    if (!peerCert || !peerKey || !peerCa) {
      throw new UsageError('mutual TLS between peers needs all of --peer-cert-file, --peer-key-file and --peer-trusted-ca-file');
    }
    out.peerTls = { cert: peerCert, key: peerKey, ca: peerCa };
  }
  return out;
}

/** --metrics-addr: a host:port of its own (HTTP on a gRPC port would answer neither). */
function checkMetricsAddr(flag: unknown, taken: string[]): string | undefined {
  if (flag === undefined) return undefined;
  const a = checkAddress(String(flag));
  if (!a.ok) throw new UsageError(`--metrics-addr: ${a.error}`);
  if (taken.includes(a.address)) throw new UsageError(`--metrics-addr ${a.address} is also a client or peer address: use another port`);
  return a.address;
}

/** --restore FILE as an absolute path, and what it does not go with (--force-new-cluster likewise). */
function checkRestore(f: ServerFlags, peers: boolean, join: boolean): string | undefined {
  if (f.forceNewCluster === true) {
    if (join) throw new UsageError('--force-new-cluster starts a cluster of this node alone from its own data dir: it does not go with --join');
    if (f.restore !== undefined) throw new UsageError('--force-new-cluster starts from this node\'s data dir, --restore from a backup: give one of them');
  }
  if (f.restore === undefined) return undefined;
  const text = String(f.restore);
  if (text.trim() === '') throw new UsageError('--restore is empty: give the backup file (kv-cli backup FILE)');
  if (join) throw new UsageError('--restore bootstraps a new cluster from a backup: it goes with --peers, not --join');
  if (!peers) throw new UsageError('--restore needs --peers: the members of the new cluster, each started with the same backup');
  return nodePath.resolve(text);
}

/** This node's peer address: --peer-addr, or its entry in --peers (which must agree when both are given). */
function ownPeerAddr(id: NodeId, peers: ReadonlyMap<NodeId, string>, flag: unknown): string {
  const listed = peers.get(id);
  if (peers.size > 0 && listed === undefined) {
    throw new UsageError(`--id ${id} is not in --peers (nodes listed: ${[...peers.keys()].join(', ')})`);
  }
  if (flag === undefined) {
    if (listed === undefined) {
      throw new UsageError('give --peers (to bootstrap a new cluster) or --peer-addr (for a node added to a running one, with --join)');
    }
    return listed;
  }
  const addr = checkAddress(String(flag));
  if (!addr.ok) throw new UsageError(`--peer-addr: ${addr.error}`);
  if (listed !== undefined && listed !== addr.address) {
    throw new UsageError(`--peer-addr ${addr.address} is not this node's address in --peers (${listed})`);
  }
  return addr.address;
}

/** --join's list: client addresses (host:port), at least one. */
function parseEndpoints(text: string): string[] {
  const out: string[] = [];
  for (const item of text.split(',').map((s) => s.trim())) {
    if (item === '') throw new UsageError(`--join: empty entry in "${text}" (give client addresses of members: host:port,...)`);
    const a = checkAddress(item);
    if (!a.ok) throw new UsageError(`--join: ${a.error}`);
    if (!out.includes(a.address)) out.push(a.address);
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

/** The data dir as an absolute path; its parent must exist, and it must be a directory if it does. */
function checkDataDir(text: string): string {
  if (text.trim() === '') throw new UsageError('--data-dir is empty');
  const dataDir = nodePath.resolve(text);
  const parent = nodePath.dirname(dataDir);
  const parentStat = statUnlessDenied(parent);
  if (parentStat === undefined || (parentStat !== 'denied' && !parentStat.isDirectory())) {
    throw new UsageError(`--data-dir ${text}: the parent directory ${parent} does not exist (create it first)`);
  }
  const st = statUnlessDenied(dataDir);
  if (st !== undefined && st !== 'denied' && !st.isDirectory()) throw new UsageError(`--data-dir ${text} exists and is not a directory`);
  return dataDir;
}

/**
 * Whether this process may use `dataDir` (an absolute path): every directory above it searchable,
 * and either the data dir missing with a writable parent, or the data dir readable, writable and
 * searchable with everything in it readable (and its top-level files, the log, writable).
 * Returns one line that names the path and the problem, or undefined when all is well.
 *
 * kv-server checks this before it opens anything, so that a permission problem is reported as
 * such, with the path, and nothing is created or changed (SQLite would otherwise fail half-way
 * with a message about a "readonly database" or a "disk I/O error").
 */
export function dataDirAccessProblem(dataDir: string): string | undefined {
  const parent = nodePath.dirname(dataDir);
  const ancestors: string[] = [];
  for (let d = parent; ; d = nodePath.dirname(d)) {
    ancestors.unshift(d);
    if (nodePath.dirname(d) === d) break;
  }
  for (const d of ancestors) {
    const why = denied(d, fs.constants.X_OK, 'search (x)');
    if (why) return `cannot reach data dir ${dataDir}: ${why}`;
  }
  if (fs.statSync(dataDir, { throwIfNoEntry: false }) === undefined) {
    const why = denied(parent, fs.constants.W_OK, 'write');
    return why ? `cannot create data dir ${dataDir}: ${why}` : undefined;
  }
  const rwx = fs.constants.R_OK | fs.constants.W_OK | fs.constants.X_OK;
  const why = denied(dataDir, rwx, 'read, write and search (rwx)') ?? deniedInside(dataDir, 0);
  return why ? `cannot use data dir ${dataDir}: ${why}` : undefined;
}

function deniedInside(dir: string, depth: number): string | undefined {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = nodePath.join(dir, entry.name);
    const why = entry.isDirectory()
      ? (denied(p, fs.constants.R_OK | fs.constants.W_OK | fs.constants.X_OK, 'read, write and search (rwx)') ??
        (depth < 2 ? deniedInside(p, depth + 1) : undefined))
      : depth === 0
        ? denied(p, fs.constants.R_OK | fs.constants.W_OK, 'read and write')
        : denied(p, fs.constants.R_OK, 'read');
    if (why) return why;
  }
  return undefined;
}

/** Why this process may not `mode` path `p` (one clause), or undefined if it may. */
function denied(p: string, mode: number, what: string): string | undefined {
  try {
    fs.accessSync(p, mode);
    return undefined;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined; // gone meanwhile: whoever opens it next will say
    if (code === 'EROFS') return `${p} is on a read-only file system`;
    const st = fs.statSync(p, { throwIfNoEntry: false });
    const owner = st ? `; it is owned by uid ${st.uid}, gid ${st.gid}, mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')}` : '';
    const uid = typeof process.getuid === 'function' ? ` (uid ${process.getuid()})` : '';
    return `permission denied: this user${uid} may not ${what} ${p}${owner}. Fix its owner or mode, or run kv-server as the user that owns it`;
  }
}

/** A path's stat, undefined if it does not exist, or 'denied' (kv-server then reports the permission problem itself). */
function statUnlessDenied(p: string): fs.Stats | undefined | 'denied' {
  try {
    return fs.statSync(p, { throwIfNoEntry: false });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EACCES') return 'denied';
    throw e;
  }
}

function wholeNumber(flag: string, v: unknown, range: { min: number; max: number }, unit: string): number {
  const n = digits(v);
  if (!Number.isSafeInteger(n) || n < range.min || n > range.max) {
    throw new UsageError(`--${flag} must be a whole number of ${unit} from ${range.min} to ${range.max}, got ${JSON.stringify(v)}`);
  }
  return n;
}

/** A number flag as typed: digits only (no "1e12", "0x10" or "-1"), else NaN. */
function digits(v: unknown): number {
  if (typeof v === 'number') return v;
  return typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
}
