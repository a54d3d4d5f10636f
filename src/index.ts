/** raftkv: a replicated, linearizable key-value store. The package root is the client SDK. */
export { KvClient, parseEndpoints } from './client/client.js';
export type {
  AddMemberOptions,
  Bytes,
  EndpointStatus,
  KvClientOptions,
  LeaderTransfer,
  Member,
  Membership,
  MembershipChange,
  NodeStatus,
} from './client/client.js';
export {
  ClientClosedError,
  ClusterOverloadedError,
  ClusterUnavailableError,
  InvalidArgumentError,
  MembershipRefusedError,
  RaftkvError,
  UnexpectedServerError,
} from './client/errors.js';
