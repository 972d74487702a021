/**
 * A replica's Socket.IO side: the server with its redis adapter, the handshake gate and the
 * connection middleware chain, the request handlers and the delivery of channel events. It
 * attaches to the replica's HTTP server; drain() moves its clients off, close() ends it.
 * src/app/gateway-app.ts wires it with the HTTP API and the rest.
 */
import type { Server as HttpServer } from "node:http";
import type { Logger } from "pino";
import { Server } from "socket.io";
import type { TokenVerifier } from "../auth/token-verifier.js";
import { channelOfRoom } from "../channels/channel-keys.js";
import { ChannelFeed } from "../channels/channel-feed.js";
import type { ChannelRegistry } from "../channels/channel-registry.js";
import type { ChannelStore } from "../channels/channel-store.js";
import type { PresenceStore } from "../channels/presence.js";
import { ConnectionQuotas } from "../cluster/connection-quotas.js";
import type { RedisClients } from "../cluster/redis-clients.js";
import { createSocketAdapter } from "../cluster/socket-adapter.js";
import type { Config } from "../config/load-config.js";
import { RoomcastError } from "../contracts/error-codes.js";
import type { Limits } from "../contracts/events.js";
import type { GatewayMetrics, LiveCounts } from "../metrics/metrics.js";
import { adminUiAddressesSockets } from "./admin-ui.js";
import { Admission } from "./admission.js";
import { closeConnection, type CloseReason } from "./close-connection.js";
import type { GatewayContext } from "./context.js";
import { Delivery } from "./delivery.js";
import { EngineGate } from "./engine-gate.js";
import { control } from "./handlers/control.js";
import { presence, presenceStats } from "./handlers/presence.js";
import { publish } from "./handlers/publish.js";
import { refresh } from "./handlers/refresh.js";
import { subscribe } from "./handlers/subscribe.js";
import { unsubscribe } from "./handlers/unsubscribe.js";
import { installHandshake } from "./handshake.js";
import { PresenceTracker } from "./presence-tracker.js";
import { RequestLimits } from "./request-limits.js";
import { RequestRouter } from "./request-router.js";
import { endSession, endWithNotice, kickLocal } from "./session.js";
import { TokenExpiry } from "./token-expiry.js";
import type { RoomcastServer, RoomcastSocket } from "./types.js";
import { welcomePacket, welcomeTail, writePacket } from "./wire.js";

const UPGRADE_RESPONSE = Symbol("roomcast.upgradeResponse");
type UpgradeRequest = { [UPGRADE_RESPONSE]?: { req?: unknown } };

const PING_INTERVAL_MS = 25_000;
const PING_TIMEOUT_MS = 20_000;
const KICK_TIMEOUT_MS = 3000;
const DRAIN_RETRY_JITTER_MS = 500;
const IN_FLIGHT_WAIT_MS = 5000;
/** Clients of a replica whose Redis link is lost move within this time (or ROOMCAST_DRAIN_S, if shorter). */
const LINK_LOST_SPREAD_MS = 3000;

export interface SocketServerDeps {
  config: Config;
  log: Logger;
  redis: RedisClients;
  sharded: boolean;
  registry: ChannelRegistry;
  store: ChannelStore;
  metrics: GatewayMetrics;
  verifyToken: TokenVerifier;
  presenceStore: PresenceStore;
  /** A channel's webhook stream has new occupancy changes (webhooks on): the workers deliver them. */
  notifyWebhooks: (channel: string) => void;
}

