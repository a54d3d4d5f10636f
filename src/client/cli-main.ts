/**
 * kv-cli: one command against a raftkv cluster. cli.ts runs it as a process; tests call main().
 *
 * Exit codes: 0 ok; 1 key not found, cas mismatch, del of a missing key, a backup that could not
 * be written (or an unexpected server error); 2 usage error (bad command or flags, an unreadable
 * --value-file, a request the server refuses as invalid, such as an empty or oversized key, or a
 * backup FILE that exists, without --force); 3 cluster unavailable within the deadline, or
 * `status` finds no leader; 4 the cluster refused a membership change or a leadership
 * transfer (one pending already, an unknown node, no live quorum left, ...), or a write because its
 * state is at its quota (kv-server --quota-bytes): the reason is printed.
 *
 * The command line is parsed with node:util's parseArgs rather than a framework: "--" ends the
 * options, so a KEY or VALUE may start with "-", and every message is ours.
 */
import { parseArgs } from 'node:util';
import { DEFAULT_LIMITS } from '../limits.js';
import { packageVersion } from '../version.js';
import { resolveEndpoints, UsageError } from './address.js';
import { BACKUP_ABOUT, BACKUP_USAGE, parseBackup, runBackup, type BackupCommand } from './cli-backup.js';
import { MEMBER_FLAGS, MEMBER_GROUPS, memberHelp, parseMember, runMember, type MemberCommand, type MemberGroup } from './cli-member.js';
import { formatTable } from './cli-table.js';
import { describe, fromText, jsonValue, readValue, type Operand } from './cli-values.js';
import type { ClientTls, EndpointStatus } from './client.js';
import { TLS_HELP, TLS_OPTIONS, tlsFromFlags } from './cli-tls.js';
import { BackupError, ClusterUnavailableError, InvalidArgumentError, MembershipRefusedError, NoSpaceError } from './errors.js';

const EXIT_OK = 0;
const EXIT_NOT_FOUND = 1;
const EXIT_USAGE = 2;
const EXIT_UNAVAILABLE = 3;
const EXIT_REFUSED = 4;

const DEFAULT_TIMEOUT_MS = 5000;
/** An hour: longer is a mistake, and beyond 2^31-1 ms Node's timers fire at once. */
const MAX_TIMEOUT_MS = 3_600_000;

/** Where kv-cli writes: the process's stdout and stderr, or a test's buffers. */
export interface CliIo {
  out(text: string | Buffer): void;
  err(text: string): void;
}

const PROCESS_IO: CliIo = {
  out: (text) => void process.stdout.write(text),
  err: (text) => void process.stderr.write(text),
};

/** Every key-value command: its operands in order, and what it does (the help is made from this table). */
const COMMANDS: Record<string, { operands: Operand[]; about: string }> = {
  get: { operands: ['KEY'], about: 'print the value of KEY' },
  put: { operands: ['KEY', 'VALUE'], about: 'set KEY to VALUE' },
  append: { operands: ['KEY', 'VALUE'], about: 'append VALUE to the value of KEY' },
  del: { operands: ['KEY'], about: 'delete KEY' },
  cas: { operands: ['KEY', 'EXPECTED', 'NEW'], about: 'set KEY to NEW if its value is EXPECTED (an absent key equals "")' },
  status: { operands: [], about: "show every node's view of the cluster (exit 3 if no node leads)" },
  snapshot: { operands: [], about: 'make each node in --endpoints snapshot its state and compact its log now' },
};
const COMMAND_LIST = [...Object.keys(COMMANDS), 'backup', ...MEMBER_GROUPS].join(', ');

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
  serializable: { type: 'boolean' },
  'value-file': { type: 'string' },
  'expected-file': { type: 'string' },
  'client-addr': { type: 'string' },
  learner: { type: 'boolean' },
  force: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
  ...TLS_OPTIONS,
} as const;

const HELP = `Usage: kv-cli [options] <command> [operands]

Commands:
${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${[name, ...c.operands].join(' ').padEnd(22)} ${c.about}`)
  .join('\n')}
  ${BACKUP_USAGE.padEnd(22)} ${BACKUP_ABOUT}

Membership (changes and transfers go to the leader; a refused one exits 4 and says why):
${memberHelp()}

