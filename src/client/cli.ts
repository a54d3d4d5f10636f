#!/usr/bin/env node
/**
 * kv-cli: one command against a raftkv cluster.
 *
 * Exit codes: 0 ok; 1 key not found, cas mismatch, del of a missing key (or an unexpected server
 * error); 2 usage error (bad command or flags, or a request the server refuses as invalid, such
 * as an empty or oversized key); 3 cluster unavailable within the deadline.
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { resolveEndpoints, UsageError } from './address.js';
import type { EndpointStatus } from './client.js';
import { ClusterUnavailableError, InvalidArgumentError } from './errors.js';

const EXIT_OK = 0;
const EXIT_NOT_FOUND = 1;
const EXIT_USAGE = 2;
const EXIT_UNAVAILABLE = 3;


interface Parsed {
  command: string;
  args: string[];
  endpoints: string[];
  timeoutMs: number;
  json: boolean;
}

const str = { type: 'string' } as const;

function parser(argv: string[]) {
  return yargs(argv)
    .scriptName('kv-cli')
    .usage('$0 [--endpoints HOST:PORT,...] [--timeout MS] [--json] <command>')
    .command('get <key>', 'print the value of KEY', (y) => y.positional('key', str))
    .command('put <key> <value>', 'set KEY to VALUE', (y) => y.positional('key', str).positional('value', str))
    .command('append <key> <value>', 'append VALUE to the value of KEY', (y) => y.positional('key', str).positional('value', str))
    .command('del <key>', 'delete KEY', (y) => y.positional('key', str))
    .command('cas <key> <expected> <new>', 'set KEY to NEW if its value is EXPECTED', (y) =>
      y.positional('key', str).positional('expected', str).positional('new', str),
    )
    .command('status', "show every node's view of the cluster")
    .command('snapshot', 'make each node in --endpoints snapshot its state and compact its log now')
    .options({
      endpoints: {
        type: 'string',
        describe: 'client addresses of the nodes, comma-separated (default: $RAFTKV_ENDPOINTS)',
      },
      timeout: { type: 'number', default: 5000, describe: 'deadline of the command, retries included, in ms' },
      json: { type: 'boolean', default: false, describe: 'print the result as JSON' },
    })
    .example('$0 --endpoints 127.0.0.1:9001,127.0.0.1:9002,127.0.0.1:9003 put hello world', '')
    .example('$0 --endpoints 127.0.0.1:9001,127.0.0.1:9002,127.0.0.1:9003 get hello', '')
    .example('RAFTKV_ENDPOINTS=127.0.0.1:9001,127.0.0.1:9002,127.0.0.1:9003 $0 cas hello world there', '')
    .example('$0 --endpoints 127.0.0.1:9001 status', '')
    .example('$0 --endpoints 127.0.0.1:9002 snapshot', '')
    .epilog(
      'Exit codes: 0 ok; 1 key not found, cas mismatch or del of a missing key; 2 usage error; ' +
        '3 cluster unavailable within the deadline. Use -- before a value that starts with "-".',
    )
    .demandCommand(1, 'Give a command: get, put, append, del, cas, status or snapshot.')
    .strict()
    .parserConfiguration({ 'duplicate-arguments-array': false })
    .wrap(Math.min(110, process.stderr.columns || 100))
    .fail((msg, err) => {
      let text = msg ?? err?.message ?? 'bad arguments';
      if (/^Unknown arguments?:/.test(text)) text += ' (commands: get, put, append, del, cas, status, snapshot)';
      throw new UsageError(text);
    });
}

function parse(argv: string[]): Parsed {
  const a = parser(argv).parseSync();
  const [command, ...rest] = a._.map(String);
  if (command === undefined) throw new UsageError('Give a command: get, put, append, del, cas, status or snapshot.');
  const pos = a as unknown as Record<string, unknown>;
  const take = (name: string): string => {
    const v = pos[name];
    if (typeof v !== 'string') throw new UsageError(`missing ${name.toUpperCase()}`);
    return v;
  };
  let args: string[];
  switch (command) {
    case 'get':
    case 'del':
      args = [take('key')];
      break;
    case 'put':
    case 'append':
      args = [take('key'), take('value')];
      break;
    case 'cas':
      args = [take('key'), take('expected'), take('new')];
      break;
    case 'status':
    case 'snapshot':
      args = [];
      break;
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
  if (rest.length > 0) throw new UsageError(`unexpected argument(s): ${rest.join(' ')}`);
  const endpoints = resolveEndpoints(a.endpoints);
  const timeoutMs = a.timeout;
  if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new UsageError(`--timeout must be a positive number of milliseconds, got ${JSON.stringify(timeoutMs)}`);
  }
  return { command, args, endpoints, timeoutMs, json: a.json === true };
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

async function execute(p: Parsed): Promise<number> {
  // gRPC takes most of the start-up time: loaded only once the command line is known to be good.
  const { KvClient } = await import('./client.js');
  const client = new KvClient({ endpoints: p.endpoints, timeoutMs: p.timeoutMs });
  const json = (v: unknown): void => out(JSON.stringify(v) + '\n');
  const [a0 = '', a1 = '', a2 = ''] = p.args;
  try {
    switch (p.command) {
      case 'get': {
        const v = await client.getBytes(a0);
        if (p.json) json({ key: a0, found: v !== undefined, ...(v !== undefined ? { value: v.toString('utf8') } : {}) });
        else if (v !== undefined) out(Buffer.concat([v, Buffer.from('\n')]));
        if (v === undefined) {
          if (!p.json) process.stderr.write(`kv-cli: key not found: ${a0}\n`);
          return EXIT_NOT_FOUND;
        }
        return EXIT_OK;
      }
      case 'put':
      case 'append': {
        await (p.command === 'put' ? client.put(a0, a1) : client.append(a0, a1));
        if (p.json) json({ ok: true });
        else out('OK\n');
        return EXIT_OK;
      }
      case 'del': {
        const existed = await client.delete(a0);
        if (p.json) json({ key: a0, existed });
        else if (existed) out('deleted\n');
        else process.stderr.write(`kv-cli: key not found: ${a0}\n`);
        return existed ? EXIT_OK : EXIT_NOT_FOUND;
      }
      case 'cas': {
        const swapped = await client.cas(a0, a1, a2);
        if (p.json) json({ key: a0, swapped });
        else if (swapped) out('OK\n');
        else process.stderr.write(`kv-cli: cas not applied: the value of ${a0} is not ${JSON.stringify(a1)} (or the key is absent)\n`);
        return swapped ? EXIT_OK : EXIT_NOT_FOUND;
      }
      case 'status': {
        const rows = await client.status();
        if (p.json) json(rows);
        else out(statusTable(rows));
        if (!rows.some((r) => r.ok)) {
          process.stderr.write('kv-cli: no node answered\n');
          return EXIT_UNAVAILABLE;
        }
        return EXIT_OK;
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
  const argv = hideBin(process.argv);
  let p: Parsed;
  try {
    p = parse(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    // Help first, the reason last, where the eye lands.
    process.stderr.write((await parser([]).getHelp()) + '\n\n');
    process.stderr.write(`kv-cli: ${e.message}\n`);
    return EXIT_USAGE;
  }
  try {
    return await execute(p);
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

const code = await main();
process.exitCode = code;
// Whatever might still hold the event loop (it should be nothing), do not hang.
setTimeout(() => process.exit(code), 2000).unref();