export interface SocketServer {
  io: RoomcastServer;
  context: GatewayContext;
  /** Not draining, and every Redis connection answered lately. */
  isReady(): boolean;
  /** Engine.IO sessions not authenticated yet. */
  unauthenticated(): number;
  /** Attaches to the HTTP server, after its routes are set (Engine.IO takes /socket.io/). */
  attach(http: HttpServer): void;
  /** Disconnects a user's connections on every replica (`closing 4403 kicked`); how many. */
  kickUser(userId: string): Promise<number>;
  /** Unready at once; every client moved off within ROOMCAST_DRAIN_S (`closing 4503 draining`). */
  drain(): Promise<void>;
  /** Requests being handled here finish (at most a few seconds). */
  finishRequests(): Promise<void>;
  /** Ends every transport (and the HTTP server it is attached to); clients reconnect elsewhere. */
  close(): Promise<void>;
}

const NOTHING = Object.freeze({});

/**
 * After authentication nothing reads a connection's handshake again but its address: its
 * headers (a browser's user agent, cookies), query, URL and the token are dropped, a few
 * hundred bytes to a kilobyte per connection.
 */
function trimHandshake(socket: RoomcastSocket): void {
  const { address, issued, secure, xdomain } = socket.handshake;
  (socket as unknown as { handshake: unknown }).handshake = {
    address,
    issued,
    secure,
    xdomain,
    time: "",
    url: "",
    headers: NOTHING,
    query: NOTHING,
    auth: NOTHING,
  };
}

export function limitsOf(config: Config): Limits {
  return {
    maxSubscriptions: config.maxSubscriptions,
    rateLimit: config.rateLimit,
    rateBurst: config.rateBurst,
    maxMessageBytes: config.maxMessageBytes,
    pingIntervalMs: PING_INTERVAL_MS,
    pingTimeoutMs: PING_TIMEOUT_MS,
  };
}

/** Connections by transport and subscriptions by namespace, counted when scraped (before the server exists: none). */
export function liveCountsOf(server: () => SocketServer | undefined, redisUp: () => boolean): LiveCounts {
  const none = { channels: 0, connections: 0 };
  const tally = (count: (add: (key: string, n?: number) => void, socket: RoomcastSocket) => void) => {
    const totals = new Map<string, number>();
    const add = (key: string, n = 1) => totals.set(key, (totals.get(key) ?? 0) + n);
    for (const socket of server()?.io.of("/").sockets.values() ?? []) count(add, socket);
    return totals;
  };
  return {
    redisUp,
    unauthenticatedSessions: () => server()?.unauthenticated() ?? 0,
    presence: () => server()?.context.presence.counts() ?? none,
    connectionsByTransport: () => tally((add, socket) => add(socket.conn.transport.name)),
    subscriptionsByNamespace: () =>
      tally((add, socket) => {
        for (const sub of socket.data.subscriptions?.values() ?? []) add(sub.target.namespace);
      }),
  };
}

