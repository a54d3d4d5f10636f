import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

/** The core's determinism rests on having no other inputs than tick, step and propose. */
const FORBIDDEN = ['Date', 'setTimeout', 'setInterval', 'setImmediate', 'Math.random', 'process', 'performance', 'fs', 'require', 'async', 'await', 'Promise'];

describe('src/raft/core is a pure state machine', () => {
  const dir = join(import.meta.dirname, '../../src/raft/core');
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
    it(`${file} uses no clock, timer, randomness, I/O or promise`, () => {
      const code = readFileSync(join(dir, file), 'utf8')
        .replace(/\/\*[\s\S]*?\*\//g, '')
        .replace(/\/\/.*$/gm, '');
      const found = FORBIDDEN.filter((w) => new RegExp(`\\b${w.replace('.', '\\.')}\\b`).test(code));
      expect(found).toEqual([]);
      expect(code).not.toMatch(/from ['"](node:|fs|net|http)/);
    });
  }
});
