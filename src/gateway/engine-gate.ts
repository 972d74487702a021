/**
 * The first gate of a connection: the Engine.IO handshake, before any session exists
 * (docs/protocol.md, "Connecting" and "Limits").
 *
 * - A replica that cannot serve (draining, Redis link down) answers a new session's first
 *   request with HTTP 503, so that a stock client retries, through the load balancer, on
 *   another replica. (A refusal in Socket.IO's middleware, a `connect_error`, would stop
 *   socket.io-client for good.)
 * - Sessions that have not completed the Socket.IO CONNECT yet cost memory and come before
 *   any token: at most `maxUnauthenticatedPerIp` per client address (HTTP 429) and
 *   `maxUnauthenticatedPerNode` per replica (HTTP 503); Socket.IO's `connectTimeout` closes
 *   one that is still not authenticated after `authTimeoutS`.
 *
 * Requests of an existing session (`sid=`) pass: they are not new sessions.
 */
import { ServerResponse, STATUS_CODES, type IncomingMessage } from "node:http";
import type { Socket as NetSocket } from "node:net";
import type { Config } from "../config/load-config.js";
import { RoomcastError, type ErrorReason } from "../contracts/error-codes.js";
import type { GatewayMetrics } from "../metrics/metrics.js";
import { clientAddress } from "./client-address.js";
import type { RoomcastServer } from "./types.js";

type EngineRequest = IncomingMessage & { _query?: Record<string, string> };
/** engine.io's stand-in response for a WebSocket upgrade: only the TCP socket is real. */
type UpgradeResponse = { socket: NetSocket };

/** What the gate notes on a session it let in (an engine.io Socket). */
interface EngineSession {
  request: IncomingMessage | null;
  remoteAddress: string;
  on(event: "close", listener: () => void): void;
  off(event: "close", listener: () => void): void;
  /** discard: now, without waiting for a long-polling client to come and fetch the close packet. */
  close(discard?: boolean): void;
}

interface Pending {
  ip: string;
  timer: NodeJS.Timeout;
}

export type GateRefusal = "unavailable" | "unauthenticated_ip" | "unauthenticated_node";

/** Writes an HTTP refusal in the protocol's error shape, on a polling request or a WebSocket upgrade. */
function refuse(res: ServerResponse | UpgradeResponse, status: number, reason: ErrorReason, message: string): void {
  const body = JSON.stringify({ error: new RoomcastError(reason, message).toBody() });
  if (res instanceof ServerResponse) {
    res.writeHead(status, { "content-type": "application/json", "retry-after": "1", connection: "close" });
    res.end(body);
    return;
  }
  const socket = res.socket;
  if (!socket.writable) return void socket.destroy();
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Type: application/json\r\nRetry-After: 1\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

export class EngineGate {
  /** Sessions not authenticated yet, by client address. */
  private readonly pendingByIp = new Map<string, number>();
  private readonly pendingSessions = new WeakMap<object, Pending>();
  /** Sessions not authenticated yet on this replica. */
  pending = 0;

  constructor(
    private readonly config: Config,
    private readonly metrics: Pick<GatewayMetrics, "gateRefusals" | "connectionAttempts" | "connectionRefusals">,
    private readonly isAvailable: () => boolean,
  ) {}

  install(io: RoomcastServer): void {
    io.engine.use((req: EngineRequest, res: ServerResponse | UpgradeResponse, next: (err?: Error) => void) => {
      if (req._query?.sid) return next();
      const refusal = this.check(req);
      if (!refusal) return next();
      this.metrics.gateRefusals.inc({ reason: refusal });
      // Also a handshake refused, as the dashboards and alerts count them.
      this.metrics.connectionAttempts.inc();
      this.metrics.connectionRefusals.inc({
        reason: refusal === "unavailable" ? "unavailable" : "too_many_connections",
      });
      if (refusal === "unavailable")
        refuse(res, 503, "unavailable", "this replica cannot serve now (draining or Redis unavailable); retry");
      else if (refusal === "unauthenticated_ip")
        refuse(res, 429, "too_many_connections", "too many connections not yet authenticated from this address");
      else
        refuse(res, 503, "too_many_connections", "this replica has too many connections not yet authenticated; retry");
      // next() is never called: engine.io creates no session for this request.
    });
    io.engine.on("connection", (session: EngineSession) => this.opened(session));
  }

  /** Why a new session must be refused, if it must. */
  private check(req: EngineRequest): GateRefusal | undefined {
    if (!this.isAvailable()) return "unavailable";
    const { maxUnauthenticatedPerNode: perNode, maxUnauthenticatedPerIp: perIp } = this.config;
    if (perNode > 0 && this.pending >= perNode) return "unauthenticated_node";
    if (perIp > 0 && (this.pendingByIp.get(this.addressOf(req)) ?? 0) >= perIp) return "unauthenticated_ip";
    return undefined;
  }

  private addressOf(req: IncomingMessage): string {
    return clientAddress(req.socket?.remoteAddress ?? "", req.headers["x-forwarded-for"], this.config.trustProxy);
  }

  private opened(session: EngineSession): void {
    const ip = session.request ? this.addressOf(session.request) : session.remoteAddress;
    // Socket.IO's connectTimeout would wait for a long-polling client to fetch the close packet
    // (up to its ping timeout): a session still unauthenticated is dropped outright.
    const timer = setTimeout(() => {
      if (!this.pendingSessions.has(session)) return;
      this.authenticated(session);
      session.close(true);
    }, this.config.authTimeoutS * 1000);
    timer.unref();
    this.pendingSessions.set(session, { ip, timer });
    this.pendingByIp.set(ip, (this.pendingByIp.get(ip) ?? 0) + 1);
    this.pending++;
    session.on("close", this.onPendingClose);
  }

  /** One listener for every pending session (called with the session as `this`), removed once it authenticates. */
  private readonly onPendingClose = ((gate: EngineGate) =>
    function (this: object) {
      gate.authenticated(this);
    })(this);

  /** The session completed a Socket.IO CONNECT (or closed): it no longer counts as pending. */
  authenticated(session: object): void {
    const entry = this.pendingSessions.get(session);
    if (entry === undefined) return;
    const { ip, timer } = entry;
    clearTimeout(timer);
    (session as EngineSession).off("close", this.onPendingClose);
    this.pendingSessions.delete(session);
    this.pending--;
    const left = (this.pendingByIp.get(ip) ?? 1) - 1;
    if (left <= 0) this.pendingByIp.delete(ip);
    else this.pendingByIp.set(ip, left);
  }
}
