import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

interface PackageJson {
  name: string;
  version: string;
  peerDependencies?: Record<string, string>;
}

let own: PackageJson | undefined;

/**
 * raftkv's own package.json: found relative to this file (src/ under vitest, build/src/ when
 * built or installed), never by searching up from the working directory or from where a
 * dependency is installed, which finds the calling project's package.json.
 */
export function ownPackageJson(): PackageJson {
  if (own) return own;
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(fileURLToPath(new URL(rel, import.meta.url)), 'utf8')) as Partial<PackageJson>;
      if (pkg.name === 'raftkv' && typeof pkg.version === 'string') return (own = pkg as PackageJson);
    } catch {
      // not there (or not ours): try the next place
    }
  }
  throw new Error(`raftkv: its package.json was not found (looked relative to ${import.meta.url})`);
}

/** raftkv's version, for --version. */
export function packageVersion(): string {
  return ownPackageJson().version;
}
