/** raftkv: a replicated, linearizable key-value store. The package root is the client SDK. */
export { KvClient, parseEndpoints } from './client/client.js';
export type { Bytes, EndpointStatus, KvClientOptions, NodeStatus } from './client/client.js';
export {
  ClientClosedError,
  ClusterOverloadedError,
  ClusterUnavailableError,
  InvalidArgumentError,
  RaftkvError,
  UnexpectedServerError,
} from './client/errors.js';
