/**
 * The scopes roomcast itself knows (a token's `scope` claim; namespaces may require others,
 * like `chat:write`): declared once for the gateway, the HTTP API, workers and tests.
 */
export const SCOPES = {
  /** Publish over HTTP (and the batch endpoint): a backend. */
  publish: "publish",
  /** Subscribe to an environment's channels (with the environment in `envs`). */
  envRead: "env:read",
  /** Follow jobs (`job:<id>`), read them and their stats. */
  jobsRead: "jobs:read",
  /** Start and cancel jobs. */
  jobsWrite: "jobs:write",
  /** Cluster stats, disconnecting users, every channel's history; exempt from environment limits. */
  admin: "admin",
} as const;

export type Scope = (typeof SCOPES)[keyof typeof SCOPES];
