/** Identical log lines (same key) are emitted at most once per this interval. */
const LOG_INTERVAL_MS = 10_000;

/** Emits a line at most once per interval per key, reporting how many were suppressed. */
export class RateLimitedLog {
  private readonly last = new Map<string, { at: number; suppressed: number }>();
  constructor(
    private readonly sink: (line: string) => void,
    private readonly prefix: string,
  ) {}

  log(key: string, line: string): void {
    const now = Date.now();
    const seen = this.last.get(key);
    if (seen !== undefined && now - seen.at < LOG_INTERVAL_MS) {
      seen.suppressed++;
      return;
    }
    const suffix = seen !== undefined && seen.suppressed > 0 ? ` (${seen.suppressed} similar suppressed)` : '';
    this.last.set(key, { at: now, suppressed: 0 });
    if (this.last.size > 1000) this.last.clear(); // keys are bounded in practice; never grow unbounded
    this.emit(line + suffix);
  }

  emit(line: string): void {
    try {
      this.sink(`${this.prefix}${line}`);
    } catch {
      // a failing logger must not break the transport
    }
  }
}

/** A string from the wire, fit for a log line: quoted (no raw newlines or control characters) and cut to `max` characters. */
export function quote(s: string, max = 64): string {
  return JSON.stringify(s.length > max ? `${s.slice(0, max)}…` : s);
}

/** A node id from the wire, fit for a log line: as it is if it is a number, else quoted. */
export function quoteId(s: string): string {
  return /^[0-9]{1,20}$/.test(s) ? s : quote(s);
}
