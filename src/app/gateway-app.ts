/**
 * One gateway replica, wired: the core (Redis, registry, publish path), the Socket.IO server,
 * the HTTP API on the same port, the job API's queue, the node registry and, when set up, the
 * admin UI. Its shutdown follows the one close order (close-order.ts).
 */
import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";
import { createTokenVerifier } from "../auth/token-verifier.js";
import { PresenceStore } from "../channels/presence.js";
import { NodeRegistry } from "../cluster/node-registry.js";
import { requireServerSettings, type Config } from "../config/load-config.js";
import { REQUEST_EVENTS } from "../contracts/events.js";
import { adminUiEnabled, installAdminUi } from "../gateway/admin-ui.js";
import type { GatewayContext } from "../gateway/context.js";
import { LISTEN_BACKLOG } from "../gateway/listen-backlog.js";
import { createSocketServer, liveCountsOf, type SocketServer } from "../gateway/socket-server.js";
import type { RoomcastServer } from "../gateway/types.js";
import { createHttpApp } from "../http/http-app.js";
import { JobService } from "../jobs/job-service.js";
import { webhookNotifier } from "../jobs/webhook-notifier.js";
import { createMetrics } from "../metrics/metrics.js";
import { CloseOrder } from "./close-order.js";
import { channelStore, jobChannels, jobQueues, openCore } from "./core.js";

export interface Gateway {
  app: FastifyInstance;
  io: RoomcastServer;
  context: GatewayContext;
  isReady(): boolean;
  /** Turns unready and moves every client away (`closing 4503 draining`). */
  drain(): Promise<void>;
  /** Listens on config.host:config.port; returns the base URL. */
  listen(): Promise<string>;
  close(): Promise<void>;
}

export async function createGateway(config: Config, log: Logger): Promise<Gateway> {
  requireServerSettings(config);
  const verifyToken = createTokenVerifier(config);
  const closing = new CloseOrder(log.child({ module: "shutdown" }));
  const core = await openCore(config, log, closing);
  const { redis, registry, records, sharded } = core;
  // Live counts are read when scraped, from the Socket.IO server made below.
  let socket: SocketServer | undefined;
  const live = liveCountsOf(() => socket, redis.isUp);
  const metrics = createMetrics(config.nodeId, live, {
    namespaces: Object.keys(config.namespaces),
    events: REQUEST_EVENTS,
  });
  const store = channelStore(core, metrics);
  const { queues } = jobQueues(core, "producer", closing);
  const jobs = new JobService({
    config,
    queues,
    records,
    channels: jobChannels(core, store, queues),
    redis: redis.commands,
    sharded,
  });
  const presenceStore = new PresenceStore(redis.commands, {
    prefix: config.redisPrefix,
    sharded,
    hooks: config.webhookUrls.length > 0,
  });
  const server = (socket = createSocketServer({
    config,
    log,
    redis,
    sharded,
    registry,
    store,
    metrics,
    verifyToken,
    presenceStore,
    notifyWebhooks: webhookNotifier(queues, log),
  }));

  const nodes = new NodeRegistry(
    redis.commands,
    config.redisPrefix,
    config.nodeId,
    () => ({
      ready: server.isReady(),
      connections: server.io.of("/").sockets.size,
      subscriptions: Object.fromEntries(live.subscriptionsByNamespace()),
    }),
    log.child({ module: "nodes" }),
  );
  const app = createHttpApp({
    config,
    metrics,
    verifyToken,
    registry,
    store,
    presence: presenceStore,
    clusterStats: () => nodes.cluster(),
    isReady: server.isReady,
    isRedisUp: redis.isUp,
    redis: redis.commands,
    kickUser: server.kickUser,
    jobs,
    log: log.child({ module: "http" }),
  });
  server.attach(app.server);
  // The Socket.IO admin UI (namespace /admin, page /admin/): only when its settings are set.
  if (adminUiEnabled(config))
    installAdminUi(server.io, app, { config, redis: redis.commands, log: log.child({ module: "admin-ui" }) });
  await app.ready();

  closing.add("drain", "clients", () => server.drain());
  closing.add("finish in flight", "socket requests", () => server.finishRequests());
  // io.close() closes the HTTP server too; app.close() then waits for in-flight HTTP requests.
  closing.add("finish in flight", "socket.io and the HTTP API", async () => {
    await server.close();
    await app.close();
  });
  closing.add("stop background work", "node registry", () => nodes.close());

  return {
    app,
    io: server.io,
    context: server.context,
    isReady: server.isReady,
    drain: server.drain,
    listen: () => app.listen({ port: config.port, host: config.host, backlog: LISTEN_BACKLOG }),
    close: () => closing.close(),
  };
}
