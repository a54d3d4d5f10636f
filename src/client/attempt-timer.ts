const DEFAULT_ATTEMPT_TIMEOUT_MS = 1000;
const MIN_ATTEMPT_TIMEOUT_MS = 250;
const MAX_ATTEMPT_TIMEOUT_MS = 2000;

/**
 * The deadline of one attempt: fixed if the user gave one, else adapted to the latencies seen
 * (the smoothed latency plus four deviations, as TCP's retransmission timeout, RFC 6298), so that
 * a node that went silent costs a fraction of a second, not seconds.
 */
export class AttemptTimer {
  /** Smoothed latency of answered attempts and its mean deviation. */
  private srtt: number | undefined;
  private rttvar = 0;

  constructor(readonly fixedMs: number | undefined) {}

  /** Before any answer, and for calls made once to every node. */
  static readonly DEFAULT_MS = DEFAULT_ATTEMPT_TIMEOUT_MS;

  ms(): number {
    if (this.fixedMs !== undefined) return this.fixedMs;
    if (this.srtt === undefined) return DEFAULT_ATTEMPT_TIMEOUT_MS;
    return Math.min(MAX_ATTEMPT_TIMEOUT_MS, Math.max(MIN_ATTEMPT_TIMEOUT_MS, this.srtt + 4 * this.rttvar));
  }

  sample(ms: number): void {
    if (this.srtt === undefined) {
      this.srtt = ms;
      this.rttvar = ms / 2;
      return;
    }
    this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - ms);
    this.srtt = 0.875 * this.srtt + 0.125 * ms;
  }
}
