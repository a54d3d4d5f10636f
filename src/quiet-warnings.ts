/**
 * grpc-js sets a TLS connection's ServerName (SNI) to the target's host even when that is an IP
 * address, and Node then warns once per process that RFC 6066 does not allow it (DEP0123). The
 * certificate is still checked against the IP address (its subjectAltName), so the warning tells a
 * user of kv-cli, kv-bench or kv-server nothing they can act on. Our own processes drop that one
 * warning; the SDK leaves an application's process alone.
 */
export function dropIpServerNameWarning(): void {
  const emit = process.emitWarning.bind(process) as (...args: unknown[]) => void;
  process.emitWarning = ((warning: unknown, ...rest: unknown[]) => {
    const options = rest[0];
    const code = typeof options === 'object' && options !== null ? (options as { code?: unknown }).code : rest[1];
    if (code === 'DEP0123') return;
    emit(warning, ...rest);
  }) as typeof process.emitWarning;
}