Options:
  --endpoints HOST:PORT,...  client addresses of the nodes (default: $RAFTKV_ENDPOINTS)
  --timeout MS               deadline of the command, retries included (default ${DEFAULT_TIMEOUT_MS}; at most ${MAX_TIMEOUT_MS});
                             backup: to find a leader that streams, and the longest silence once
                             it streams (a large backup takes longer in all)
  --value-file FILE          put, append: read VALUE from FILE; cas: read NEW from it. "-" reads stdin.
  --expected-file FILE       cas: read EXPECTED from FILE ("-": stdin)
  --hex                      KEY, VALUE, EXPECTED and NEW are given in hex; get prints the value in hex
  --serializable             get: the value the node reached has applied, without the leader (also
                             with no leader), possibly stale; the default is linearizable
  --client-addr HOST:PORT    member add: the new node's client address
  --learner                  member add: add it as a learner (promote it once it has caught up)
  --force                    member remove: even if the voters left would have no live quorum;
                             backup: replace FILE if it exists
  --json                     print the result as JSON; get gives "value" (UTF-8 text), or
                             "value_base64" when the value is not UTF-8 ("value_hex" with --hex);
                             member list gives {members:[{id, peerAddr, clientAddr, learner,
                             matchIndex, lag, active}], leaderId, clusterId, joint, ...} (matchIndex,
                             lag and active are null unless the leader answered); member add,
                             promote and remove give {members, index} (add: and startCommand);
                             leader transfer gives {leaderId, term}; backup gives {path, bytes,
                             index, term, keys, clusterId, nodeId, voters, learners, endpoint}
${TLS_HELP}
  -h, --help                 print this help
  --version                  print the version of raftkv

A KEY or VALUE that starts with "-" goes after "--":  kv-cli put KEY -- -VALUE
The contents of a file are taken as they are (bytes, any trailing newline included).

Exit codes: 0 ok; 1 key not found, cas mismatch, del of a missing key, or a backup not written; 2
usage error (also a key or value over the limits, a backup FILE that exists without --force); 3
cluster unavailable within the deadline, or status finds no leader;
4 the cluster refused a membership change or leadership transfer, or a write: its state is at its
quota (delete keys to make room).

Examples:
  kv-cli --endpoints 127.0.0.1:9001,127.0.0.1:9002,127.0.0.1:9003 put hello world
  RAFTKV_ENDPOINTS=127.0.0.1:9001,127.0.0.1:9002,127.0.0.1:9003 kv-cli get hello
  kv-cli put photo --value-file photo.jpg          (values up to ${DEFAULT_LIMITS.maxValueBytes} bytes)
  tar c notes | kv-cli put notes.tar --value-file -
  kv-cli --hex put 00ff 0a0b0c
  kv-cli cas hello world there
  kv-cli --endpoints 127.0.0.1:9001 status
  kv-cli member add 4 127.0.0.1:7004 --client-addr 127.0.0.1:9004 --learner
  kv-cli member promote 4
  kv-cli leader transfer 2
  kv-cli backup raftkv-backup.snap
  kv-cli --cacert ca.crt --cert client.crt --key client.key get hello     (TLS; README: "Security")
