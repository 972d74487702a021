/** A worker's own small HTTP server: GET /healthz, GET /readyz and GET /metrics (Prometheus). */
import Fastify, { type FastifyInstance } from "fastify";
import type { Registry } from "prom-client";

export function createWorkerHttp(options: {
  nodeId: string;
  isReady: () => boolean;
  registry: Registry;
}): FastifyInstance {
  const app = Fastify({ logger: false });
  app.get("/healthz", async () => ({ status: "ok", node: options.nodeId }));
  app.get("/readyz", async (_request, reply) => {
    const ready = options.isReady();
    return reply.code(ready ? 200 : 503).send({ ready, node: options.nodeId });
  });
  app.get("/metrics", async (_request, reply) =>
    reply.type(options.registry.contentType).send(await options.registry.metrics()),
  );
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({
      error: {
        code: 4404,
        reason: "not_found",
        message: `no route ${request.method} ${request.url.split("?")[0]} (a worker serves /healthz, /readyz and /metrics)`,
      },
    }),
  );
  return app;
}
