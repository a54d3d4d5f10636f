/**
 * kv-server's Prometheus metrics (prom-client), on a registry of their own. Named as etcd names
 * them, with etcd_ replaced by raftkv_, wherever the meaning is the same, so that dashboards and
 * alerts written for etcd carry over; our own under raftkv_.
 *
 * Cheap on the hot path: what a node's state already holds (term, indexes, keys, sessions,
 * pending proposals) is read when Prometheus scrapes (collect()), not counted per request;
 * events are counted per Ready (one per group commit), not per entry. Only a client call costs a
 * counter and a histogram observation each.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { RaftObserver } from '../raft/node.js';
import { NONE, type NodeId } from '../raft/core/types.js';
import type { RaftStatus } from '../raft/core/raft.js';
import type { PeerStats } from '../raft/transport/transport.js';
import type { Load } from '../kv-api.js';

/** What the metrics read at scrape time: the running node's parts (KvServer attaches them once started). */
export interface MetricsSource {
  status(): RaftStatus;
  /** Proposals in flight or waiting for a turn. */
  pendingProposals(): number;
  /** Proposals that reached the log and failed (a counter: it only grows). */
  proposalsFailed(): number;
  keys(): number;
  bytes(): number;
  /** The state as --quota-bytes counts it, and the quota (0: none). */
  quotaUsedBytes(): number;
  quotaBytes(): number;
  sessions(): number;
  /** Size of the latest snapshot written (taken, or installed from the leader); 0 if none yet. */
  snapshotBytes(): number;
  /** Per peer: what the transport sent and received (counters: they only grow). */
  peers?(): ReadonlyMap<NodeId, PeerStats>;
}

/** Seconds: from a fast in-memory call to a slow disk. */
const LATENCY_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
/** etcd's wal_fsync_duration_seconds buckets: 1 ms doubling to 8 s. */
const FSYNC_BUCKETS = [0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096, 8.192];
/** The data calls by kind, as Load counts them; the rest (Status, membership, ...) are not load. */
const DATA_CALLS = new Map<string, 'reads' | 'writes'>([['Get', 'reads'], ['Put', 'writes'], ['Append', 'writes'], ['Delete', 'writes'], ['CompareAndSwap', 'writes']]);
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];
const SNAPSHOT_SECONDS = [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300];

export class ServerMetrics {
  readonly registry = new Registry();
  private source: MetricsSource | undefined;
  private readonly leaderChanges: Counter;
  private readonly fsync: Histogram;
  private readonly persistBatch: Histogram;
  private readonly applyBatch: Histogram;
  private readonly readIndex: Histogram;
  private readonly snapshotSave: Histogram;
  private readonly snapshotsSent: Counter;
  private readonly snapshotsReceived: Counter;
  private readonly snapshotSentBytes: Counter;
  private readonly snapshotReceivedBytes: Counter;
  private readonly roundTrip: Histogram<'To'>;
  private readonly requests: Counter<'method' | 'code'>;
  private readonly requestSeconds: Histogram<'method'>;
  /** The same calls and flushes as plain running totals, read synchronously by Status (kv.proto's Load). */
  private readonly totals = { reads: 0, writes: 0, latency: LATENCY_BUCKETS.map(() => 0), fsyncs: 0, fsyncSeconds: 0 };

