import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = join(import.meta.dirname, '../src');

function code(file: string): string {
  return readFileSync(file, 'utf8')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/\/\/.*$/gm, '');
}

/** The modules `file` imports at load time (type-only imports and dynamic import() excluded). */
function staticImports(file: string): string[] {
  const out: string[] = [];
  for (const m of code(file).matchAll(/^import\s+(?!type\b)[^'"]*?from\s+['"]([^'"]+)['"]/gm)) out.push(m[1]!);
  for (const m of code(file).matchAll(/^import\s+['"]([^'"]+)['"]/gm)) out.push(m[1]!);
  return out;
}

/** Every module reachable from `entry` at load time: project files by path, packages by name. */
function importGraph(entry: string): { files: string[]; packages: string[] } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const visit = (file: string): void => {
    if (files.has(file)) return;
    files.add(file);
    for (const spec of staticImports(file)) {
      if (spec.startsWith('.')) visit(resolve(dirname(file), spec.replace(/\.js$/, '.ts')));
      else packages.add(spec);
    }
  };
  visit(entry);
  return { files: [...files].map((f) => relative(SRC, f)).sort(), packages: [...packages].sort() };
}

/** Settings of the kv-server process itself (V8's heap): main.ts uses them, the composition root never loads them. */
const PROCESS_ONLY = ['heap.ts'];

describe('what the simulator runs has no clock of its own', () => {
  // The code between the composition root and the disk and network: the simulator runs exactly
  // this, so a timer or clock read here would make runs unrepeatable. Time comes from the Clock.
  const simulated = [
    'raft/node.ts',
    ...readdirSync(join(SRC, 'server'))
      .filter((f) => f.endsWith('.ts') && !['main.ts', 'flags.ts', 'disk.ts', 'grpc-network.ts', 'logger.ts', 'config.ts', ...PROCESS_ONLY].includes(f))
      .map((f) => `server/${f}`),
    ...readdirSync(join(SRC, 'server/snapshot')).map((f) => `server/snapshot/${f}`),
  ];
  // (A method of the injected clock, `clock.setTimeout(...)`, is not the global.)
  const FORBIDDEN = ['setTimeout', 'setInterval', 'setImmediate', 'Date', 'performance', 'Math.random', 'process', 'randomInt'].map(
    (w) => new RegExp(`(?<![.\\w])${w.replace('.', '\\.')}\\b`),
  );
  for (const file of simulated) {
    it(`${file}`, () => {
      const text = code(join(SRC, file));
      expect(FORBIDDEN.filter((re) => re.test(text)).map(String)).toEqual([]);
      expect(text).not.toMatch(/from ['"](node:fs|node:timers|fs|timers)/);
    });
  }
});

describe('import boundaries', () => {
  it('the SDK (the package root) loads only the client: no server, Raft, SQLite or benchmark code', () => {
    const { files, packages } = importGraph(join(SRC, 'index.ts'));
    expect(files.filter((f) => /^(server|raft|tools)\//.test(f))).toEqual([]);
    expect(packages.filter((p) => /better-sqlite3|hdr-histogram|cli-progress|yargs/.test(p))).toEqual([]);
  });

  it("the composition root (what the simulator runs) loads none of the process's own settings", () => {
    const { files } = importGraph(join(SRC, 'server/kv-server.ts'));
    expect(files.filter((f) => PROCESS_ONLY.some((p) => f === `server/${p}`) || f === 'server/main.ts')).toEqual([]);
  });

  it('the server imports nothing from the client', () => {
    const { files } = importGraph(join(SRC, 'server/main.ts'));
    const kvServer = importGraph(join(SRC, 'server/kv-server.ts')).files;
    expect([...files, ...kvServer].filter((f) => f.startsWith('client/'))).toEqual([]);
  });
});
