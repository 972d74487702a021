/**
 * The Fastify app: JSON errors in the docs/protocol.md shape for every failure, health and
 * readiness, and the /v1 routes.
 */
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
} from "fastify";
import type { ClusterStats } from "../cluster/node-registry.js";
import { failedBecauseRedis, type RedisClient } from "../cluster/redis-clients.js";
import { RoomcastError, type ErrorBody } from "../contracts/error-codes.js";
import type { Logger } from "pino";
import type { TokenVerifier } from "../auth/token-verifier.js";
import type { ChannelRegistry } from "../channels/channel-registry.js";
import type { ChannelStore } from "../channels/channel-store.js";
import type { PresenceStore } from "../channels/presence.js";
import type { Config } from "../config/load-config.js";
import type { GatewayMetrics } from "../metrics/metrics.js";
import { adminRoutes } from "./admin-routes.js";
import { channelRoutes } from "./channel-routes.js";
import { countFailedAnswers, type V1Auth } from "./http-auth.js";
import { HttpRateLimit } from "./http-rate-limit.js";
import { jobRoutes } from "./job-routes.js";
import { consoleRoutes } from "./console-routes.js";
import type { JobService } from "../jobs/job-service.js";

/** What the HTTP API needs from its replica. */
export interface HttpDeps {
  config: Config;
  metrics: Pick<GatewayMetrics, "registry" | "httpRequests" | "httpDuration" | "rateLimited">;
  verifyToken: TokenVerifier;
  registry: ChannelRegistry;
  store: ChannelStore;
  presence: PresenceStore;
  log: Logger;
  /** Holds the cluster-wide HTTP rate-limit counters. */
  redis: RedisClient;
  /** Disconnects a user everywhere; resolves how many connections ended. */
  kickUser: (userId: string) => Promise<number>;
  /** The whole cluster, from the node registry. */
  clusterStats: () => Promise<ClusterStats>;
  isReady: () => boolean;
  isRedisUp: () => boolean;
  jobs: JobService;
}

/**
 * The headers @fastify/helmet sets for an API (no CSP: JSON answers), set here as one constant:
 * helmet rebuilt its middleware chain on every request, a measurable share of a publish.
 */
export const SECURITY_HEADERS = Object.freeze({
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
  "origin-agent-cluster": "?1",
  "referrer-policy": "no-referrer",
  "strict-transport-security": "max-age=31536000; includeSubDomains",
  "x-content-type-options": "nosniff",
  "x-dns-prefetch-control": "off",
  "x-download-options": "noopen",
  "x-frame-options": "SAMEORIGIN",
  "x-permitted-cross-domain-policies": "none",
  "x-xss-protection": "0",
});

function toHttpError(err: FastifyError | Error, redisUp: boolean): RoomcastError {
  if (err instanceof RoomcastError) return err;
  const status = (err as FastifyError).statusCode;
  if (status === 413) return new RoomcastError("too_large", "request body too large");
  if (status === 415) return new RoomcastError("bad_request", "body: Content-Type must be application/json");
  if (status !== undefined && status >= 400 && status < 500)
    return new RoomcastError("bad_request", `body: ${err.message}`);
  if (failedBecauseRedis(err, redisUp)) return new RoomcastError("unavailable", "Redis is unavailable; retry");
  return new RoomcastError("internal");
}

export function createHttpApp(options: HttpDeps): FastifyInstance {
  const { config, metrics } = options;
  let requests = 0;
  const app = Fastify({
    loggerInstance: options.log as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.maxMessageBytes > 0 ? config.maxMessageBytes : 1024 * 1024,
    // Request ids for logs: a counter is enough (a random UUID per request cost more).
    genReqId: () => `${config.nodeId}-${++requests}`,
    // Requests log through the app's logger: no child logger (with its redaction set up) per request.
    childLoggerFactory: (logger) => logger,
    // request.ip: the client behind this many proxies (X-Forwarded-For), as for socket handshakes.
    ...(config.trustProxy > 0 ? { trustProxy: (_address: string, hop: number) => hop < config.trustProxy } : {}),
    // A channel name may be 233 characters (docs/protocol.md, "Channels and authorization"), more once URL-encoded;
    // Fastify's default (100) refused valid names with its own 414 body.
    routerOptions: { maxParamLength: 1024 },
    // Router-level refusals (path parameter too long, malformed URL) in the docs/protocol.md shape too.
    frameworkErrors: (err, _request, reply) => {
      const message =
        err.code === "FST_ERR_MAX_PARAM_LENGTH" ? "url: a path parameter is too long" : "url: not a valid URL";
      void (reply as unknown as FastifyReply)
        .code(400)
        .send({ error: new RoomcastError("bad_request", message).toBody() });
    },
  });

  app.setErrorHandler((err, request, reply) => {
    const error = toHttpError(err as FastifyError, options.isRedisUp());
    if (error.reason === "internal") request.log.error({ err }, "request failed");
    else if (error.reason === "unavailable")
      request.log.warn({ err: (err as Error).message, url: request.url }, "refused: Redis unavailable");
    else request.log.debug({ code: error.code, reason: error.reason, url: request.url }, "request refused");
    const body: ErrorBody = error.toBody();
    return reply.code(error.status).send({ error: body });
  });
  app.setNotFoundHandler((request, reply) => {
    const body = new RoomcastError("not_found", `no route ${request.method} ${request.url.split("?")[0]}`).toBody();
    return reply.code(404).send({ error: body });
  });

  // Security headers on every answer (an API: no CSP needed for JSON).
  app.addHook("onRequest", async (_request, reply) => {
    void reply.headers(SECURITY_HEADERS);
  });

  // Every answer, errors included, by route pattern (bounded: never the channel or user id).
  app.addHook("onResponse", async (request, reply) => {
    const route = request.routeOptions.url ?? "unmatched";
    metrics.httpRequests.inc({ route, status: String(reply.statusCode) });
    metrics.httpDuration.observe({ route }, reply.elapsedTime / 1000);
  });

  app.get("/healthz", async () => ({ status: "ok", node: config.nodeId }));
  app.get("/metrics", async (_request, reply) => {
    const registry = metrics.registry;
    return reply.type(registry.contentType).send(await registry.metrics());
  });
  app.get("/readyz", async (_request, reply) => {
    const ready = options.isReady();
    return reply.code(ready ? 200 : 503).send({ ready, node: config.nodeId });
  });
  if (config.console) consoleRoutes(app);
  const auth: V1Auth = {
    verify: options.verifyToken,
    allowedTenants: config.allowedTenants,
    rateLimit: new HttpRateLimit(
      options.redis,
      config.redisPrefix,
      config.httpRateLimit,
      config.httpRateLimitPublishers,
      () => metrics.rateLimited.inc({ kind: "http" }),
    ),
  };
  void app.register(async (v1) => {
    countFailedAnswers(v1, auth);
    channelRoutes(v1, {
      registry: options.registry,
      store: options.store,
      presence: options.presence,
      presenceMaxMembers: config.presenceMaxMembers,
      auth,
      log: options.log,
      isRedisUp: options.isRedisUp,
      maxMessageBytes: config.maxMessageBytes,
      maxBatchEvents: config.maxBatchEvents,
      maxBatchBytes: config.maxBatchBytes,
    });
    jobRoutes(v1, options.jobs, auth);
    adminRoutes(v1, auth, options.log, options);
  });
  return app;
}
