import { ownPackageJson } from '../version.js';

/**
 * Why SQLite cannot be used, or undefined. better-sqlite3 is an optional peer dependency of
 * raftkv, so that the SDK and kv-cli install without compiling it: kv-server says what to install.
 */
export async function sqliteProblem(): Promise<string | undefined> {
  const wanted = `better-sqlite3@${ownPackageJson().peerDependencies?.['better-sqlite3'] ?? 'latest'}`;
  let Database: typeof import('better-sqlite3');
  try {
    Database = (await import('better-sqlite3')).default;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ERR_MODULE_NOT_FOUND' && err.message.includes("'better-sqlite3'")) {
      return (
        'kv-server keeps its log in SQLite through the better-sqlite3 package, which is not installed ' +
        `(raftkv leaves it out so that the client installs without a C++ build). Install it beside raftkv: npm install ${wanted}`
      );
    }
    return `cannot load better-sqlite3: ${err.message.split('\n')[0]}`;
  }
  try {
    new Database(':memory:').close();
  } catch (e) {
    const why = (e instanceof Error ? e.message : String(e)).split('\n')[0];
    return `better-sqlite3 is installed but its native module does not load (${why}). Rebuild it for this Node: npm rebuild better-sqlite3`;
  }
  return undefined;
}
