/**
 * The Socket.IO admin UI (@socket.io/admin-ui), on only when ROOMCAST_ADMIN_USER and
 * ROOMCAST_ADMIN_PASSWORD_HASH are set:
 *
 * - its server side on the Socket.IO namespace "/admin" (same path /socket.io/ as clients):
 *   the login (user and password against the bcrypt hash, or a session id kept in Redis so
 *   that a reconnect may land on any replica) is ours, admin-login.ts, and the package's own
 *   is off; `production` mode (aggregated stats only: no socket list, no event payloads, no
 *   headers or tokens shown), read-only unless ROOMCAST_ADMIN_READONLY=false, each replica
 *   reporting as its ROOMCAST_NODE_ID. The roomcast JWT handshake is installed on namespace
 *   "/" only, so it does not apply here.
 * - its page at /admin/, served by this gateway from the package's ui/dist, with the
 *   third-party stylesheets (Google Fonts, jsDelivr) replaced by copies from npm packages
 *   (@fontsource/roboto, @mdi/font), and the login form's server URL defaulting to the
 *   page's own origin: a user opening http://host:port/admin/ types only the user and
 *   password.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import fastifyStatic from "@fastify/static";
import { instrument } from "@socket.io/admin-ui";
import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";
import type { Server } from "socket.io";
import type { RedisClient } from "../cluster/redis-clients.js";
import type { Config } from "../config/load-config.js";
import { adminLogin } from "./admin-login.js";
import type { RoomcastServer } from "./types.js";

export { ADMIN_LOGINS_PER_MINUTE, ADMIN_SESSION_TTL_S } from "./admin-login.js";

export const ADMIN_NAMESPACE = "/admin";
export const ADMIN_PAGE = "/admin/";
const require = createRequire(import.meta.url);
const packageDir = (specifier: string) => dirname(require.resolve(specifier));

/** Third-party stylesheets of the UI's index.html and the local copies that replace them. */
const LOCAL_STYLESHEETS: [RegExp, string[]][] = [
  [
    /^https:\/\/fonts\.googleapis\.com\/css\?family=Roboto\b/,
    ["300", "400", "500", "700"].map((w) => `vendor/roboto/${w}.css`),
  ],
  [/^https:\/\/cdn\.jsdelivr\.net\/npm\/@mdi\/font@/, ["vendor/mdi/css/materialdesignicons.min.css"]],
];

/** Only the page's own origin, plus inline styles (Vuetify sets them). */
const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

export function adminUiEnabled(config: Config): boolean {
  return config.adminUser !== undefined && config.adminPasswordHash !== undefined;
}

/** Whether the admin UI takes commands that address one socket by its id (its own-id room). */
export function adminUiAddressesSockets(config: Config): boolean {
  return adminUiEnabled(config) && !config.adminReadonly;
}

/** index.html with local stylesheets instead of third-party ones. */
function localStylesheets(html: string, log: Logger): string {
  return html.replace(/<link\b[^>]*\bhref="(https?:\/\/[^"]+)"[^>]*>/g, (_tag, href: string) => {
    const local = LOCAL_STYLESHEETS.find(([pattern]) => pattern.test(href));
    if (!local) log.warn({ href }, "admin UI: dropped a third-party resource from index.html");
    return (local?.[1] ?? []).map((path) => `<link rel="stylesheet" href="${path}">`).join("");
  });
}

/**
 * The app bundle with the login form's server URL defaulting to this page's origin. The UI
 * keeps its settings in localStorage (server_url, path, namespace, session_id); with none
 * saved its form starts empty. Only the form's default changes: nothing connects by itself.
 */
