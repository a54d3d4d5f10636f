// Original file: proto/kv.proto

import type { Long } from '@grpc/proto-loader';

export interface LeaderTransferResponse {
  'leaderId'?: (number | string | Long);
  'term'?: (number | string | Long);
}

export interface LeaderTransferResponse__Output {
  'leaderId': (number);
  'term': (number);
}
