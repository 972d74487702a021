/**
 * One gateway replica: Fastify and Socket.IO on one port, the redis adapter, the
 * connection middleware chain and the request handlers. `ready()` and `close()` own its
 * lifecycle; shutdown order is fixed in close().
 */
import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";
import { Server } from "socket.io";
import { createTokenVerifier } from "../auth/token-verifier.js";
import { ChannelRegistry } from "../channels/channel-registry.js";
import { ChannelStore } from "../channels/channel-store.js";
import { redisJobDirectory } from "../channels/job-directory.js";
import { createAdapter, createShardedAdapter } from "@socket.io/redis-adapter";
import { channelOfRoom } from "../channels/channel-keys.js";
import { ChannelFeed } from "../cluster/channel-feed.js";
import { connectRedis, type RedisClients } from "../cluster/redis-clients.js";
import { requireServerSettings, type Config } from "../config/load-config.js";
import type { Limits } from "../contracts/events.js";
import { createHttpApp } from "../http/http-app.js";
import type { GatewayContext } from "./context.js";
import { Delivery } from "./delivery.js";
import { control } from "./handlers/control.js";
import { publish } from "./handlers/publish.js";
import { refresh } from "./handlers/refresh.js";
import { subscribe } from "./handlers/subscribe.js";
import { unsubscribe } from "./handlers/unsubscribe.js";
import { installHandshake } from "./handshake.js";
import { attachRequests } from "./request-router.js";
import { endSession, scheduleExpiry } from "./session.js";
import type { RoomcastServer } from "./types.js";

const PING_INTERVAL_MS = 25_000;
const PING_TIMEOUT_MS = 20_000;

export interface Gateway {
  app: FastifyInstance;
  io: RoomcastServer;
  context: GatewayContext;
  isReady(): boolean;
  /** Listens on config.host:config.port; returns the base URL. */
  listen(): Promise<string>;
  close(): Promise<void>;
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

export async function createGateway(config: Config, log: Logger): Promise<Gateway> {
  requireServerSettings(config);
  const verifyToken = createTokenVerifier(config);
  const redis: RedisClients = await connectRedis(config.redisUrl!, log);
  const registry = new ChannelRegistry(config, redisJobDirectory(redis.commands, config.redisPrefix));
  const sharded = config.adapter === "sharded" || (config.adapter === "auto" && redis.cluster);
  const store = new ChannelStore(redis.commands, config.redisPrefix, config.idempotencyTtlS, sharded);

  let closing = false;
  const isReady = () => !closing && redis.isUp();

  const io: RoomcastServer = new Server({
    path: "/socket.io/",
    serveClient: false,
    pingInterval: PING_INTERVAL_MS,
    pingTimeout: PING_TIMEOUT_MS,
    // Above the message limit, so that oversized requests get an answer rather than a dropped connection.
    maxHttpBufferSize: Math.max(config.maxMessageBytes * 2, 1_000_000),
    cors: { origin: "*" },
  });
  const delivery = new Delivery(io, store, log.child({ module: "delivery" }));
  const feed = new ChannelFeed(redis.subscriber, config.redisPrefix, sharded, log.child({ module: "feed" }), (channel, message) =>
    delivery.onChannelMessage(channel, message),
  );
  // The socket.io adapter links the replicas for everything but channel events (those
  // travel on the feed): its own key, so that the two never read each other's messages.
  const adapterKey = `${config.redisPrefix}:sio`;
  io.adapter(
    sharded
      ? createShardedAdapter(redis.commands, redis.subscriber, { channelPrefix: adapterKey, subscriptionMode: "static" })
      : createAdapter(redis.commands, redis.subscriber, { key: adapterKey, requestsTimeout: 5000 }),
  );
  io.of("/").adapter.on("delete-room", (room: string) => {
    const channel = channelOfRoom(room);
    if (channel) feed.release(channel);
  });
  const context: GatewayContext = {
    config,
    registry,
    store,
    delivery,
    feed,
    verifyToken,
    isRedisUp: redis.isUp,
    log: log.child({ module: "gateway" }),
  };
  const app = createHttpApp(context, { isReady, isRedisUp: redis.isUp, log: log.child({ module: "http" }) });
  io.attach(app.server);

  installHandshake(io, context, isReady);
  const handlers = { subscribe, unsubscribe, publish, control, refresh };
  const limits = limitsOf(config);
  io.on("connection", (socket) => {
    attachRequests(context, socket, handlers);
    scheduleExpiry(socket, socket.data.principal.exp);
    socket.on("disconnect", () => endSession(socket));
    socket.emit("welcome", { sessionId: socket.id, node: config.nodeId, serverTime: Date.now(), limits });
  });
  // The first "ready" came before this point: each later one is a reconnect (on a Cluster,
  // "subscribersReady" follows a failover), after which ioredis has resubscribed the feeds.
  redis.subscriber.on(redis.cluster ? "subscribersReady" : "ready", () => delivery.resyncAll());
  await app.ready();

  return {
    app,
    io,
    context,
    isReady,
    async listen() {
      return app.listen({ port: config.port, host: config.host });
    },
    async close() {
      closing = true;
      io.local.disconnectSockets(true);
      await new Promise<void>((resolve) => io.close(() => resolve()));
      await app.close();
      await redis.close();
    },
  };
}
