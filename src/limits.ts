/** Request size limits: checked by KvStore on every node, and used to size gRPC messages. */
export interface KvLimits {
  maxKeyBytes: number;
  maxValueBytes: number;
}

export const DEFAULT_LIMITS: KvLimits = { maxKeyBytes: 4096, maxValueBytes: 1024 * 1024 };

/** How many bytes a KV request or response may have on the wire. */
export function maxMessageBytes(limits: KvLimits = DEFAULT_LIMITS): number {
  // CompareAndSwap carries two values and a key; 64 KiB for framing and the session.
  return 2 * limits.maxValueBytes + limits.maxKeyBytes + 64 * 1024;
}
