/**
 * A TCP proxy on a loopback port that a test can make misbehave like a bad network:
 * - freeze(): nothing passes in either direction, no FIN, no RST (a partition, a half-open
 *   link); connections opened meanwhile are accepted and held. heal() lets everything flow.
 * - stall(): the proxy stops reading from the server, as a phone that stops reading does
 *   (the server's writes pile up in its buffers); resume() reads again.
 * A side that closes closes the other.
 */
import { connect, createServer, type Server, type Socket } from "node:net";

export interface TcpProxy {
  port: number;
  url(scheme: string): string;
  freeze(): void;
  heal(): void;
  stall(): void;
  resume(): void;
  /** Connections open now. */
  connections(): number;
  close(): Promise<void>;
}

interface Pair {
  client: Socket;
  upstream: Socket | undefined;
}

/** Forwards `from` to `to`, with backpressure, unless `blocked()`. */
function forward(from: Socket, to: () => Socket | undefined, blocked: () => boolean): void {
  from.on("data", (chunk: Buffer) => {
    const target = to();
    if (!target) return;
    if (!target.write(chunk)) {
      from.pause();
      target.once("drain", () => !blocked() && from.resume());
    }
  });
}

export async function startTcpProxy(targetPort: number, targetHost = "127.0.0.1"): Promise<TcpProxy> {
  const pairs = new Set<Pair>();
  let frozen = false;
  let stalled = false;

  const openUpstream = (pair: Pair) => {
    const upstream = connect(targetPort, targetHost);
    pair.upstream = upstream;
    upstream.on("error", () => pair.client.destroy());
    upstream.on("close", () => pair.client.destroy());
    forward(
      upstream,
      () => pair.client,
      () => frozen || stalled,
    );
    forward(
      pair.client,
      () => pair.upstream,
      () => frozen,
    );
    if (frozen || stalled) upstream.pause();
    if (!frozen) pair.client.resume();
  };

  const server: Server = createServer({ pauseOnConnect: true }, (client) => {
    const pair: Pair = { client, upstream: undefined };
    pairs.add(pair);
    client.on("error", () => pair.upstream?.destroy());
    client.on("close", () => {
      pairs.delete(pair);
      pair.upstream?.destroy();
    });
    if (!frozen) openUpstream(pair);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const port = (server.address() as { port: number }).port;

  return {
    port,
    url: (scheme) => `${scheme}://127.0.0.1:${port}`,
    freeze() {
      frozen = true;
      for (const pair of pairs) {
        pair.client.pause();
        pair.upstream?.pause();
      }
    },
    heal() {
      frozen = false;
      for (const pair of pairs) {
        if (!pair.upstream) openUpstream(pair);
        pair.client.resume();
        if (!stalled) pair.upstream?.resume();
      }
    },
    stall() {
      stalled = true;
      for (const pair of pairs) pair.upstream?.pause();
    },
    resume() {
      stalled = false;
      if (frozen) return;
      for (const pair of pairs) pair.upstream?.resume();
    },
    connections: () => pairs.size,
    async close() {
      for (const pair of pairs) {
        pair.client.destroy();
        pair.upstream?.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
