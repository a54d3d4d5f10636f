#!/usr/bin/env node
/** kv-cli as a process (the `kv-cli` bin): the program is cli-main.ts; see its exit codes. */
import { main } from './cli-main.js';
import { dropIpServerNameWarning } from '../quiet-warnings.js';

dropIpServerNameWarning();

// A reader that stops early (kv-cli get k | head -c 10) is not an error.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw e;
});
const code = await main(process.argv.slice(2));
process.exitCode = code;
// Whatever might still hold the event loop (it should be nothing), do not hang; but only once
// stdout has taken everything, so that a large value to a slow reader is not cut short.
process.stdout.write('', () => setTimeout(() => process.exit(code), 2000).unref());
