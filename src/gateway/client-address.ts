/**
 * The address a connection or request comes from. Behind `trustProxy` proxies (a load
 * balancer, an ingress controller) the peer is the nearest proxy, so the client is the address
 * that many hops back in X-Forwarded-For, read right to left: the same rule as Fastify's
 * `trustProxy: <hops>` for HTTP requests. Addresses further left are the client's own claims
 * and are never trusted.
 */
export function clientAddress(peer: string, forwardedFor: string | string[] | undefined, trustProxy: number): string {
  if (trustProxy <= 0 || forwardedFor === undefined) return peer;
  const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(",") : forwardedFor)
    .split(",")
    .map((hop) => hop.trim())
    .filter(Boolean)
    .reverse();
  const chain = [peer, ...hops];
  return chain[Math.min(trustProxy, chain.length - 1)]!;
}
