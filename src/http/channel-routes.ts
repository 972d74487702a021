/** POST /v1/channels/:channel/events and GET /v1/channels/:channel/history. */
import type { FastifyInstance } from "fastify";
import { httpHistoryQuerySchema, httpPublishSchema, parseOrThrow } from "../contracts/schemas.js";
import type { GatewayContext } from "../gateway/context.js";
import { principalOf, requireScope, v1RouteOptions } from "./http-auth.js";

const DEFAULT_HISTORY_LIMIT = 100;

export function channelRoutes(app: FastifyInstance, ctx: GatewayContext): void {
  const route = v1RouteOptions(ctx.verifyToken, ctx.config.httpRateLimit);
  app.post<{ Params: { channel: string } }>("/v1/channels/:channel/events", route, async (request, reply) => {
    const principal = principalOf(request);
    requireScope(principal, "publish");
    const target = ctx.registry.resolve(request.params.channel);
    const body = parseOrThrow(httpPublishSchema, request.body, "body");
    const result = await ctx.store.publish(target, body);
    if (result.duplicate) ctx.log.debug({ channel: target.channel, idempotencyKey: body.idempotencyKey }, "idempotent repeat");
    return reply.code(202).send({ offset: result.offset, epoch: result.epoch, id: result.id });
  });

  app.get<{ Params: { channel: string } }>("/v1/channels/:channel/history", route, async (request) => {
    const principal = principalOf(request);
    const target = ctx.registry.resolve(request.params.channel);
    if (!principal.scopes.has("admin")) await ctx.registry.authorize(principal, target, "subscribe");
    const query = parseOrThrow(httpHistoryQuerySchema, request.query, "query");
    const limit = Math.min(query.limit ?? DEFAULT_HISTORY_LIMIT, Math.max(target.historySize, 1));
    const read = await ctx.store.read(target, query.since === undefined ? { last: limit } : { since: query.since, limit });
    return { offset: read.top, epoch: read.epoch, events: read.events };
  });
}
