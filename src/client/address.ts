import { checkAddress } from '../address.js';
import { InvalidArgumentError } from './errors.js';

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

/** A command-line mistake: the tools print it, with a pointer to their --help, and exit 2. */
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
