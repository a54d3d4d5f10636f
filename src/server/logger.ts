/**
 * kv-server's one logger. JSON lines (pino) when stderr is not a terminal, so a log pipeline can
 * parse them; `ts LEVEL msg key=value ...` on a terminal, for people. Every line carries the node
 * id, and its term and role once the composition root binds a provider of them: callers never
 * pass them. Injected into KvServer, so the simulator collects the same events in its trace.
 */
import { pino } from 'pino';

export const LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type Level = (typeof LEVELS)[number];
export const FORMATS = ['auto', 'json', 'text'] as const;
export type Format = (typeof FORMATS)[number];
export type Fields = Record<string, string | number | boolean | undefined>;

export interface Logger {
  debug(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
}

/** A logger whose lines also carry what `context` returns at the time of each line (term, role). */
export interface ProcessLogger extends Logger {
  bind(context: () => Fields): void;
}

export interface LoggerOptions {
  min: Level;
  /** Fields on every line (the node id). */
  base?: Fields;
  format?: Format;
  /** Whether the output is a terminal: decides `auto`. */
  isTTY?: boolean;
  write?: (line: string) => void;
  /** Each text line's time (JSON lines take pino's epoch-ms `time`). */
  stamp?: () => string;
}

function formatValue(v: string | number | boolean): string {
  const s = String(v);
  return s === '' || /[\s="]/.test(s) ? JSON.stringify(s) : s;
}

/** `auto` is JSON unless a person is reading (a TTY). */
export function resolveFormat(format: Format, isTTY: boolean): 'json' | 'text' {
  return format === 'auto' ? (isTTY ? 'text' : 'json') : format;
}

/** A logger writing lines at `opts.min` and above, in the format `opts.format` resolves to. */
export function createLogger(opts: LoggerOptions): ProcessLogger {
  const write = opts.write ?? ((l: string) => void process.stderr.write(l));
  const base = opts.base ?? {};
  let context: () => Fields = () => ({});
  const fmt = resolveFormat(opts.format ?? 'auto', opts.isTTY ?? process.stderr.isTTY === true);
  const emit = fmt === 'json' ? jsonEmitter(opts.min, base, write, () => context()) : textEmitter(opts.min, base, write, () => context(), opts.stamp);
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    bind: (c) => void (context = c),
  };
}

type Emit = (level: Level, msg: string, fields?: Fields) => void;

function textEmitter(min: Level, base: Fields, write: (l: string) => void, context: () => Fields, stamp = () => new Date().toISOString()): Emit {
  const threshold = LEVELS.indexOf(min);
  return (level, msg, fields = {}) => {
    if (LEVELS.indexOf(level) < threshold) return;
    let line = `${stamp()} ${level.toUpperCase().padEnd(5)} ${msg}`;
    for (const [k, v] of Object.entries({ ...base, ...context(), ...fields })) if (v !== undefined) line += ` ${k}=${formatValue(v)}`;
    write(line + '\n');
  };
}

function jsonEmitter(min: Level, base: Fields, write: (l: string) => void, context: () => Fields): Emit {
  const p = pino(
    {
      level: min,
      base: null, // no pid/hostname: the node id says which process
      // Level names, not pino's numbers: `"level":"warn"` is what a reader greps for.
      formatters: { level: (label) => ({ level: label }) },
      // Read at each line, so term and role are those of the moment; a call's own fields win.
      mixin: () => ({ ...base, ...context() }),
    },
    { write }, // synchronous: a line logged just before a crash or exit is not lost
  );
  return (level, msg, fields) => (fields ? p[level](fields, msg) : p[level](msg));
}
