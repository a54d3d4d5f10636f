import * as grpc from '@grpc/grpc-js';

// What every inbound call shares: how it is refused, how it ends, how its data reaches the node.

/** Why an inbound call, message or chunk is refused: the status that ends the call, and why. */
export interface Refusal {
  readonly code: grpc.status;
  readonly details: string;
}

/** Misaddressed, or from another cluster: the sender's configuration is wrong. */
export function precondition(details: string): Refusal {
  return { code: grpc.status.FAILED_PRECONDITION, details };
}

/** Not what our own transport sends: a bug or a stranger. */
export function malformed(details: string): Refusal {
  return { code: grpc.status.INVALID_ARGUMENT, details };
}

export function isRefusal(x: object): x is Refusal {
  return 'details' in x;
}

/**
 * Hands inbound data to the node. An exception from the handler is not the transport's to
 * swallow (e.g. a Raft invariant violation): it surfaces as an uncaught exception instead of
 * being turned into a call error by grpc. Returns whether the handler returned normally.
 */
export function deliver(handle: () => void): boolean {
  try {
    handle();
    return true;
  } catch (err) {
    queueMicrotask(() => {
      throw err;
    });
    return false;
  }
}

/** Ends an inbound call: OK (null), or the refusal's status. Only the first call counts. */
export type InboundFinisher = (status: Refusal | null) => void;