function presetServerUrl(uiDir: string, html: string, log: Logger): { file: string; source: string } | undefined {
  const file = [...html.matchAll(/<script src="js\/(app\.[0-9a-f]+\.js)"/g)][0]?.[1];
  const source = file ? readFileSync(join(uiDir, "js", file), "utf8") : "";
  const original = "serverUrl:this.initialServerUrl,";
  if (!file || source.split(original).length !== 2) {
    log.warn(
      "admin UI: cannot preset the server URL in this version of @socket.io/admin-ui; users type this gateway's URL in the login form",
    );
    return undefined;
  }
  return { file, source: source.replace(original, "serverUrl:this.initialServerUrl||window.location.origin,") };
}

export interface AdminUiOptions {
  config: Config;
  redis: RedisClient;
  log: Logger;
}

/**
 * Installs the admin namespace and registers the /admin/ routes. Call after io.attach() and
 * before app.ready().
 */
export function installAdminUi(io: RoomcastServer, app: FastifyInstance, { config, redis, log }: AdminUiOptions): void {
  if (!adminUiEnabled(config)) return;
  // The package's protocol, not roomcast's events: an untyped namespace.
  const server = io as unknown as Server;
  const admin = server.of(ADMIN_NAMESPACE);
  admin.use(
    adminLogin({
      user: config.adminUser!,
      passwordHash: config.adminPasswordHash!,
      redis,
      redisPrefix: config.redisPrefix,
      trustProxy: config.trustProxy,
      log,
    }),
  );
  instrument(server, {
    namespaceName: ADMIN_NAMESPACE,
    // Ours above: the package's login crashed on a non-string password and answered a wrong user faster.
    auth: false,
    readonly: config.adminReadonly,
    // "development" would wrap socket.data in proxies (our sessions hold Maps) and send every
    // socket's headers, tokens included, and every event payload to the UI.
    mode: "production",
    serverId: config.nodeId,
  });
  admin.on("connection", (socket) =>
    log.info({ ip: socket.handshake.address, readonly: config.adminReadonly }, "admin UI connected"),
  );

  const uiDir = join(packageDir("@socket.io/admin-ui/package.json"), "ui", "dist");
  const html = readFileSync(join(uiDir, "index.html"), "utf8");
  const indexHtml = localStylesheets(html, log);
  const bundle = presetServerUrl(uiDir, html, log);
  void app.register(async (scope) => {
    scope.addHook("onSend", async (_request, reply, payload) => {
      if (String(reply.getHeader("content-type") ?? "").startsWith("text/html"))
        reply.header("content-security-policy", CONTENT_SECURITY_POLICY);
      return payload;
    });
    scope.get("/admin", (_request, reply) => reply.redirect(ADMIN_PAGE));
    scope.get(ADMIN_PAGE, (_request, reply) =>
      reply.type("text/html; charset=utf-8").header("cache-control", "no-cache").send(indexHtml),
    );
    if (bundle) {
      scope.get(`${ADMIN_PAGE}js/${bundle.file}`, (_request, reply) =>
        reply
          .type("application/javascript; charset=utf-8")
          .header("cache-control", "public, max-age=3600")
          .send(bundle.source),
      );
    }
    await scope.register(fastifyStatic, {
      root: uiDir,
      prefix: ADMIN_PAGE,
      index: false,
      wildcard: true,
      decorateReply: false,
    });
    await scope.register(fastifyStatic, {
      root: packageDir("@mdi/font/package.json"),
      prefix: `${ADMIN_PAGE}vendor/mdi/`,
      allowedPath: (path) => /^\/(css\/[\w.-]+\.css|fonts\/[\w.-]+)$/.test(path),
      decorateReply: false,
    });
    await scope.register(fastifyStatic, {
      root: packageDir("@fontsource/roboto/400.css"),
      prefix: `${ADMIN_PAGE}vendor/roboto/`,
      allowedPath: (path) => /^\/(\d00\.css|files\/roboto-[\w-]+\.woff2?)$/.test(path),
      decorateReply: false,
    });
  });
  log.info({ page: ADMIN_PAGE, namespace: ADMIN_NAMESPACE, readonly: config.adminReadonly }, "admin UI on");
}
