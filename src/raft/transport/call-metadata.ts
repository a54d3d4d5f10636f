import * as grpc from '@grpc/grpc-js';
import type { NodeId } from '../core/types.js';

/** Request metadata of a stream: lets the receiver refuse a misaddressed stream up front. */
export const MD_CLUSTER = 'raft-cluster-id';
export const MD_FROM = 'raft-from';
export const MD_TO = 'raft-to';

/** How a refusal of another cluster's call begins (a probe of a new member's address looks for it). */
export const CLUSTER_MISMATCH = 'cluster id mismatch';

/** Request metadata of our calls from `self` to `peer`: lets it refuse a misaddressed call up front. */
export function callMetadata(clusterId: string, self: NodeId, peer: NodeId): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set(MD_CLUSTER, clusterId);
  md.set(MD_FROM, String(self));
  md.set(MD_TO, String(peer));
  return md;
}
