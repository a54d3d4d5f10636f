/**
 * The test process's own pauses. A timer due every 10 ms that fires late means this process's
 * event loop was held up (a GC pause, the machine busy with other processes) for that long, and
 * the answers that arrived meanwhile were seen, and stamped, only afterwards: a stretch without
 * answers that a test measures is the cluster's only where this process was running.
 */
export class LoopStalls {
  private readonly stalls: { from: number; to: number }[] = [];
  private readonly timer: NodeJS.Timeout;
  private last: number;

  constructor(
    /** The clock the stalls are reported in (a workload's history clock). */
    private readonly now: () => number,
    tickMs = 10,
    /** Lateness below this is timer jitter, not a stall. */
    minMs = 20,
  ) {
    this.last = now();
    this.timer = setInterval(() => {
      const t = now();
      const late = t - this.last - tickMs;
      if (late >= minMs) this.stalls.push({ from: t - late, to: t });
      this.last = t;
    }, tickMs);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** How many ms of [from, to] this process was stalled. */
  within(from: number, to: number): number {
    let ms = 0;
    for (const s of this.stalls) ms += Math.max(0, Math.min(to, s.to) - Math.max(from, s.from));
    return ms;
  }

  /** The longest stall, in ms. */
  longest(): number {
    return Math.round(Math.max(0, ...this.stalls.map((s) => s.to - s.from)));
  }
}
