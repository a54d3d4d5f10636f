/**
 * Checks a `host:port` address (host: a name, an IPv4 address or a bracketed IPv6 address;
 * port 1–65535) and returns it normalised, or an error message. Dependency-free, so that
 * kv-server and kv-cli can check their flags before loading gRPC. Shared by the server and the client.
 */
export function checkAddress(addr: string): { ok: true; address: string } | { ok: false; error: string } {
  const a = addr.trim();
  const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?):(\d{1,5})$/.exec(a);
  if (!m) return { ok: false, error: `"${addr}" is not a host:port address (e.g. 127.0.0.1:9001)` };
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return { ok: false, error: `"${addr}": port ${m[2]} is not in 1-65535` };
  return { ok: true, address: a };
}
