import { InvalidArgumentError } from './errors.js';

/**
 * Checks a `host:port` address (host: a name, an IPv4 address or a bracketed IPv6 address;
 * port 1–65535) and returns it normalised, or an error message. Dependency-free, so that
 * kv-server and kv-cli can check their flags before loading gRPC.
 */
export function checkAddress(addr: string): { ok: true; address: string } | { ok: false; error: string } {
  const a = addr.trim();
  const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?):(\d{1,5})$/.exec(a);
  if (!m) return { ok: false, error: `"${addr}" is not a host:port address (e.g. 127.0.0.1:9001)` };
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return { ok: false, error: `"${addr}": port ${m[2]} is not in 1-65535` };
  return { ok: true, address: a };
}

/** Parses an endpoint list (array, or comma-separated string); throws InvalidArgumentError. */
export function parseEndpoints(endpoints: string[] | string): string[] {
  if (typeof endpoints !== 'string' && !Array.isArray(endpoints)) {
    throw new InvalidArgumentError('endpoints must be a list of host:port addresses or a comma-separated string');
  }
  const list = (typeof endpoints === 'string' ? endpoints.split(',') : endpoints).map((e) => String(e).trim());
  const nonEmpty = list.filter((e) => e !== '');
  if (nonEmpty.length === 0) throw new InvalidArgumentError('no endpoints given (expected host:port,host:port,...)');
  const out: string[] = [];
  for (const e of nonEmpty) {
    const r = checkAddress(e);
    if (!r.ok) throw new InvalidArgumentError(`bad endpoint: ${r.error}`);
    if (!out.includes(r.address)) out.push(r.address);
  }
  return out;
}

/** A command-line mistake: the tools print it with their usage and exit 2. */
export class UsageError extends Error {}

/** The endpoints a command-line tool was given, by --endpoints or RAFTKV_ENDPOINTS. */
export function resolveEndpoints(flag: string | undefined): string[] {
  const text = flag ?? process.env['RAFTKV_ENDPOINTS'];
  if (text === undefined || text.trim() === '') {
    throw new UsageError('no endpoints: pass --endpoints HOST:PORT,... or set RAFTKV_ENDPOINTS');
  }
  try {
    return parseEndpoints(text);
  } catch (e) {
    throw new UsageError(`--endpoints: ${(e as Error).message}`);
  }
}
