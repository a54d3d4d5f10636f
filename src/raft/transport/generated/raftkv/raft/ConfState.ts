// Original file: proto/raft.proto

import type { Long } from '@grpc/proto-loader';

/**
 * A cluster configuration (src/raft/core/conf.ts): positive node ids, each list in strictly
 * ascending order and at most 1024 long, at least one voter. Outside a joint configuration
 * voters_outgoing and learners_next are empty and auto_leave is false. A receiver refuses one
 * that breaks any of this or that conf.ts's confInvalid() refuses.
 */
export interface ConfState {
  'voters'?: (number | string | Long)[];
  /**
   * C_old of a joint configuration
   */
  'votersOutgoing'?: (number | string | Long)[];
  'learners'?: (number | string | Long)[];
  /**
   * voters of C_old that become learners when it is left
   */
  'learnersNext'?: (number | string | Long)[];
  'autoLeave'?: (boolean);
}

/**
 * A cluster configuration (src/raft/core/conf.ts): positive node ids, each list in strictly
 * ascending order and at most 1024 long, at least one voter. Outside a joint configuration
 * voters_outgoing and learners_next are empty and auto_leave is false. A receiver refuses one
 * that breaks any of this or that conf.ts's confInvalid() refuses.
 */
export interface ConfState__Output {
  'voters': (number)[];
  /**
   * C_old of a joint configuration
   */
  'votersOutgoing': (number)[];
  'learners': (number)[];
  /**
   * voters of C_old that become learners when it is left
   */
  'learnersNext': (number)[];
  'autoLeave': (boolean);
}
