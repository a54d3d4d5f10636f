import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

interface PackageJson {
  name: string;
  version: string;
  peerDependencies?: Record<string, string>;
}

let own: { root: string; pkg: PackageJson } | undefined;

/**
 * raftkv's own package directory and package.json: found relative to this file (src/ under
 * vitest, build/src/ when built or installed), never by searching up from the working directory
 * or from where a dependency is installed, which finds the calling project's package.json.
 */
function ownPackage(): { root: string; pkg: PackageJson } {
  if (own) return own;
  for (const rel of ['../', '../../']) {
    const root = fileURLToPath(new URL(rel, import.meta.url));
    try {
      const pkg = JSON.parse(readFileSync(`${root}package.json`, 'utf8')) as Partial<PackageJson>;
      if (pkg.name === 'raftkv' && typeof pkg.version === 'string') return (own = { root, pkg: pkg as PackageJson });
    } catch {
      // not there (or not ours): try the next place
    }
  }
  throw new Error(`raftkv: its package.json was not found (looked relative to ${import.meta.url})`);
}

export function ownPackageJson(): PackageJson {
  return ownPackage().pkg;
}

/** A file shipped with the package (package.json "files"), by its path from the package's root. */
export function packageFile(rel: string): string {
  return ownPackage().root + rel;
}

/** raftkv's version, for --version. */
export function packageVersion(): string {
  return ownPackageJson().version;
}
