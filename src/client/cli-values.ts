/** kv-cli's keys and values: from the command line (text or hex), from a file or stdin, and back out. */
import { isUtf8 } from 'node:buffer';
import * as fs from 'node:fs';
import type { Readable } from 'node:stream';
import { DEFAULT_LIMITS } from '../limits.js';
import { UsageError } from './address.js';

export type Operand = 'KEY' | 'VALUE' | 'EXPECTED' | 'NEW';

export function fromText(what: Operand, text: string, hex: boolean): Buffer {
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
export async function readValue(flag: string, file: string): Promise<Buffer> {
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

/** The JSON of a value: text when it is UTF-8 (exactly), base64 otherwise, or hex if asked. */
export function jsonValue(v: Buffer, hex: boolean): Record<string, string> {
  if (hex) return { value_hex: v.toString('hex') };
  return isUtf8(v) ? { value: v.toString('utf8') } : { value_base64: v.toString('base64') };
}

/** A value for a message: short UTF-8 text quoted, otherwise its size. */
export function describe(v: Buffer): string {
  return v.length <= 200 && isUtf8(v) ? JSON.stringify(v.toString('utf8')) : `the expected ${v.length} bytes`;
}
