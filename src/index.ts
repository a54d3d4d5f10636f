/** raftkv: a replicated, linearizable key-value store. The package root is the client SDK. */
export { KvClient, parseEndpoints } from './client/client.js';
export type {
  AddMemberOptions,
  BackupOptions,
  BackupResult,
  Bytes,
  ClientTls,
  EndpointStatus,
  KvClientOptions,
  LeaderTransfer,
  Member,
  Membership,
  MembershipChange,
  NodeStatus,
  ReadOptions,
} from './client/client.js';
export {
  BackupError,
  ClientClosedError,
  ClusterOverloadedError,
  ClusterUnavailableError,
  InvalidArgumentError,
  MembershipRefusedError,
  NoSpaceError,
  RaftkvError,
  UnexpectedServerError,
} from './client/errors.js';
