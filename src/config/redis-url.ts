/**
 * REDIS_URL: `redis://`, `rediss://`, or `redis+cluster://[user:pass@]host:port,host:port`
 * (`rediss+cluster://` for TLS): what it means, and how to print it without its password.
 */
export type RedisTarget =
  | { cluster: false; url: string }
  | { cluster: true; seeds: { host: string; port: number }[]; username?: string; password?: string; tls: boolean };

/** `redis://`, `rediss://`, or `redis+cluster://[user:pass@]host:port,host:port` (`rediss+cluster://` for TLS). */
export function parseRedisUrl(url: string): RedisTarget {
  const match = /^(rediss?)\+cluster:\/\/(?:([^@/]*)@)?([^/?#]+)/.exec(url);
  if (!match) return { cluster: false, url };
  const [, scheme, auth, hosts] = match;
  const seeds = hosts!.split(",").map((hostPort) => {
    const cut = hostPort.lastIndexOf(":");
    return cut > 0
      ? { host: hostPort.slice(0, cut), port: Number(hostPort.slice(cut + 1)) }
      : { host: hostPort, port: 6379 };
  });
  let username: string | undefined;
  let password: string | undefined;
  if (auth) {
    const colon = auth.indexOf(":");
    username = colon >= 0 ? decodeURIComponent(auth.slice(0, colon)) || undefined : undefined;
    password = decodeURIComponent(colon >= 0 ? auth.slice(colon + 1) : auth);
  }
  return { cluster: true, seeds, username, password, tls: scheme === "rediss" };
}

export function redactUrl(url: string): string {
  return url.replace(/\/\/([^@/]*)@/, "//[redacted]@");
}
