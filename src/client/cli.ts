#!/usr/bin/env node
/**
 * kv-cli: one command against a raftkv cluster.
 *
 * Exit codes: 0 ok; 1 key not found, cas mismatch, del of a missing key (or an unexpected server
 * error); 2 usage error (bad command or flags, an unreadable --value-file, or a request the server
 * refuses as invalid, such as an empty or oversized key); 3 cluster unavailable within the
 * deadline, or `status` finds no leader.
 *
 * The command line is parsed with node:util's parseArgs rather than a framework: "--" ends the
 * options, so a KEY or VALUE may start with "-", and every message is ours.
 */
import { isUtf8 } from 'node:buffer';
import * as fs from 'node:fs';
import type { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import { DEFAULT_LIMITS } from '../limits.js';
import { packageVersion } from '../version.js';
import { resolveEndpoints, UsageError } from './address.js';
import type { EndpointStatus } from './client.js';
import { ClusterUnavailableError, InvalidArgumentError } from './errors.js';

const EXIT_OK = 0;
const EXIT_NOT_FOUND = 1;
const EXIT_USAGE = 2;
const EXIT_UNAVAILABLE = 3;

const DEFAULT_TIMEOUT_MS = 5000;
/** An hour: longer is a mistake, and beyond 2^31-1 ms Node's timers fire at once. */
const MAX_TIMEOUT_MS = 3_600_000;

type Operand = 'KEY' | 'VALUE' | 'EXPECTED' | 'NEW';

/** Every command: its operands in order, and what it does (the help is made from this table). */
const COMMANDS: Record<string, { operands: Operand[]; about: string }> = {
  get: { operands: ['KEY'], about: 'print the value of KEY' },
  put: { operands: ['KEY', 'VALUE'], about: 'set KEY to VALUE' },
  append: { operands: ['KEY', 'VALUE'], about: 'append VALUE to the value of KEY' },
  del: { operands: ['KEY'], about: 'delete KEY' },
  cas: { operands: ['KEY', 'EXPECTED', 'NEW'], about: 'set KEY to NEW if its value is EXPECTED (an absent key equals "")' },
  status: { operands: [], about: "show every node's view of the cluster (exit 3 if no node leads)" },
  snapshot: { operands: [], about: 'make each node in --endpoints snapshot its state and compact its log now' },
};
const COMMAND_LIST = Object.keys(COMMANDS).join(', ');

/** Operands that may come from a file (or stdin) instead of the command line, and the option. */
const FROM_FILE: Partial<Record<Operand, 'value-file' | 'expected-file'>> = {
  VALUE: 'value-file',
  NEW: 'value-file',
  EXPECTED: 'expected-file',
};

const OPTIONS = {
  endpoints: { type: 'string' },
  timeout: { type: 'string' },
  json: { type: 'boolean' },
  hex: { type: 'boolean' },
  'value-file': { type: 'string' },
  'expected-file': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
} as const;

const HELP = `Usage: kv-cli [options] <command> [operands]

Commands:
${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${[name, ...c.operands].join(' ').padEnd(22)} ${c.about}`)
  .join('\n')}

Options:
  --endpoints HOST:PORT,...  client addresses of the nodes (default: $RAFTKV_ENDPOINTS)
  --timeout MS               deadline of the command, retries included (default ${DEFAULT_TIMEOUT_MS}; at most ${MAX_TIMEOUT_MS})
  --value-file FILE          put, append: read VALUE from FILE; cas: read NEW from it. "-" reads stdin.
  --expected-file FILE       cas: read EXPECTED from FILE ("-": stdin)
  --hex                      KEY, VALUE, EXPECTED and NEW are given in hex; get prints the value in hex
  --json                     print the result as JSON; get gives "value" (UTF-8 text), or
                             "value_base64" when the value is not UTF-8 ("value_hex" with --hex)
  -h, --help                 print this help
  --version                  print the version of raftkv

A KEY or VALUE that starts with "-" goes after "--":  kv-cli put KEY -- -VALUE
The contents of a file are taken as they are (bytes, any trailing newline included).

Exit codes: 0 ok; 1 key not found, cas mismatch or del of a missing key; 2 usage error (also a key
or value over the limits); 3 cluster unavailable within the deadline, or status finds no leader.

