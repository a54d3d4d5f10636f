/**
 * kv.proto's data calls: the field of a Call and an Answer (the Calls stream) and the KvService
 * method that carry each, and the unary RPC of the same call. One table for the server's stream,
 * its forwarding over the peer connection and the SDK's stream. No imports: the simulator and the
 * SDK load it alike.
 */
export const DATA_METHODS = {
  get: 'Get',
  put: 'Put',
  append: 'Append',
  delete: 'Delete',
  compareAndSwap: 'CompareAndSwap',
} as const;

export type DataField = keyof typeof DATA_METHODS;
export type DataMethod = (typeof DATA_METHODS)[DataField];