  constructor(opts: { processMetrics?: boolean } = {}) {
    const r = [this.registry];
    const source = (): MetricsSource | undefined => this.source;
    // A gauge read from the node at scrape time.
    const state = (name: string, help: string, read: (s: MetricsSource) => number): void => {
      new Gauge({
        name,
        help,
        registers: r,
        collect() {
          const s = source();
          if (s) this.set(read(s));
        },
      });
    };
    // A counter read from a running total elsewhere (prom-client counters only inc(), so by the difference).
    const total = (name: string, help: string, read: (s: MetricsSource) => number): void => {
      let seen = 0;
      new Counter({
        name,
        help,
        registers: r,
        collect() {
          const s = source();
          if (!s) return;
          const v = read(s);
          if (v > seen) this.inc(v - seen);
          seen = v;
        },
      });
    };
    state('raftkv_server_has_leader', 'Whether a leader exists (1) or not (0), as this node knows.', (s) => (s.status().leaderId !== NONE ? 1 : 0));
    state('raftkv_server_is_leader', 'Whether this node is the leader (1) or not (0).', (s) => (s.status().role === 'leader' ? 1 : 0));
    state('raftkv_server_proposals_committed_total', 'The commit index: entries committed (etcd: a gauge of the same name).', (s) => s.status().commit);
    state('raftkv_server_proposals_applied_total', 'The applied index: entries applied (etcd: a gauge of the same name).', (s) => s.status().applied);
    state('raftkv_server_proposals_pending', 'Client writes proposed and not yet applied, or waiting for a turn.', (s) => s.pendingProposals());
    total('raftkv_server_proposals_failed_total', 'Proposals that reached the log and failed (leadership lost, or replaced by another leader\'s entry).', (s) => s.proposalsFailed());
    state('raftkv_server_term', 'The current Raft term.', (s) => s.status().term);
    state('raftkv_server_commit_index', 'The highest log index known committed.', (s) => s.status().commit);
    state('raftkv_server_applied_index', 'The highest log index applied to the state machine.', (s) => s.status().applied);
    state('raftkv_server_last_log_index', 'The index of the last entry in this node\'s log.', (s) => s.status().lastIndex);
    state('raftkv_server_snapshot_index', 'The last index covered by this node\'s latest snapshot.', (s) => s.status().snapshotIndex);
    state('raftkv_kv_keys', 'Keys in the state machine.', (s) => s.keys());
    state('raftkv_kv_bytes', 'Bytes of keys and values in the state machine.', (s) => s.bytes());
    state('raftkv_server_quota_bytes', 'The quota on the state (--quota-bytes; etcd: etcd_server_quota_backend_bytes).', (s) => s.quotaBytes());
    state('raftkv_server_quota_used_bytes', 'The state as the quota counts it: bytes of keys and values, and 128 per key.', (s) => s.quotaUsedBytes());
    state('raftkv_snapshot_size_bytes', 'Size of the latest snapshot file this node wrote (taken, or installed from the leader).', (s) => s.snapshotBytes());
    state('raftkv_kv_sessions', 'Live client sessions in the state machine.', (s) => s.sessions());
    this.peerMetrics(r);

    this.leaderChanges = new Counter({ name: 'raftkv_server_leader_changes_seen_total', help: 'Leader changes seen by this node (a new leader known, or none).', registers: r });
    this.fsync = new Histogram({ name: 'raftkv_disk_wal_fsync_duration_seconds', help: 'Flushes of the log to disk (SQLite\'s sync): the latency of persisting a Ready.', buckets: FSYNC_BUCKETS, registers: r });
    this.persistBatch = new Histogram({ name: 'raftkv_disk_batch_entries', help: 'Log entries made durable per flush (group commit).', buckets: BATCH_BUCKETS, registers: r });
    this.applyBatch = new Histogram({ name: 'raftkv_server_apply_batch_entries', help: 'Committed entries applied per Ready.', buckets: BATCH_BUCKETS, registers: r });
    this.readIndex = new Histogram({ name: 'raftkv_server_read_index_duration_seconds', help: 'ReadIndex rounds started on this node (as leader), until confirmed.', buckets: LATENCY_BUCKETS, registers: r });
    this.snapshotSave = new Histogram({ name: 'raftkv_snapshot_save_duration_seconds', help: 'Taking a snapshot: capture, write and sync, until the log is compacted.', buckets: SNAPSHOT_SECONDS, registers: r });
    this.snapshotsSent = new Counter({ name: 'raftkv_snapshots_sent_total', help: 'Snapshots sent to followers.', registers: r });
    this.snapshotsReceived = new Counter({ name: 'raftkv_snapshots_received_total', help: 'Snapshots received from the leader and installed.', registers: r });
    this.snapshotSentBytes = new Counter({ name: 'raftkv_snapshot_sent_bytes_total', help: 'Bytes of snapshots sent to followers.', registers: r });
    this.snapshotReceivedBytes = new Counter({ name: 'raftkv_snapshot_received_bytes_total', help: 'Bytes of snapshots received and installed.', registers: r });
    this.roundTrip = new Histogram({ name: 'raftkv_network_peer_round_trip_time_seconds', help: 'Round trips of a heartbeat to each peer and its answer.', labelNames: ['To'], buckets: LATENCY_BUCKETS, registers: r });
    this.requests = new Counter({ name: 'raftkv_server_client_requests_total', help: 'Client calls by method and gRPC status code.', labelNames: ['method', 'code'], registers: r });
    this.requestSeconds = new Histogram({ name: 'raftkv_server_client_request_duration_seconds', help: 'Client calls by method, until answered.', labelNames: ['method'], buckets: LATENCY_BUCKETS, registers: r });
    if (opts.processMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }

  /** The running node, read at each scrape; until attached the state gauges read 0. */
  attach(source: MetricsSource): void {
    this.source = source;
  }

  /** The node's events, counted. */
  observer(): RaftObserver {
    return {
      leaderChanged: () => this.leaderChanges.inc(),
      synced: (ms, entries) => {
        this.fsync.observe(ms / 1000);
        this.totals.fsyncs++;
        this.totals.fsyncSeconds += ms / 1000;
        if (entries > 0) this.persistBatch.observe(entries);
      },
      ready: (rd) => {
        if (rd.committedEntries.length > 0) this.applyBatch.observe(rd.committedEntries.length);
      },
      roundTrip: (peer, ms) => this.roundTrip.observe({ To: String(peer) }, ms / 1000),
      readConfirmed: (ms) => this.readIndex.observe(ms / 1000),
      snapshotTaken: (_meta, ms) => this.snapshotSave.observe(ms / 1000),
      snapshotSent: (_to, _meta, bytes) => {
        this.snapshotsSent.inc();
        this.snapshotSentBytes.inc(bytes);
      },
      snapshotInstalled: (_meta, bytes) => {
        this.snapshotsReceived.inc();
        this.snapshotReceivedBytes.inc(bytes);
      },
    };
  }

  /** A client call answered: its method (kv.proto's name), gRPC status code name, and latency. */
  clientCall(method: string, code: string, seconds: number): void {
    this.requests.inc({ method, code });
    this.requestSeconds.observe({ method }, seconds);
    const kind = DATA_CALLS.get(method);
    if (kind === undefined) return;
    this.totals[kind]++;
    // Only the first bucket the call falls in: Status makes them cumulative.
    const i = LATENCY_BUCKETS.findIndex((b) => seconds <= b);
    if (i >= 0) this.totals.latency[i]!++;
  }

  /** This node's client load and flushes since it started, as Status reports them. */
  load(): Load {
    const t = this.totals;
    let sum = 0;
    const counts = t.latency.map((n) => (sum += n));
    return { reads: t.reads, writes: t.writes, latencyBoundsSeconds: LATENCY_BUCKETS, latencyCounts: counts, fsyncs: t.fsyncs, fsyncSeconds: t.fsyncSeconds };
  }

  /** The text Prometheus scrapes, and its content type. */
  async scrape(): Promise<{ body: string; contentType: string }> {
    return { body: await this.registry.metrics(), contentType: this.registry.contentType };
  }

  /** Per-peer transport figures, read from the transport's running totals at scrape time. */
  private peerMetrics(r: Registry[]): void {
    const source = (): MetricsSource | undefined => this.source;
    const peerTotal = (name: string, help: string, label: 'To' | 'From', read: (p: PeerStats) => number): void => {
      const seen = new Map<NodeId, number>();
      new Counter({
        name,
        help,
        labelNames: [label],
        registers: r,
        collect() {
          const peers = source()?.peers?.();
          if (!peers) return;
          for (const [id, p] of peers) {
            const v = read(p);
            const before = seen.get(id) ?? 0;
            if (v > before) this.inc({ [label]: String(id) }, v - before);
            seen.set(id, v);
          }
        },
      });
    };
    // etcd's label names: To for what this node sends, From for what it receives.
    peerTotal('raftkv_network_peer_sent_bytes_total', 'Bytes of Raft messages sent to each peer.', 'To', (p) => p.sentBytes);
    peerTotal('raftkv_network_peer_received_bytes_total', 'Bytes of Raft messages received from each peer.', 'From', (p) => p.receivedBytes);
    peerTotal('raftkv_network_peer_sent_failures_total', 'Raft messages to each peer that could not be sent (dropped, or the stream failed).', 'To', (p) => p.sentFailures);
  }
}
