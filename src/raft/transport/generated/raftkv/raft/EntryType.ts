// Original file: proto/raft.proto

export const EntryType = {
  ENTRY_TYPE_NORMAL: 'ENTRY_TYPE_NORMAL',
  /**
   * appended by every new leader; state machines skip it
   */
  ENTRY_TYPE_NOOP: 'ENTRY_TYPE_NOOP',
  /**
   * A configuration change: `data` is the whole configuration it puts in force and a context
   * for the driver (layout in src/raft/core/conf-codec.ts). A receiver refuses a message with
   * one it cannot decode.
   */
  ENTRY_TYPE_CONF: 'ENTRY_TYPE_CONF',
} as const;

export type EntryType =
  | 'ENTRY_TYPE_NORMAL'
  | 0
  /**
   * appended by every new leader; state machines skip it
   */
  | 'ENTRY_TYPE_NOOP'
  | 1
  /**
   * A configuration change: `data` is the whole configuration it puts in force and a context
   * for the driver (layout in src/raft/core/conf-codec.ts). A receiver refuses a message with
   * one it cannot decode.
   */
  | 'ENTRY_TYPE_CONF'
  | 2

export type EntryType__Output = typeof EntryType[keyof typeof EntryType]
