import * as grpc from '@grpc/grpc-js';
import { checkAddress } from '../address.js';
import { UnexpectedServerError } from './errors.js';
import type { Member, Membership } from './membership.js';
import type { Router } from './router.js';

/** A background refresh gives up after this (or the client's timeout, if shorter): the next event tries again. */
const REFRESH_DEADLINE_MS = 2000;

/**
 * Keeps a client's endpoints in step with the cluster's membership, so that a client configured
 * with one live endpoint finds the others, and stops trying members that were removed. It asks
 * (MemberList, in the background) when the client first hears from the cluster, when the leader
 * moves and when an endpoint fails to answer, at most once per `intervalMs`: a thousand clients
 * that lose their leader at once must not add a thousand calls a second to the election. A
 * server without MemberList (an older raftkv) leaves the configured endpoints as they are.
 */
export class EndpointRefresh {
  private last = -Infinity;
  private running = false;
  private unsupported = false;
  /** Until a node answers, there is no one to ask: failures then are the router's to report. */
  private connected = false;

  constructor(
    private readonly router: Router,
    /** 0: never, the configured endpoints are all the client uses. */
    private readonly intervalMs: number,
  ) {
    if (intervalMs > 0) {
      router.onEvent = (event) => {
        if (event === 'answered') this.connected = true;
        if (this.connected) this.poke();
      };
    }
  }

  /** A configuration from the cluster: its client addresses become the endpoints (Endpoints.adopt). */
  learned(members: readonly Member[]): void {
    if (this.intervalMs === 0) return;
    this.router.endpoints.adopt(members.flatMap((m) => (checkAddress(m.clientAddr).ok ? [m.clientAddr] : [])));
  }

  poke(): void {
    if (this.unsupported || this.running || Date.now() - this.last < this.intervalMs) return;
    this.running = true;
    this.last = Date.now();
    const deadline = Date.now() + Math.min(this.router.timeoutMs, REFRESH_DEADLINE_MS);
    // Any node's configuration will do here: one call, not the leader's view members() looks for.
    this.router
      .send<Membership>('MemberList', () => ({}), { anyNode: true }, deadline)
      .then(
        (m) => this.learned(m.members),
        (e: unknown) => {
          if (e instanceof UnexpectedServerError && e.code === grpc.status.UNIMPLEMENTED) this.unsupported = true;
          // Anything else (no answer, the client closed): the next event tries again.
        },
      )
      .finally(() => (this.running = false));
  }
}
