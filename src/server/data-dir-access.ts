import * as fs from 'node:fs';
import * as nodePath from 'node:path';

/**
 * Whether this process may use `dataDir` (an absolute path): every directory above it searchable,
 * and either the data dir missing with a writable parent, or the data dir readable, writable and
 * searchable with everything in it readable (and its top-level files, the log, writable).
 * Returns one line that names the path and the problem, or undefined when all is well.
 *
 * kv-server checks this before it opens anything, so that a permission problem is reported as
 * such, with the path, and nothing is created or changed (SQLite would otherwise fail half-way
 * with a message about a "readonly database" or a "disk I/O error").
 */
export function dataDirAccessProblem(dataDir: string): string | undefined {
  const parent = nodePath.dirname(dataDir);
  const ancestors: string[] = [];
  for (let d = parent; ; d = nodePath.dirname(d)) {
    ancestors.unshift(d);
    if (nodePath.dirname(d) === d) break;
  }
  for (const d of ancestors) {
    const why = denied(d, fs.constants.X_OK, 'search (x)');
    if (why) return `cannot reach data dir ${dataDir}: ${why}`;
  }
  if (fs.statSync(dataDir, { throwIfNoEntry: false }) === undefined) {
    const why = denied(parent, fs.constants.W_OK, 'write');
    return why ? `cannot create data dir ${dataDir}: ${why}` : undefined;
  }
  const rwx = fs.constants.R_OK | fs.constants.W_OK | fs.constants.X_OK;
  const why = denied(dataDir, rwx, 'read, write and search (rwx)') ?? deniedInside(dataDir, 0);
  return why ? `cannot use data dir ${dataDir}: ${why}` : undefined;
}

function deniedInside(dir: string, depth: number): string | undefined {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = nodePath.join(dir, entry.name);
    const why = entry.isDirectory()
      ? (denied(p, fs.constants.R_OK | fs.constants.W_OK | fs.constants.X_OK, 'read, write and search (rwx)') ??
        (depth < 2 ? deniedInside(p, depth + 1) : undefined))
      : depth === 0
        ? denied(p, fs.constants.R_OK | fs.constants.W_OK, 'read and write')
        : denied(p, fs.constants.R_OK, 'read');
    if (why) return why;
  }
  return undefined;
}

/** Why this process may not `mode` path `p` (one clause), or undefined if it may. */
function denied(p: string, mode: number, what: string): string | undefined {
  try {
    fs.accessSync(p, mode);
    return undefined;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined; // gone meanwhile: whoever opens it next will say
    if (code === 'EROFS') return `${p} is on a read-only file system`;
    const st = fs.statSync(p, { throwIfNoEntry: false });
    const owner = st ? `; it is owned by uid ${st.uid}, gid ${st.gid}, mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')}` : '';
    const uid = typeof process.getuid === 'function' ? ` (uid ${process.getuid()})` : '';
    return `permission denied: this user${uid} may not ${what} ${p}${owner}. Fix its owner or mode, or run kv-server as the user that owns it`;
  }
}
