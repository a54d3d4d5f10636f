/**
 * kv-server's one logger: a line per event, `ts LEVEL msg key=value ...`, with the node's fields
 * on every line. Injected into KvServer, so the simulator collects the same lines in its trace.
 */

export const LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type Level = (typeof LEVELS)[number];
export type Fields = Record<string, string | number | boolean | undefined>;

export interface Logger {
  debug(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
}

function formatValue(v: string | number | boolean): string {
  const s = String(v);
  return s === '' || /[\s="]/.test(s) ? JSON.stringify(s) : s;
}

/** A logger writing lines at `min` and above; `stamp` gives each line's time. */
export function createLogger(
  min: Level,
  base: Fields = {},
  write: (line: string) => void = (l) => process.stderr.write(l),
  stamp: () => string = () => new Date().toISOString(),
): Logger {
  const threshold = LEVELS.indexOf(min);
  const emit = (level: Level, msg: string, fields: Fields = {}): void => {
    if (LEVELS.indexOf(level) < threshold) return;
    let line = `${stamp()} ${level.toUpperCase().padEnd(5)} ${msg}`;
    for (const [k, v] of Object.entries({ ...base, ...fields })) if (v !== undefined) line += ` ${k}=${formatValue(v)}`;
    write(line + '\n');
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
  };
}
