export { Raft, type RaftConfig, type RaftStatus, type ProposeResult } from './raft.js';
export { RaftLog, RaftInvariantError } from './log.js';
export { seededRng } from './rng.js';
export * from './types.js';
export type { ReadState } from './read-index.js';
