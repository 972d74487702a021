/**
 * Publishing and history over HTTP (docs/protocol.md, "HTTP API"):
 * POST /v1/channels/:channel/events, POST /v1/publish (a batch), GET /v1/channels/:channel/history,
 * GET /v1/channels/:channel/presence and /presence/stats (docs/protocol.md, "Presence").
 * Publishing needs scope `publish` and, for channels of an environment or a job, that
 * environment in the token's `envs`.
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { Logger } from "pino";
import type { Principal } from "../auth/token-verifier.js";
import type { ChannelRegistry, ResolvedChannel } from "../channels/channel-registry.js";
import type { ChannelStore, PublishInput } from "../channels/channel-store.js";
import { requirePresence, type PresenceStore } from "../channels/presence.js";
import { failedBecauseRedis } from "../cluster/redis-clients.js";
import { RoomcastError, toErrorBody, type ErrorBody } from "../contracts/error-codes.js";
import { httpBatchEventSchema, httpHistoryQuerySchema, httpPublishSchema, parseOrThrow } from "../contracts/schemas.js";
import { isAdmin, requireScope } from "../auth/access.js";
import { SCOPES } from "../contracts/scopes.js";
import { principalOf, v1RouteOptions, type V1Auth } from "./http-auth.js";

const DEFAULT_HISTORY_LIMIT = 100;

/** What the channel routes need from a gateway. */
export interface ChannelApi {
  registry: ChannelRegistry;
  store: ChannelStore;
  presence: PresenceStore;
  presenceMaxMembers: number;
  auth: V1Auth;
  log: Logger;
  isRedisUp: () => boolean;
  maxMessageBytes: number;
  maxBatchEvents: number;
  maxBatchBytes: number;
}

type BatchResult = { offset: number; epoch: string; id: string } | { error: ErrorBody };

/** The channel a backend may publish to (scope checked by the caller), or why not. */
async function publishTarget(api: ChannelApi, principal: Principal, channel: unknown): Promise<ResolvedChannel> {
  const target = api.registry.resolve(channel);
  await api.registry.authorizeBackendPublish(principal, target);
  return target;
}

/** The batch body: `{ events: [...] }` with 1 to maxBatchEvents entries, each checked on its own later. */
function batchEvents(body: unknown, max: number): unknown[] {
  const events = (body as { events?: unknown } | null)?.events;
  if (
    typeof body !== "object" ||
    body === null ||
    Array.isArray(body) ||
    !Array.isArray(events) ||
    Object.keys(body).length !== 1
  ) {
    throw new RoomcastError(
      "bad_request",
      "body: must be { events: [{ channel, type, data, priority?, idempotencyKey? }, ...] }",
      { field: "events" },
    );
  }
  if (events.length === 0 || events.length > max)
    throw new RoomcastError("bad_request", `events: 1 to ${max} events per batch`, { field: "events", limit: max });
  return events;
}

