/**
 * Runs `fn` with one method of the real server code replaced: a deliberate mistake, made in the
 * same classes kv-server runs, for the length of a few runs.
 */
export async function withMistake<T extends object, K extends keyof T, R>(proto: T, method: K, mistake: (original: T[K]) => T[K], fn: () => Promise<R>): Promise<R> {
  const original = proto[method];
  proto[method] = mistake(original);
  try {
    return await fn();
  } finally {
    proto[method] = original;
  }
}

