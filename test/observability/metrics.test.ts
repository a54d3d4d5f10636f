/**
 * ServerMetrics: the names (etcd's, under raftkv_), labels and values after the node's events,
 * and the state read from the running node at scrape time.
 */
import { describe, expect, it } from 'vitest';
import { ServerMetrics, type MetricsSource } from '../../src/server/metrics.js';
import type { RaftStatus } from '../../src/raft/core/raft.js';
import type { Ready } from '../../src/raft/core/types.js';

const status = (over: Partial<RaftStatus> = {}): RaftStatus => ({
  id: 1, role: 'leader', term: 7, vote: 1, leaderId: 1, commit: 42, applied: 40, lastIndex: 45, snapshotIndex: 10,
  conf: { voters: [1, 2, 3], votersOutgoing: [], learners: [], learnersNext: [], autoLeave: false }, leadTransferee: 0, ...over,
});

function source(over: Partial<MetricsSource> = {}): MetricsSource {
  return { status: () => status(), pendingProposals: () => 3, proposalsFailed: () => 0, keys: () => 5, bytes: () => 99, quotaUsedBytes: () => 739, quotaBytes: () => 1 << 30, sessions: () => 2, snapshotBytes: () => 4096, ...over };
}

function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('ServerMetrics', () => {
  it('reads term, indexes, leadership, keys, bytes and sessions from the node at scrape time', async () => {
    const m = new ServerMetrics({ processMetrics: false });
    let st = status();
    m.attach(source({ status: () => st }));
    const text = (await m.scrape()).body;
    expect(value(text, 'raftkv_server_has_leader')).toBe(1);
    expect(value(text, 'raftkv_server_is_leader')).toBe(1);
    expect(value(text, 'raftkv_server_term')).toBe(7);
    expect(value(text, 'raftkv_server_proposals_committed_total')).toBe(42);
    expect(value(text, 'raftkv_server_proposals_applied_total')).toBe(40);
    expect(value(text, 'raftkv_server_commit_index')).toBe(42);
    expect(value(text, 'raftkv_server_applied_index')).toBe(40);
    expect(value(text, 'raftkv_server_proposals_pending')).toBe(3);
    expect(value(text, 'raftkv_kv_keys')).toBe(5);
    expect(value(text, 'raftkv_kv_bytes')).toBe(99);
    expect(value(text, 'raftkv_server_quota_used_bytes')).toBe(739);
    expect(value(text, 'raftkv_server_quota_bytes')).toBe(1 << 30);
    expect(value(text, 'raftkv_kv_sessions')).toBe(2);
    expect(value(text, 'raftkv_snapshot_size_bytes')).toBe(4096);
    st = status({ role: 'follower', leaderId: 0 });
    const later = (await m.scrape()).body;
    expect(value(later, 'raftkv_server_has_leader')).toBe(0);
    expect(value(later, 'raftkv_server_is_leader')).toBe(0);
  });

  it('counts proposals failed from the store\'s running total, never backwards', async () => {
    const m = new ServerMetrics({ processMetrics: false });
    let failed = 2;
    m.attach(source({ proposalsFailed: () => failed }));
    expect(value((await m.scrape()).body, 'raftkv_server_proposals_failed_total')).toBe(2);
    failed = 5;
    expect(value((await m.scrape()).body, 'raftkv_server_proposals_failed_total')).toBe(5);
  });

  it('counts the node\'s events: leader changes, fsyncs and their batches, applies, reads, round trips, snapshots', async () => {
    const m = new ServerMetrics({ processMetrics: false });
    const o = m.observer();
    o.leaderChanged!(2, 3);
    o.leaderChanged!(0, 4);
    o.synced!(3, 16);
    o.synced!(1, 0);
    o.ready!({ committedEntries: new Array(4) } as unknown as Ready, undefined as never);
    o.readConfirmed!(2);
    o.roundTrip!(2, 0.5);
    o.snapshotTaken!({ index: 9, term: 1 }, 120);
    o.snapshotSent!(3, { index: 9, term: 1 }, 1000);
    o.snapshotInstalled!({ index: 9, term: 1 }, 700);
    m.clientCall('Put', 'OK', 0.002);
    m.clientCall('Put', 'UNAVAILABLE', 0.001);
    const text = (await m.scrape()).body;
    expect(value(text, 'raftkv_server_leader_changes_seen_total')).toBe(2);
    expect(value(text, 'raftkv_disk_wal_fsync_duration_seconds_count')).toBe(2);
    expect(value(text, 'raftkv_disk_wal_fsync_duration_seconds_sum')).toBeCloseTo(0.004);
    expect(value(text, 'raftkv_disk_batch_entries_count')).toBe(1); // a flush of a term or vote only holds no batch
    expect(value(text, 'raftkv_disk_batch_entries_sum')).toBe(16);
    expect(value(text, 'raftkv_server_apply_batch_entries_sum')).toBe(4);
    expect(value(text, 'raftkv_server_read_index_duration_seconds_sum')).toBeCloseTo(0.002);
    expect(value(text, 'raftkv_network_peer_round_trip_time_seconds_count{To="2"}')).toBe(1);
    expect(value(text, 'raftkv_snapshot_save_duration_seconds_sum')).toBeCloseTo(0.12);
    expect(value(text, 'raftkv_snapshots_sent_total')).toBe(1);
    expect(value(text, 'raftkv_snapshot_sent_bytes_total')).toBe(1000);
    expect(value(text, 'raftkv_snapshots_received_total')).toBe(1);
    expect(value(text, 'raftkv_snapshot_received_bytes_total')).toBe(700);
    expect(value(text, 'raftkv_server_client_requests_total{method="Put",code="OK"}')).toBe(1);
    expect(value(text, 'raftkv_server_client_requests_total{method="Put",code="UNAVAILABLE"}')).toBe(1);
    expect(value(text, 'raftkv_server_client_request_duration_seconds_count{method="Put"}')).toBe(2);
  });

  it('keeps the load Status reports: data calls by kind, their latency cumulative over the buckets, and the flushes', () => {
    const m = new ServerMetrics({ processMetrics: false });
    m.clientCall('Get', 'OK', 0.0002);
    m.clientCall('Get', 'UNAVAILABLE', 0.003);
    m.clientCall('Put', 'OK', 0.003);
    m.clientCall('CompareAndSwap', 'OK', 9); // beyond the last bucket: counted, in no bucket
    m.clientCall('Status', 'OK', 0.001); // not load
    m.observer().synced!(4, 2);
    const l = m.load();
    expect([l.reads, l.writes, l.fsyncs, l.fsyncSeconds]).toEqual([2, 2, 1, 0.004]);
    const within = (s: number): number => l.latencyCounts[l.latencyBoundsSeconds.indexOf(s)]!;
    expect([within(0.0001), within(0.00025), within(0.0025), within(0.005), within(5)]).toEqual([0, 1, 1, 3, 3]);
  });

  it('reads the state gauges as 0 until a node is attached (a starting node has no leader), and adds Node\'s process metrics by default', async () => {
    const bare = (await new ServerMetrics({ processMetrics: false }).scrape()).body;
    expect(value(bare, 'raftkv_server_term')).toBe(0);
    expect(value(bare, 'raftkv_server_has_leader')).toBe(0);
    const withProcess = (await new ServerMetrics().scrape()).body;
    expect(withProcess).toContain('process_cpu_user_seconds_total');
    expect(withProcess).toContain('nodejs_eventloop_lag_seconds');
  });

  it('counts each peer\'s bytes sent and received and send failures from the transport\'s totals, labelled as etcd does', async () => {
    const m = new ServerMetrics({ processMetrics: false });
    const peers = new Map([[2, { sentBytes: 100, receivedBytes: 50, sentFailures: 0 }]]);
    m.attach(source({ peers: () => peers }));
    await m.scrape();
    peers.set(2, { sentBytes: 300, receivedBytes: 80, sentFailures: 4 });
    const text = (await m.scrape()).body;
    expect(value(text, 'raftkv_network_peer_sent_bytes_total{To="2"}')).toBe(300);
    expect(value(text, 'raftkv_network_peer_received_bytes_total{From="2"}')).toBe(80);
    expect(value(text, 'raftkv_network_peer_sent_failures_total{To="2"}')).toBe(4);
  });
});
