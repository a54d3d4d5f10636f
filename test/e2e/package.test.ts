/**
 * The npm package as a project gets it: `npm pack` of the source tree as git sees it (no build/),
 * unpacked into an empty project beside the dependencies a client-only install gets (the
 * package-lock's production tree: no better-sqlite3), with no network. The README's SDK snippet
 * and its require() line run there against a real cluster, the bins print raftkv's version
 * rather than the project's, and kv-server says what to install for SQLite.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, ensureBuilt, freePorts, killAll, ROOT, runNode, tempDir } from './cluster.js';

const run = promisify(execFile);
const README = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
const VERSION = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

let work: string;
let app: string;
let installed: string;
let tarballFiles: string[];
let cluster: Cluster | undefined;

/** The first fenced block of `lang` in the README after `heading` that contains `needle`. */
function readmeBlock(heading: string, lang: string, needle: string): string {
  const section = README.slice(README.indexOf(heading));
  const blocks = [...section.matchAll(new RegExp('```' + lang + '\\n([\\s\\S]*?)```', 'g'))].map((m) => m[1]!);
  const block = blocks.find((b) => b.includes(needle));
  if (block === undefined) throw new Error(`README: no \`\`\`${lang} block with ${needle} after ${heading}`);
  return block;
}

beforeAll(async () => {
  await ensureBuilt(); // the cluster runs the repository's build
  work = tempDir('package');
  // The source tree as a clone of this change would hold it: tracked and new files, not ignored ones.
  const src = path.join(work, 'src');
  const { stdout: listed } = await run('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: ROOT, maxBuffer: 1 << 24 });
  for (const f of listed.split('\0').filter((f) => f !== '' && fs.lstatSync(path.join(ROOT, f), { throwIfNoEntry: false })?.isFile())) {
    fs.mkdirSync(path.dirname(path.join(src, f)), { recursive: true });
    fs.copyFileSync(path.join(ROOT, f), path.join(src, f));
  }
  const modules = fs.realpathSync(path.join(ROOT, 'node_modules'));
  fs.symlinkSync(modules, path.join(src, 'node_modules'));
  const { stdout: packed } = await run('npm', ['pack', '--json', '--pack-destination', work], { cwd: src, maxBuffer: 1 << 24 });
  const [info] = JSON.parse(packed) as { filename: string; files: { path: string }[] }[];
  tarballFiles = info!.files.map((f) => f.path);

  // An empty project (with a version of its own) and what `npm install <tarball>` puts beside it.
  app = path.join(work, 'app');
  installed = path.join(app, 'node_modules', 'raftkv');
  fs.mkdirSync(installed, { recursive: true });
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '9.9.9', private: true, type: 'module' }));
  await run('tar', ['xzf', path.join(work, info!.filename), '-C', installed, '--strip-components=1']);
  const lock = JSON.parse(fs.readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
  for (const [where, entry] of Object.entries(lock.packages)) {
    if (!/^node_modules\/(@[^/]+\/)?[^/]+$/.test(where) || entry.dev) continue;
    fs.cpSync(path.join(modules, where.slice('node_modules/'.length)), path.join(app, where), { recursive: true });
  }
}, 240_000);

afterAll(async () => {
  await cluster?.close();
  await killAll();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe('npm pack', () => {
  it('builds the package from a tree without build/: the compiled code, the protos, the status page and the README, nothing else', () => {
    for (const f of ['build/src/index.js', 'build/src/index.d.ts', 'build/src/client/cli.js', 'build/src/server/main.js', 'build/src/tools/kv-bench.js', 'proto/kv.proto', 'proto/raft.proto', 'static/status.html', 'README.md', 'package.json']) {
      expect(tarballFiles).toContain(f);
    }
    expect(tarballFiles.filter((f) => !/^(build\/src\/.*\.(js|d\.ts)|proto\/[^/]+\.proto|static\/status\.html|README\.md|package\.json)$/.test(f))).toEqual([]);
  });

  it('the README SDK snippet and its require() line run in a project that installed the package without better-sqlite3', async () => {
    expect(fs.existsSync(path.join(app, 'node_modules', 'better-sqlite3'))).toBe(false);
    cluster = await Cluster.create('package');
    cluster.startAll();
    await cluster.waitForLeader();
    const snippet = readmeBlock('## The SDK', 'ts', "from 'raftkv'");
    const endpoints = /endpoints: (\[[^\]]*\])/.exec(snippet)?.[1];
    expect(endpoints, 'the snippet names its endpoints').toBeDefined();
    fs.writeFileSync(path.join(app, 'snippet.mjs'), snippet.replace(endpoints!, JSON.stringify(cluster.endpoints)));
    const sdk = await runNode(path.join(app, 'snippet.mjs'), []);
    expect([sdk.code, sdk.stderr, sdk.stdout]).toEqual([0, '', 'hello, world\n']);

    const requireLine = readmeBlock('## Install', 'js', 'require(');
    fs.writeFileSync(path.join(app, 'required.cjs'), `${requireLine}\nconsole.log(typeof KvClient);\n`);
    const cjs = await runNode(path.join(app, 'required.cjs'), []);
    expect([cjs.code, cjs.stderr, cjs.stdout]).toEqual([0, '', 'function\n']);
  });

  it("kv-server and kv-cli --version print raftkv's version, not the installing project's", async () => {
    for (const bin of ['build/src/server/main.js', 'build/src/client/cli.js']) {
      const r = await runNode(path.join(installed, bin), ['--version']);
      expect([bin, r.code, r.stdout]).toEqual([bin, 0, `${VERSION}\n`]);
    }
  });

  it('kv-server without better-sqlite3: exit 1, one line naming the package to install, nothing created', async () => {
    const [peer, client] = await freePorts(2);
    const dataDir = path.join(work, 'server-data');
    const r = await runNode(path.join(installed, 'build/src/server/main.js'), [
      '--id', '1', '--peers', `1=127.0.0.1:${peer!}`, '--client-addr', `127.0.0.1:${client!}`, '--data-dir', dataDir,
    ]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/^kv-server: .*better-sqlite3 package, which is not installed.* npm install better-sqlite3@\^12\.\d+\.\d+\n$/);
    expect(fs.existsSync(dataDir)).toBe(false);
  });
});