export function channelRoutes(app: FastifyInstance, api: ChannelApi): void {
  const route = v1RouteOptions(api.auth);

  app.post<{ Params: { channel: string } }>("/v1/channels/:channel/events", route, async (request, reply) => {
    const principal = principalOf(request);
    requireScope(principal, SCOPES.publish);
    const target = await publishTarget(api, principal, request.params.channel);
    const body = parseOrThrow(httpPublishSchema, request.body, "body");
    const result = await api.store.publish(target, body);
    if (result.duplicate)
      api.log.debug({ channel: target.channel, idempotencyKey: body.idempotencyKey }, "idempotent repeat");
    return reply.code(202).send({ offset: result.offset, epoch: result.epoch, id: result.id });
  });

  app.post("/v1/publish", { ...route, bodyLimit: api.maxBatchBytes }, async (request, reply) => {
    const principal = principalOf(request);
    requireScope(principal, SCOPES.publish);
    const events = batchEvents(request.body, api.maxBatchEvents);
    const results: BatchResult[] = new Array<BatchResult>(events.length);
    // Each channel's events, in the batch's order; channels are checked once and published side by side.
    const groups = new Map<string, { target: Promise<ResolvedChannel>; at: number[]; inputs: PublishInput[] }>();
    events.forEach((raw, i) => {
      try {
        const event = parseOrThrow(httpBatchEventSchema, raw, "event", `events.${i}`);
        const size = Buffer.byteLength(JSON.stringify(raw));
        if (api.maxMessageBytes > 0 && size > api.maxMessageBytes) {
          throw new RoomcastError("too_large", `event of ${size} bytes is over the limit of ${api.maxMessageBytes}`, {
            limit: api.maxMessageBytes,
          });
        }
        let group = groups.get(event.channel);
        if (!group)
          groups.set(
            event.channel,
            (group = { target: publishTarget(api, principal, event.channel), at: [], inputs: [] }),
          );
        const { channel: _channel, ...input } = event;
        group.at.push(i);
        group.inputs.push(input);
      } catch (err) {
        results[i] = { error: toErrorBody(err) };
      }
    });
    const failed = (err: unknown): ErrorBody =>
      failedBecauseRedis(err, api.isRedisUp()) ? new RoomcastError("unavailable").toBody() : toErrorBody(err);
    await Promise.all(
      [...groups.values()].map(async ({ target, at, inputs }) => {
        let published;
        try {
          published = await api.store.publishMany(await target, inputs);
        } catch (err) {
          for (const i of at) results[i] = { error: failed(err) };
          return;
        }
        published.results.forEach((r, k) => (results[at[k]!] = { offset: r.offset, epoch: r.epoch, id: r.id }));
        if (published.error === undefined) return;
        api.log.warn(
          { err: (published.error as Error).message, channel: (await target).channel },
          "batch publish stopped on a channel",
        );
        for (const i of at.slice(published.results.length)) results[i] = { error: failed(published.error) };
      }),
    );
    // Nothing could be published because Redis is away: the whole request is unavailable.
    if (results.every((r) => "error" in r && r.error.reason === "unavailable"))
      throw new RoomcastError("unavailable", "Redis is unavailable; retry");
    return reply.code(202).send({ results });
  });

  /** A channel the caller may read (history, presence): the grants of subscribe; an admin reads any. */
  const readable = async (request: FastifyRequest<{ Params: { channel: string } }>): Promise<ResolvedChannel> => {
    const principal = principalOf(request);
    const target = api.registry.resolve(request.params.channel);
    if (!isAdmin(principal)) await api.registry.authorize(principal, target, "subscribe");
    return target;
  };

  app.get<{ Params: { channel: string } }>("/v1/channels/:channel/history", route, async (request) => {
    const target = await readable(request);
    const query = parseOrThrow(httpHistoryQuerySchema, request.query, "query");
    const limit = Math.min(query.limit ?? DEFAULT_HISTORY_LIMIT, Math.max(target.historySize, 1));
    const read = await api.store.read(
      target,
      query.since === undefined ? { last: limit } : { since: query.since, limit },
    );
    return { offset: read.top, epoch: read.epoch, events: read.events };
  });

  /** Presence: a namespace without it is 4400 before any grant is looked at (it is configuration, not a secret). */
  const withPresence = async (request: FastifyRequest<{ Params: { channel: string } }>): Promise<ResolvedChannel> => {
    requirePresence(api.registry.resolve(request.params.channel));
    return readable(request);
  };

  app.get<{ Params: { channel: string } }>("/v1/channels/:channel/presence", route, async (request) => {
    const { channel } = await withPresence(request);
    return api.presence.presence(channel, api.presenceMaxMembers);
  });

  app.get<{ Params: { channel: string } }>("/v1/channels/:channel/presence/stats", route, async (request) => {
    const { channel } = await withPresence(request);
    return api.presence.stats(channel);
  });
}
