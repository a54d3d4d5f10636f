// Original file: proto/raft.proto

export const EntryType = {
  ENTRY_TYPE_NORMAL: 'ENTRY_TYPE_NORMAL',
  /**
   * appended by every new leader; state machines skip it
   */
  ENTRY_TYPE_NOOP: 'ENTRY_TYPE_NOOP',
} as const;

export type EntryType =
  | 'ENTRY_TYPE_NORMAL'
  | 0
  /**
   * appended by every new leader; state machines skip it
   */
  | 'ENTRY_TYPE_NOOP'
  | 1

export type EntryType__Output = typeof EntryType[keyof typeof EntryType]