`;

/** What every command that talks to the cluster has. */
interface Target {
  endpoints: string[];
  tls: ClientTls | undefined;
  timeoutMs: number;
  json: boolean;
}

interface Parsed extends Target {
  command: string;
  serializable: boolean;
  /** The key as typed, for messages. */
  keyText: string;
  operands: Partial<Record<Operand, Buffer>>;
  hex: boolean;
}

type Request =
  | { kind: 'help' }
  | { kind: 'version' }
  | { kind: 'run'; parsed: Parsed }
  | { kind: 'member'; target: Target; command: MemberCommand }
  | { kind: 'backup'; target: Target; command: BackupCommand };

type Values = ReturnType<typeof parseOptions>['values'];

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
  if ((MEMBER_GROUPS as readonly string[]).includes(command)) return parseMemberRequest(command as MemberGroup, rest, values);
  if (command === 'backup') return parseBackupRequest(rest, values);
  const spec = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
  if (spec === undefined) throw new UsageError(`unknown command "${command}" (commands: ${COMMAND_LIST})`);
  for (const flag of ['value-file', 'expected-file'] as const) {
    if (values[flag] !== undefined && !spec.operands.some((o) => FROM_FILE[o] === flag)) {
      throw new UsageError(`--${flag} does not go with ${command}`);
    }
  }
  for (const [flag, owner] of Object.entries(MEMBER_FLAGS)) {
    if (values[flag as keyof typeof MEMBER_FLAGS] !== undefined) throw new UsageError(`--${flag} does not go with ${command} (only with ${owner})`);
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
  const target = parseTarget(values);
  for (const o of spec.operands) {
    const flag = FROM_FILE[o];
    const file = flag === undefined ? undefined : values[flag];
    if (file !== undefined) operands[o] = await readValue(`--${flag}`, file);
  }
  if (values.serializable && command !== 'get') throw new UsageError(`--serializable goes with get only`);
  return { kind: 'run', parsed: { ...target, command, keyText: rest[0] ?? '', operands, hex, serializable: values.serializable === true } };
}

function parseMemberRequest(group: MemberGroup, rest: string[], values: Values): Request {
  const command = parseMember(group, rest, values);
  for (const flag of ['value-file', 'expected-file', 'hex', 'serializable'] as const) {
    if (values[flag] !== undefined) throw new UsageError(`--${flag} does not go with ${group} ${rest[0]}`);
  }
  return { kind: 'member', target: parseTarget(values), command };
}

function parseBackupRequest(rest: string[], values: Values): Request {
  for (const flag of ['value-file', 'expected-file', 'hex', 'serializable', 'client-addr', 'learner'] as const) {
    if (values[flag] !== undefined) throw new UsageError(`--${flag} does not go with backup`);
  }
  return { kind: 'backup', target: parseTarget(values), command: parseBackup(rest, values.force) };
}

function parseTarget(values: Values): Target {
  return {
    timeoutMs: parseTimeout(values.timeout),
    endpoints: resolveEndpoints(values.endpoints),
    json: values.json === true,
    tls: tlsFromFlags(values),
  };
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

/** "154.2 MiB / 1.0 GiB (15%)": the state against its quota ("-" from a node too old to say). */
function quotaUse(used: number, quota: number): string {
  if (quota === 0) return used === 0 ? '-' : `${size(used)} / no quota`;
  return `${size(used)} / ${size(quota)} (${Math.floor((100 * used) / quota)}%)`;
}

function size(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let n = bytes;
  while (n >= 1024 && i < units.length - 1) [n, i] = [n / 1024, i + 1];
  return i === 0 ? `${n} B` : `${n.toFixed(1)} ${units[i]}`;
}

function statusTable(rows: EndpointStatus[]): string {
  const lines: string[][] = [['ID', 'ADDRESS', 'ROLE', 'TERM', 'LEADER', 'COMMIT', 'APPLIED', 'STATE/QUOTA']];
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
        quotaUse(s.quotaUsedBytes, s.quotaBytes),
      ]);
    } else {
      lines.push(['-', r.endpoint, 'unreachable', '-', '-', '-', '-', '-']);
      notes.push(`${r.endpoint}: ${r.error}`);
    }
  }
  const text = formatTable(lines);
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

/** A client for the command's target. gRPC takes most of the start-up time: loaded only once the command line is known to be good. */
async function connect(t: Target): Promise<import('./client.js').KvClient> {
  const { KvClient } = await import('./client.js');
  return new KvClient({ endpoints: t.endpoints, timeoutMs: t.timeoutMs, ...(t.tls ? { tls: t.tls } : {}) });
}

async function execute(p: Parsed, io: CliIo): Promise<number> {
  const client = await connect(p);
  const json = (v: unknown): void => io.out(JSON.stringify(v) + '\n');
  const { KEY: key = Buffer.alloc(0), VALUE: value, EXPECTED: expected, NEW: next } = p.operands;
  const notFound = (): void => io.err(`kv-cli: key not found: ${p.keyText}\n`);
  try {
    switch (p.command) {
      case 'get': {
        const v = await client.getBytes(key, { serializable: p.serializable });
        if (p.json) json({ key: p.keyText, found: v !== undefined, ...(v !== undefined ? jsonValue(v, p.hex) : {}) });
        else if (v !== undefined) io.out(Buffer.concat([p.hex ? Buffer.from(v.toString('hex')) : v, Buffer.from('\n')]));
        else notFound();
        return v === undefined ? EXIT_NOT_FOUND : EXIT_OK;
      }
      case 'put':
      case 'append': {
        await (p.command === 'put' ? client.put(key, value!) : client.append(key, value!));
        if (p.json) json({ ok: true });
        else io.out('OK\n');
        return EXIT_OK;
      }
      case 'del': {
        const existed = await client.delete(key);
        if (p.json) json({ key: p.keyText, existed });
        else if (existed) io.out('deleted\n');
        else notFound();
        return existed ? EXIT_OK : EXIT_NOT_FOUND;
      }
      case 'cas': {
        const swapped = await client.cas(key, expected!, next!);
        if (p.json) json({ key: p.keyText, swapped });
        else if (swapped) io.out('OK\n');
        else io.err(`kv-cli: cas not applied: the value of ${p.keyText} is not ${describe(expected!)} (or the key is absent)\n`);
        return swapped ? EXIT_OK : EXIT_NOT_FOUND;
      }
      case 'status': {
        const rows = await client.status();
        if (p.json) json(rows);
        else io.out(statusTable(rows));
        const why = noLeader(rows);
        if (why !== undefined) io.err(`kv-cli: ${why}\n`);
        return why === undefined ? EXIT_OK : EXIT_UNAVAILABLE;
      }
      case 'snapshot': {
        const rows = await client.snapshot();
        if (p.json) json(rows);
        for (const r of rows) {
          if (!r.ok) io.err(`kv-cli: ${r.endpoint}: ${r.error}\n`);
          else if (!p.json) io.out(`${r.endpoint}: snapshot at index ${r.value.index} (term ${r.value.term})\n`);
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

async function executeBackup(target: Target, command: BackupCommand, io: CliIo): Promise<number> {
  const client = await connect(target);
  try {
    await runBackup(command, client, target.json, io);
    return EXIT_OK;
  } finally {
    client.close();
  }
}

async function executeMember(target: Target, command: MemberCommand, io: CliIo): Promise<number> {
  const client = await connect(target);
  try {
    await runMember(command, client, target.json, io);
    return EXIT_OK;
  } finally {
    client.close();
  }
}

/** Runs kv-cli with `argv` (the arguments after the program's name); resolves to its exit code. */
export async function main(argv: string[], io: CliIo = PROCESS_IO): Promise<number> {
  let req: Request;
  try {
    req = await parse(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    io.err(`kv-cli: ${e.message}\nRun kv-cli --help for usage.\n`);
    return EXIT_USAGE;
  }
  if (req.kind === 'help') {
    io.out(HELP);
    return EXIT_OK;
  }
  if (req.kind === 'version') {
    io.out(`${packageVersion()}\n`);
    return EXIT_OK;
  }
  try {
    if (req.kind === 'member') return await executeMember(req.target, req.command, io);
    if (req.kind === 'backup') return await executeBackup(req.target, req.command, io);
    return await execute(req.parsed, io);
  } catch (e) {
    if (e instanceof BackupError) {
      io.err(`kv-cli: backup failed: ${e.message}\n`);
      return e.kind === 'exists' ? EXIT_USAGE : EXIT_NOT_FOUND;
    }
    if (e instanceof InvalidArgumentError) {
      io.err(`kv-cli: invalid request: ${e.message}\n`);
      return EXIT_USAGE;
    }
    if (e instanceof ClusterUnavailableError) {
      io.err(`kv-cli: cluster unavailable: ${e.message}\n`);
      return EXIT_UNAVAILABLE;
    }
    if (e instanceof MembershipRefusedError) {
      io.err(`kv-cli: ${e.message}\n`);
      return EXIT_REFUSED;
    }
    if (e instanceof NoSpaceError) {
      io.err(`kv-cli: refused: ${e.message}\n`);
      return EXIT_REFUSED;
    }
    io.err(`kv-cli: error: ${e instanceof Error ? e.message : String(e)}\n`);
    return EXIT_NOT_FOUND;
  }
}
