/**
 * The primary side of `roomcast start`'s load balancer: it accepts every TCP connection and
 * hands it to a gateway process, keeping Engine.IO sessions (`sid=`) on the gateway that owns
 * them, so that long-polling works. It speaks the messages of @socket.io/sticky's
 * `setupWorker` (which the gateways use), and replaces that package's `setupMaster`, which
 * crashes the whole primary when a kept-alive connection sends another request after its
 * gateway died: here that connection is closed instead, and the client reconnects.
 */
import cluster, { type Worker } from "node:cluster";
import { randomBytes } from "node:crypto";
import type { Server } from "node:http";
import type { Socket } from "node:net";

const SID = /sid=([\w-]{20})/;

type Counted = Worker & { clientsCount?: number };

export function setupStickyBalancer(server: Server): void {
  const sessionToWorker = new Map<string, number>();
  const worker = (id: number | undefined): Counted | undefined =>
    id === undefined ? undefined : (cluster.workers?.[id] as Counted | undefined);

  /** The worker of the request's session, else the one with the fewest clients. */
  const choose = (head: string): Counted | undefined => {
    const sid = SID.exec(head)?.[1];
    const owner = sid ? worker(sessionToWorker.get(sid)) : undefined;
    if (owner) return owner;
    let least: Counted | undefined;
    for (const candidate of Object.values(cluster.workers ?? {}) as Counted[]) {
      if (!least || (candidate.clientsCount ?? 0) < (least.clientsCount ?? 0)) least = candidate;
    }
    return least;
  };

  server.on("connection", (socket: Socket) => {
    let assigned: number | undefined;
    let connectionId: string | undefined;
    const dropOnError = (err: Error | null) => {
      if (err) socket.destroy();
    };
    socket.on("data", (buffer: Buffer) => {
      const data = buffer.toString();
      if (assigned !== undefined && connectionId) {
        // A later chunk (or request) on a connection handed over with keepOpen: same gateway, or none.
        const owner = worker(assigned);
        if (!owner) socket.destroy();
        else owner.send({ type: "sticky:http-chunk", data, connectionId }, dropOnError);
        return;
      }
      const target = choose(data);
      if (!target) {
        socket.end("HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
        return;
      }
      assigned = target.id;
      const head = data.slice(0, data.indexOf("\r\n\r\n")).toLowerCase();
      // A body may follow in later chunks: the gateway keeps the connection, and we forward them.
      const keepOpen = head.includes("content-length:") || head.includes("transfer-encoding:");
      if (keepOpen) connectionId = randomBytes(8).toString("hex");
      // Stop reading here before the hand-off: until the gateway has the socket, Node's own
      // read callback here drops what arrives (a client's first frame, lost about once in 50).
      else (socket as Socket & { _handle?: { readStop?(): void } })._handle?.readStop?.();
      target.send({ type: "sticky:connection", data, connectionId }, socket, { keepOpen }, dropOnError);
    });
  });

  // Lets Node see the end of each request body on the primary side too.
  server.on("request", (request) => request.on("data", () => undefined));

  cluster.on("message", (from: Counted, message: { type?: string; data?: string }) => {
    if (message?.type === "sticky:connection" && message.data) {
      sessionToWorker.set(message.data, from.id);
      from.clientsCount = (from.clientsCount ?? 0) + 1;
    } else if (message?.type === "sticky:disconnection" && message.data) {
      sessionToWorker.delete(message.data);
      from.clientsCount = Math.max((from.clientsCount ?? 1) - 1, 0);
    }
  });
  cluster.on("exit", (gone) => {
    for (const [sid, id] of sessionToWorker) if (id === gone.id) sessionToWorker.delete(sid);
  });
}
