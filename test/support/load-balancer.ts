/**
 * A small TCP load balancer in front of gateway replicas, as a Kubernetes Service with a
 * readiness probe and session affinity would be: it checks each replica's /readyz every
 * 100 ms, sends new connections to ready replicas in turn, and keeps an Engine.IO session's
 * requests (`sid=` in the URL, learned from the handshake answer) on the replica that owns
 * it, so that HTTP long-polling works. Replicas come and go with setBackends().
 */
import { connect, createServer, type Socket } from "node:net";

export interface Backend {
  port: number;
}

export interface LoadBalancer {
  url: string;
  port: number;
  setBackends(backends: readonly Backend[]): void;
  /** Ports of the replicas that answered /readyz 200 on the last check. */
  ready(): number[];
  close(): Promise<void>;
}

const SID_IN_URL = /[?&]sid=([\w-]{20})/;
const SID_IN_ANSWER = /"sid":"([\w-]{20})"/;

export async function startLoadBalancer(initial: readonly Backend[]): Promise<LoadBalancer> {
  let backends = [...initial];
  const readyPorts = new Set<number>();
  const sessions = new Map<string, number>();
  const sockets = new Set<Socket>();
  let turn = 0;

  const check = async () => {
    await Promise.all(
      backends.map(async ({ port }) => {
        let ok = false;
        try {
          ok = (await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(1000) })).status === 200;
        } catch {
          ok = false;
        }
        if (ok) readyPorts.add(port);
        else readyPorts.delete(port);
      }),
    );
  };
  let checking = true;
  const loop = async () => {
    while (checking) {
      await check();
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  await check();
  void loop();

  const choose = (head: string): number | undefined => {
    const sid = SID_IN_URL.exec(head)?.[1];
    const owner = sid ? sessions.get(sid) : undefined;
    if (owner !== undefined) return owner;
    const ready = backends.filter((b) => readyPorts.has(b.port));
    const pool = ready.length > 0 ? ready : backends;
    if (pool.length === 0) return undefined;
    return pool[turn++ % pool.length]!.port;
  };

  const server = createServer((client) => {
    sockets.add(client);
    client.on("close", () => sockets.delete(client));
    client.on("error", () => client.destroy());
    client.once("data", (first: Buffer) => {
      const port = choose(first.toString("latin1", 0, Math.min(first.length, 4096)));
      if (port === undefined) {
        client.end("HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
        return;
      }
      const upstream = connect(port, "127.0.0.1");
      sockets.add(upstream);
      upstream.on("close", () => {
        sockets.delete(upstream);
        client.destroy();
      });
      upstream.on("error", () => client.destroy());
      client.on("close", () => upstream.destroy());
      // Learn which replica owns a new session from the handshake's answer.
      upstream.once("data", (answer: Buffer) => {
        const sid = SID_IN_ANSWER.exec(answer.toString("latin1", 0, Math.min(answer.length, 4096)))?.[1];
        if (sid) sessions.set(sid, port);
      });
      upstream.write(first);
      client.pipe(upstream);
      upstream.pipe(client);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    setBackends(next) {
      backends = [...next];
      for (const p of [...readyPorts]) if (!backends.some((b) => b.port === p)) readyPorts.delete(p);
    },
    ready: () => [...readyPorts],
    async close() {
      checking = false;
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
