/**
 * How long an endpoint that failed to answer (unreachable, timed out) is avoided: hints naming it
 * are not followed meanwhile, so that a client cut off from the leader keeps being served by the
 * followers it can reach (which forward to the leader) instead of going back to the leader.
 */
const SUSPECT_MS = 10_000;

/** The client addresses a client sends to, in turn, avoiding those that recently failed to answer. */
export class Endpoints {
  private current: string[];
  /** Every client address a membership ever named: one no longer named belongs to a removed member. */
  private readonly named = new Set<string>();
  /** Endpoints that recently failed to answer, and until when they are avoided. */
  private readonly suspects = new Map<string, number>();
  private rr: number;

  constructor(readonly configured: readonly string[]) {
    this.current = [...configured];
    this.rr = Math.floor(Math.random() * configured.length);
  }

  get list(): readonly string[] {
    return this.current;
  }

  /** Where to send next: `leader` if it is not suspect, else the next endpoint that is not (or, all suspect, the next). */
  pick(leader: string | undefined): string {
    if (leader !== undefined && !this.isSuspect(leader)) return leader;
    const n = this.current.length;
    for (let i = 0; i < n; i++) {
      const e = this.current[(this.rr + i) % n]!;
      if (!this.isSuspect(e)) {
        this.rr = (this.rr + i) % n;
        return e;
      }
    }
    return this.current[this.rr % n]!;
  }

  /**
   * The members' client addresses, from the cluster: those not known yet are added, those an
   * earlier membership named and this one does not (removed members) are dropped. A configured
   * endpoint no membership ever named stays: it may be another name for a member (a load
   * balancer, a DNS alias, a NAT). Nothing named, or nothing left: the list stays as it is.
   */
  adopt(addresses: readonly string[]): void {
    if (addresses.length === 0) return;
    const now = new Set(addresses);
    const next = this.current.filter((e) => now.has(e) || !this.named.has(e));
    for (const a of addresses) if (!next.includes(a)) next.push(a);
    for (const a of addresses) this.named.add(a);
    this.current = next;
  }

  isSuspect(endpoint: string): boolean {
    const until = this.suspects.get(endpoint);
    if (until === undefined) return false;
    if (Date.now() < until) return true;
    this.suspects.delete(endpoint);
    return false;
  }

  suspect(endpoint: string): void {
    this.suspects.set(endpoint, Date.now() + SUSPECT_MS);
  }

  /** After a failure at `endpoint`: the next pick moves on from it. */
  passOver(endpoint: string): void {
    const n = this.current.length;
    if (this.current[this.rr % n] === endpoint) this.rr = (this.rr + 1) % n;
  }
}