Examples:
  kv-cli --endpoints 127.0.0.1:9001,127.0.0.1:9002,127.0.0.1:9003 put hello world
  RAFTKV_ENDPOINTS=127.0.0.1:9001,127.0.0.1:9002,127.0.0.1:9003 kv-cli get hello
  kv-cli put photo --value-file photo.jpg          (values up to ${DEFAULT_LIMITS.maxValueBytes} bytes)
  tar c notes | kv-cli put notes.tar --value-file -
  kv-cli --hex put 00ff 0a0b0c
  kv-cli cas hello world there
  kv-cli --endpoints 127.0.0.1:9001 status
`;

interface Parsed {
  command: string;
  /** The key as typed, for messages. */
  keyText: string;
  operands: Partial<Record<Operand, Buffer>>;
  endpoints: string[];
  timeoutMs: number;
  json: boolean;
  hex: boolean;
}

type Request = { kind: 'help' } | { kind: 'version' } | { kind: 'run'; parsed: Parsed };

function parseOptions(argv: string[]) {
  try {
    return parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError(parseArgsMessage(e));
  }
}

async function parse(argv: string[]): Promise<Request> {
  const { values, positionals } = parseOptions(argv);
  if (values.help) return { kind: 'help' };
  if (values.version) return { kind: 'version' };

  const [command, ...rest] = positionals;
  if (command === undefined) throw new UsageError(`give a command: ${COMMAND_LIST}`);
  const spec = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
  if (spec === undefined) throw new UsageError(`unknown command "${command}" (commands: ${COMMAND_LIST})`);
  for (const flag of ['value-file', 'expected-file'] as const) {
    if (values[flag] !== undefined && !spec.operands.some((o) => FROM_FILE[o] === flag)) {
      throw new UsageError(`--${flag} does not go with ${command}`);
    }
  }
  if (values['value-file'] === '-' && values['expected-file'] === '-') {
    throw new UsageError('--value-file and --expected-file cannot both read stdin');
  }
  const onCommandLine = spec.operands.filter((o) => {
    const flag = FROM_FILE[o];
    return flag === undefined || values[flag] === undefined;
  });
  const usage = [command, ...onCommandLine].join(' ');
  if (rest.length < onCommandLine.length) {
    const missing = onCommandLine.slice(rest.length);
    const files = [...new Set(missing.flatMap((o) => FROM_FILE[o] ?? []))].map((f) => `--${f} FILE`);
    throw new UsageError(`missing ${missing.join(' ')}: ${usage}${files.length > 0 ? ` (or give ${files.join(' and ')})` : ''}`);
  }
  if (rest.length > onCommandLine.length) {
    throw new UsageError(`unexpected argument(s) ${rest.slice(onCommandLine.length).map((a) => JSON.stringify(a)).join(' ')}: ${usage}`);
  }

  const hex = values.hex === true;
  const operands: Partial<Record<Operand, Buffer>> = {};
  onCommandLine.forEach((o, i) => (operands[o] = fromText(o, rest[i]!, hex)));
  const timeoutMs = parseTimeout(values.timeout);
  const endpoints = resolveEndpoints(values.endpoints);
  for (const o of spec.operands) {
    const flag = FROM_FILE[o];
    const file = flag === undefined ? undefined : values[flag];
    if (file !== undefined) operands[o] = await readValue(`--${flag}`, file);
  }
  const parsed = { command, keyText: rest[0] ?? '', operands, endpoints, timeoutMs, json: values.json === true, hex };
  return { kind: 'run', parsed };
}

/** parseArgs's errors, reworded where they would mislead (a value that starts with "-"). */
function parseArgsMessage(e: unknown): string {
  const err = e as { code?: string; message?: string };
  const unknown = /^Unknown option '([^']+)'/.exec(err.message ?? '');
  if (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && unknown) {
    return (
      `unknown option ${unknown[1]!} (options: ${Object.keys(OPTIONS).map((o) => `--${o}`).join(', ')}); ` +
      `a KEY or VALUE that starts with "-" goes after "--", as in: kv-cli put KEY -- ${unknown[1]!}`
    );
  }
  return (err.message ?? String(e)).replace(/\s*\n\s*/g, ' ');
}

function parseTimeout(text: string | undefined): number {
  if (text === undefined) return DEFAULT_TIMEOUT_MS;
  const ms = /^\s*\d+\s*$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(ms) || ms < 1 || ms > MAX_TIMEOUT_MS) {
    throw new UsageError(`--timeout must be a whole number of milliseconds from 1 to ${MAX_TIMEOUT_MS}, got ${JSON.stringify(text)}`);
  }
  return ms;
}

function fromText(what: Operand, text: string, hex: boolean): Buffer {
  if (!hex) return Buffer.from(text, 'utf8');
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(text)) {
    throw new UsageError(`--hex: ${what} ${JSON.stringify(text)} is not hex (pairs of the digits 0-9, a-f)`);
  }
  return Buffer.from(text, 'hex');
}

/**
 * The bytes of `file` (stdin for "-"), as they are. Reads at most one byte over the value limit:
 * a larger input is refused before it is held in memory or sent.
 */
async function readValue(flag: string, file: string): Promise<Buffer> {
  const limit = DEFAULT_LIMITS.maxValueBytes;
  const from = file === '-' ? 'stdin' : file;
  let input: Readable;
  if (file === '-') {
    if (process.stdin.isTTY) process.stderr.write('kv-cli: reading the value from stdin; end it with Ctrl-D\n');
    input = process.stdin;
  } else {
    input = fs.createReadStream(file, { end: limit }); // `end` is inclusive: limit + 1 bytes at most
  }
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of input) {
      chunks.push(chunk as Buffer);
      size += (chunk as Buffer).length;
      if (size > limit) break;
    }
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = { ENOENT: 'no such file', EACCES: 'permission denied', EISDIR: 'it is a directory' }[err.code ?? ''] ?? err.message;
    throw new UsageError(`${flag} ${from}: cannot read it: ${why}`);
  } finally {
    if (file === '-') process.stdin.destroy();
  }
  if (size > limit) throw new UsageError(`${flag} ${from}: the value is over the limit of ${limit} bytes`);
  return Buffer.concat(chunks, size);
}

function out(text: string | Buffer): void {
  process.stdout.write(text);
}

function statusTable(rows: EndpointStatus[]): string {
  const header = ['ID', 'ADDRESS', 'ROLE', 'TERM', 'LEADER', 'COMMIT', 'APPLIED'];
  const lines: string[][] = [header];
  const notes: string[] = [];
  for (const r of rows) {
    if (r.ok) {
      const s = r.status;
      lines.push([
        String(s.nodeId),
        r.endpoint,
        s.role,
        String(s.term),
        s.leaderId === 0 ? '-' : String(s.leaderId),
        String(s.commitIndex),
        String(s.appliedIndex),
      ]);
    } else {
      lines.push(['-', r.endpoint, 'unreachable', '-', '-', '-', '-']);
      notes.push(`${r.endpoint}: ${r.error}`);
    }
  }
  const widths = header.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)));
  const text = lines.map((l) => l.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n') + '\n';
  return notes.length > 0 ? text + '\n' + notes.join('\n') + '\n' : text;
}

/**
 * Why `status` cannot name a leader, or undefined if it can: a node that answered leads in the
 * highest term any answering node has seen (a leader cut off in an older term does not count).
 */
function noLeader(rows: EndpointStatus[]): string | undefined {
  const answered = rows.flatMap((r) => (r.ok ? [r.status] : []));
  if (answered.length === 0) return 'no node answered';
  const term = Math.max(...answered.map((s) => s.term));
  if (answered.some((s) => s.role === 'leader' && s.term === term)) return undefined;
  return `no leader: ${answered.length} of ${rows.length} nodes answered, and none of them leads in term ${term}`;
}

/** The JSON of a value: text when it is UTF-8 (exactly), base64 otherwise, or hex if asked. */
function jsonValue(v: Buffer, hex: boolean): Record<string, string> {
  if (hex) return { value_hex: v.toString('hex') };
  return isUtf8(v) ? { value: v.toString('utf8') } : { value_base64: v.toString('base64') };
}

/** A value for a message: short UTF-8 text quoted, otherwise its size. */
function describe(v: Buffer): string {
  return v.length <= 200 && isUtf8(v) ? JSON.stringify(v.toString('utf8')) : `the expected ${v.length} bytes`;
}

async function execute(p: Parsed): Promise<number> {
  // gRPC takes most of the start-up time: loaded only once the command line is known to be good.
  const { KvClient } = await import('./client.js');
  const client = new KvClient({ endpoints: p.endpoints, timeoutMs: p.timeoutMs });
  const json = (v: unknown): void => out(JSON.stringify(v) + '\n');
  const { KEY: key = Buffer.alloc(0), VALUE: value, EXPECTED: expected, NEW: next } = p.operands;
  const notFound = (): void => void process.stderr.write(`kv-cli: key not found: ${p.keyText}\n`);
  try {
    switch (p.command) {
      case 'get': {
        const v = await client.getBytes(key);
        if (p.json) json({ key: p.keyText, found: v !== undefined, ...(v !== undefined ? jsonValue(v, p.hex) : {}) });
        else if (v !== undefined) out(Buffer.concat([p.hex ? Buffer.from(v.toString('hex')) : v, Buffer.from('\n')]));
        else notFound();
        return v === undefined ? EXIT_NOT_FOUND : EXIT_OK;
      }
      case 'put':
      case 'append': {
        await (p.command === 'put' ? client.put(key, value!) : client.append(key, value!));
        if (p.json) json({ ok: true });
        else out('OK\n');
        return EXIT_OK;
      }
      case 'del': {
        const existed = await client.delete(key);
        if (p.json) json({ key: p.keyText, existed });
        else if (existed) out('deleted\n');
        else notFound();
        return existed ? EXIT_OK : EXIT_NOT_FOUND;
      }
      case 'cas': {
        const swapped = await client.cas(key, expected!, next!);
        if (p.json) json({ key: p.keyText, swapped });
        else if (swapped) out('OK\n');
        else process.stderr.write(`kv-cli: cas not applied: the value of ${p.keyText} is not ${describe(expected!)} (or the key is absent)\n`);
        return swapped ? EXIT_OK : EXIT_NOT_FOUND;
      }
      case 'status': {
        const rows = await client.status();
        if (p.json) json(rows);
        else out(statusTable(rows));
        const why = noLeader(rows);
        if (why !== undefined) process.stderr.write(`kv-cli: ${why}\n`);
        return why === undefined ? EXIT_OK : EXIT_UNAVAILABLE;
      }
      case 'snapshot': {
        const rows = await client.snapshot();
        if (p.json) json(rows);
        for (const r of rows) {
          if (!r.ok) process.stderr.write(`kv-cli: ${r.endpoint}: ${r.error}\n`);
          else if (!p.json) out(`${r.endpoint}: snapshot at index ${r.value.index} (term ${r.value.term})\n`);
        }
        return rows.every((r) => r.ok) ? EXIT_OK : EXIT_UNAVAILABLE;
      }
      default:
        throw new UsageError(`unknown command "${p.command}"`);
    }
  } finally {
    client.close();
  }
}

async function main(): Promise<number> {
  let req: Request;
  try {
    req = await parse(process.argv.slice(2));
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`kv-cli: ${e.message}\nRun kv-cli --help for usage.\n`);
    return EXIT_USAGE;
  }
  if (req.kind === 'help') {
    out(HELP);
    return EXIT_OK;
  }
  if (req.kind === 'version') {
    out(`${packageVersion()}\n`);
    return EXIT_OK;
  }
  try {
    return await execute(req.parsed);
  } catch (e) {
    if (e instanceof InvalidArgumentError) {
      process.stderr.write(`kv-cli: invalid request: ${e.message}\n`);
      return EXIT_USAGE;
    }
    if (e instanceof ClusterUnavailableError) {
      process.stderr.write(`kv-cli: cluster unavailable: ${e.message}\n`);
      return EXIT_UNAVAILABLE;
    }
    process.stderr.write(`kv-cli: error: ${e instanceof Error ? e.message : String(e)}\n`);
    return EXIT_NOT_FOUND;
  }
}

// A reader that stops early (kv-cli get k | head -c 10) is not an error.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? EXIT_OK);
  throw e;
});
const code = await main();
process.exitCode = code;
// Whatever might still hold the event loop (it should be nothing), do not hang; but only once
// stdout has taken everything, so that a large value to a slow reader is not cut short.
process.stdout.write('', () => setTimeout(() => process.exit(code), 2000).unref());