export function createSocketServer({
  config,
  log,
  redis,
  sharded,
  registry,
  store,
  metrics,
  verifyToken,
  presenceStore,
  notifyWebhooks,
}: SocketServerDeps): SocketServer {
  let draining = false;
  const isReady = () => !draining && redis.isUp();

  const io: RoomcastServer = new Server({
    path: "/socket.io/",
    serveClient: false,
    pingInterval: PING_INTERVAL_MS,
    pingTimeout: PING_TIMEOUT_MS,
    // A session that has not authenticated (completed the CONNECT) by then is closed.
    connectTimeout: config.authTimeoutS * 1000,
    // Above the message limit, so that oversized requests get an answer rather than a dropped connection.
    maxHttpBufferSize: Math.max(config.maxMessageBytes * 2, 1_000_000),
    // Any origin may connect without credentials; listed origins may send cookies too (the
    // load balancer's stickiness cookie, for long-polling from another origin).
    cors: config.corsOrigins.length > 0 ? { origin: [...config.corsOrigins], credentials: true } : { origin: "*" },
  });
  const quotas = new ConnectionQuotas(
    redis.commands,
    config.redisPrefix,
    config.quotaLeaseS * 1000,
    log.child({ module: "quotas" }),
    metrics,
    redis.cluster,
  );
  const admission = new Admission(quotas, config);
  const delivery = new Delivery(
    io,
    store,
    config,
    log.child({ module: "delivery" }),
    (socket, channel, code, reason) => endWithNotice(context, socket, channel, code, reason),
    metrics,
  );
  const feed = new ChannelFeed(
    redis.subscriber,
    config.redisPrefix,
    sharded,
    log.child({ module: "feed" }),
    (channel, message) =>
      "closed" in message
        ? delivery.onChannelClosed(channel, message)
        : "presence" in message
          ? delivery.onPresence(channel, message.presence)
          : delivery.onChannelMessage(channel, message),
  );
  // Events published here reach this replica's subscribers without the round trip through Redis.
  store.onPublished = (channel, message) => delivery.onLocalPublish(channel, message);
  io.adapter(createSocketAdapter(redis.commands, redis.subscriber, `${config.redisPrefix}:sio`, sharded));
  io.of("/").adapter.on("delete-room", (room: string) => {
    const channel = channelOfRoom(room);
    if (!channel) return;
    feed.release(channel);
    delivery.forget(channel);
  });
  const presenceTracker = new PresenceTracker(
    presenceStore,
    registry,
    config,
    metrics,
    log.child({ module: "presence" }),
    notifyWebhooks,
  );
  const context: GatewayContext = {
    config,
    registry,
    store,
    delivery,
    presence: presenceTracker,
    presenceStore,
    feed,
    admission,
    verifyToken,
    expiry: new TokenExpiry(),
    isRedisUp: redis.isUp,
    metrics,
    log: log.child({ module: "gateway" }),
  };

  const kickUser = async (userId: string): Promise<number> => {
    let count = kickLocal(io, userId);
    const others = await Promise.race([
      io.serverSideEmitWithAck("kick", userId),
      new Promise<never>((_, reject) =>
        setTimeout(
          () => reject(new RoomcastError("unavailable", "not every replica answered; retry")),
          KICK_TIMEOUT_MS,
        ).unref(),
      ),
    ]);
    for (const n of others) count += typeof n === "number" ? n : 0;
    return count;
  };
  io.on("kick", (userId, ack) => ack(kickLocal(io, userId)));

  // New sessions: refused (HTTP 503/429) while this replica cannot serve or too many are unauthenticated.
  const gate = new EngineGate(config, metrics, isReady);
  const handlers = { subscribe, unsubscribe, publish, control, refresh, presence, presence_stats: presenceStats };
  const limits = limitsOf(config);
  const welcome = welcomeTail(config.nodeId, limits);
  const requests = new RequestRouter(context, handlers, new RequestLimits(config));
  const addressableById = adminUiAddressesSockets(config);
  // Called with the socket as `this`: one listener for every connection, no closure each.
  const onDisconnect = function (this: RoomcastSocket) {
    endSession(context, this);
  };

  const attach = (http: HttpServer) => {
    io.attach(http);
    gate.install(io);
    installHandshake(io, context, isReady, [(socket) => admission.admit(socket)]);
    // engine.io keeps each WebSocket's upgrade request for the connection's lifetime, in the
    // request and in the response object it made for middlewares: note the response, so that
    // both references can be dropped once the connection is up.
    io.engine.use((req: UpgradeRequest, res: unknown, next: () => void) => {
      req[UPGRADE_RESPONSE] = res as { req?: unknown };
      next();
    });
    // Sessions that authenticate on another namespace (the admin UI's) are not pending either.
    io.on("new_namespace", (namespace) => namespace.on("connection", (socket) => gate.authenticated(socket.conn)));
    for (const namespace of io._nsps.values())
      if (namespace.name !== "/") namespace.on("connection", (socket) => gate.authenticated(socket.conn));
    io.on("connection", (socket) => {
      gate.authenticated(socket.conn);
      // Nothing needs the upgrade request or the token string again (socket.handshake keeps the
      // headers): Socket.IO's own advice to free memory per connection.
      const conn = socket.conn as unknown as { request: UpgradeRequest | null };
      const response = conn.request?.[UPGRADE_RESPONSE];
      if (response) response.req = null;
      conn.request = null;
      trimHandshake(socket);
      // Socket.IO puts every socket in a room of its own id, which costs a set per connection;
      // only the writable admin UI addresses sockets by id (disconnect, join, leave one socket).
      if (!addressableById) void socket.leave(socket.id);
      requests.attach(socket);
      context.expiry.track(socket, socket.data.principal.exp);
      socket.on("disconnect", onDisconnect);
      // The `welcome` packet, written as it goes on the wire (2["welcome",{...}]): its fixed part
      // is encoded once, not for every handshake.
      writePacket(socket, welcomePacket(socket.id, Date.now(), welcome));
    });
  };
  // The first "ready" came before this point: each later one is a reconnect (on a Cluster,
  // "subscribersReady" follows a failover), after which ioredis has resubscribed the feeds.
  redis.subscriber.on(redis.cluster ? "subscribersReady" : "ready", () => delivery.resyncAll());

  /**
   * Moves the clients present now to other replicas: each gets `closing` at a random moment
   * within `spreadMs` (so that their reconnects are spread out) and its connection is closed
   * at the transport level (a stock client reconnects by itself). `stillMoving` false stops
   * the ones not moved yet.
   */
  const moveClients = (
    reason: CloseReason,
    spreadMs: number,
    stillMoving: () => boolean,
    onMoved: () => void = () => undefined,
  ) => {
    const sockets = [...io.of("/").sockets.values()];
    return Promise.all(
      sockets.map(
        (socket) =>
          new Promise<void>((resolve) =>
            setTimeout(() => {
              if (stillMoving() && socket.connected)
                closeConnection(socket, reason, Math.floor(Math.random() * DRAIN_RETRY_JITTER_MS));
              onMoved();
              resolve();
            }, Math.random() * spreadMs),
          ),
      ),
    ).then(() => sockets.length);
  };

  // A lost Redis link (down or silent for ROOMCAST_REDIS_SILENT_S): unready (readiness follows the
  // link), and clients move to replicas that can serve them; they come back here once it heals.
  let moving = false;
  redis.onLinkState((state) => {
    if (state !== "lost" || moving || draining) return;
    moving = true;
    const spreadMs = Math.min(config.drainS * 1000, LINK_LOST_SPREAD_MS);
    context.log.warn(
      { connections: io.of("/").sockets.size, spreadMs },
      "Redis link lost: moving clients to other replicas",
    );
    void moveClients(
      "unavailable",
      spreadMs,
      () => redis.linkState() !== "ready" && !draining,
      () => metrics.redisLinkMoves.inc(),
    ).finally(() => (moving = false));
  });

  return {
    io,
    context,
    isReady,
    unauthenticated: () => gate.pending,
    attach,
    kickUser,
    async drain() {
      if (draining) return;
      draining = true;
      metrics.draining.set(1);
      metrics.drainRemaining.set(io.of("/").sockets.size);
      context.log.info({ connections: io.of("/").sockets.size, drainS: config.drainS }, "draining");
      await moveClients(
        "draining",
        config.drainS * 1000,
        () => true,
        () => metrics.drainRemaining.dec(),
      );
    },
    async finishRequests() {
      const deadline = Date.now() + IN_FLIGHT_WAIT_MS;
      while (requests.inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    },
    async close() {
      // Anyone left (a handshake that completed during the drain) moves too; io.close() ends
      // every transport without a Socket.IO disconnect, so clients reconnect elsewhere, and
      // closes the HTTP server it is attached to.
      for (const socket of io.of("/").sockets.values()) closeConnection(socket, "draining");
      await new Promise<void>((resolve) => io.close(() => resolve()));
      quotas.close();
      presenceTracker.close();
      context.expiry.close();
    },
  };
}
