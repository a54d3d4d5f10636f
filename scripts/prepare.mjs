#!/usr/bin/env node
// npm runs `prepare` on `npm install` and `npm ci` in this repository, before `npm pack` and
// `npm publish`, and in the clone it makes when a project installs raftkv from git. It compiles
// build/src, all the package ships of the code, from a clean slate: a tarball then holds exactly
// what src/ compiles to, never a stale file of an older build, and never nothing.
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
let tsc;
try {
  tsc = path.join(path.dirname(createRequire(import.meta.url).resolve('typescript/package.json')), 'bin', 'tsc');
} catch {
  process.stderr.write('raftkv: building the package needs its dev dependencies (TypeScript): run `npm ci` first, then `npm pack`\n');
  process.exit(1);
}
rmSync(path.join(root, 'build', 'src'), { recursive: true, force: true });
const r = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
if (r.status !== 0) process.stderr.write('raftkv: the build failed (see above); the package was not made\n');
process.exit(r.status ?? 1);
