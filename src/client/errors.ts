/** Base class of every error the raftkv SDK throws. */
export class RaftkvError extends Error {
  override name = 'RaftkvError';
}

/**
 * The request is invalid and retrying will not help: an empty or oversized key or value, a bad
 * endpoint list. The message comes from the server when the server refused it.
 */
export class InvalidArgumentError extends RaftkvError {
  override name = 'InvalidArgumentError';
}

/**
 * No leader answered within the call's deadline (the cluster is down, partitioned, or still
 * electing). For a write the outcome is unknown: it may still be applied, once.
 */
export class ClusterUnavailableError extends RaftkvError {
  override name = 'ClusterUnavailableError';
  constructor(
    message: string,
    /** How many requests were sent before giving up. */
    readonly attempts: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * The cluster was up but too busy to take the call on before its deadline: every attempt was
 * refused as overloaded (or the last one was). Back off, or lower the load; a write's outcome is
 * unknown as for ClusterUnavailableError.
 */
export class ClusterOverloadedError extends ClusterUnavailableError {
  override name = 'ClusterOverloadedError';
}

/** The client was closed; its calls fail with this. */
export class ClientClosedError extends RaftkvError {
  override name = 'ClientClosedError';
}

/** The server answered with an error that the SDK does not expect (a bug, or an incompatible server). */
export class UnexpectedServerError extends RaftkvError {
  override name = 'UnexpectedServerError';
  constructor(
    message: string,
    /** The gRPC status code. */
    readonly code: number,
  ) {
    super(message);
  }
}
