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
 * The cluster was up but too busy to take the call on before its deadline: the last attempt was
 * refused as overloaded, or ran out of time at a node that answered other calls of this client
 * meanwhile (alive, with a queue too long for the deadline). Back off, or lower the load; a
 * write's outcome is unknown as for ClusterUnavailableError.
 */
export class ClusterOverloadedError extends ClusterUnavailableError {
  override name = 'ClusterOverloadedError';
}

/**
 * The cluster's state is at its quota (kv-server --quota-bytes): the write was refused. Not
 * retried: it is refused again until keys are deleted (deletes are always taken) or the quota is
 * raised.
 */
export class NoSpaceError extends RaftkvError {
  override name = 'NoSpaceError';
  constructor(
    message: string,
    /**
     * False: the write was not applied. True: an earlier attempt of the same call went unanswered
     * (a timeout, a dropped connection) and may yet be applied, once, as with ClusterUnavailableError.
     */
    readonly outcomeUnknown = false,
  ) {
    super(outcomeUnknown ? `${message} (an earlier attempt went unanswered: it may yet be applied)` : message);
  }
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

/**
 * The leader refused a membership change or a leadership transfer, having changed nothing: a
 * change is pending already, the node is unknown, the change would leave no live quorum, the
 * learner is too far behind... `reason` is the server's. Not retried: asking again gets the same
 * answer until the cluster changes.
 */
export class MembershipRefusedError extends RaftkvError {
  override name = 'MembershipRefusedError';
  constructor(
    /** Why, in the server's words. */
    readonly reason: string,
    /**
     * An earlier attempt of the same call had an unknown outcome (timed out, or its leader lost
     * its leadership) and was not found in force when looked for: the refusal may be of that
     * attempt's own change, still pending. `members()` tells.
     */
    readonly afterUnknownOutcome = false,
  ) {
    super(
      `the cluster refused the change: ${reason}` +
        (afterUnknownOutcome ? ' (an earlier attempt of this call had an unknown outcome: it may be pending; see the members)' : ''),
    );
  }
}

/**
 * A backup could not be written (`io`: the local file system refused; `exists`: the file is
 * there and overwriting was not asked for), or what arrived is not a sound backup (`damaged`,
 * after every attempt), or the cluster's state is over the backup size limit (`tooLarge`).
 * Nothing is left under the backup's name: a file there is complete and verified.
 */
export class BackupError extends RaftkvError {
  override name = 'BackupError';
  constructor(
    readonly kind: 'io' | 'exists' | 'damaged' | 'tooLarge',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
