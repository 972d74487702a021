/** The job API: POST /v1/jobs, GET /v1/jobs/stats, GET /v1/jobs/:id, DELETE /v1/jobs/:id. */
import type { FastifyInstance } from "fastify";
import { createJobSchema } from "../contracts/jobs.js";
import { parseOrThrow } from "../contracts/schemas.js";
import type { JobService } from "../jobs/job-service.js";
import { requireScope } from "../auth/access.js";
import { SCOPES } from "../contracts/scopes.js";
import { principalOf, v1RouteOptions, type V1Auth } from "./http-auth.js";

export function jobRoutes(app: FastifyInstance, jobs: JobService, auth: V1Auth): void {
  const route = v1RouteOptions(auth);
  app.post("/v1/jobs", route, async (request, reply) => {
    const principal = principalOf(request);
    requireScope(principal, SCOPES.jobsWrite);
    const body = parseOrThrow(createJobSchema, request.body, "body");
    return reply.code(201).send(await jobs.create(principal, body));
  });
  app.get("/v1/jobs/stats", route, async (request) => {
    const principal = principalOf(request);
    requireScope(principal, SCOPES.jobsRead);
    return jobs.stats(principal);
  });
  app.get<{ Params: { id: string } }>("/v1/jobs/:id", route, async (request) => {
    const principal = principalOf(request);
    requireScope(principal, SCOPES.jobsRead);
    return jobs.get(principal, request.params.id);
  });
  app.delete<{ Params: { id: string } }>("/v1/jobs/:id", route, async (request) => {
    const principal = principalOf(request);
    requireScope(principal, SCOPES.jobsWrite);
    return jobs.cancel(principal, request.params.id);
  });
}
