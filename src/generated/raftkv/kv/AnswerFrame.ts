// Original file: proto/kv.proto

import type { Answer as _raftkv_kv_Answer, Answer__Output as _raftkv_kv_Answer__Output } from '../../raftkv/kv/Answer.js';

export interface AnswerFrame {
  'answers'?: (_raftkv_kv_Answer)[];
}

export interface AnswerFrame__Output {
  'answers': (_raftkv_kv_Answer__Output)[];
}
