/**
 * The live console (ROOMCAST_CONSOLE, on under `roomcast start`): a small page at `/` for
 * starting sample jobs and watching their progress and log tail, and environment status.
 * It is static: the page, its script and style from console/, the client SDK from
 * dist/client/ (its `socket.io-client` import pointed at the browser build that package
 * ships), all from this origin. The token stays in the browser; the page holds no secret.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { FastifyInstance, FastifyReply } from "fastify";
import { RoomcastError } from "../contracts/error-codes.js";

const require = createRequire(import.meta.url);
const CONSOLE_DIR = fileURLToPath(new URL("../../console/", import.meta.url));
const SDK_DIR = fileURLToPath(new URL("../client/", import.meta.url));
// The package exports only ./package.json and dist/socket.io.js by name: find its dist/ from there.
const SOCKET_IO_BROWSER = join(
  dirname(require.resolve("socket.io-client/package.json")),
  "dist",
  "socket.io.esm.min.js",
);
const VENDOR_PATH = "/console/vendor/socket.io.esm.min.js";

const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

const PAGES: Record<string, { file: string; type: string }> = {
  "/": { file: `${CONSOLE_DIR}index.html`, type: "text/html; charset=utf-8" },
  "/console/console.js": { file: `${CONSOLE_DIR}console.js`, type: "text/javascript; charset=utf-8" },
  "/console/console.css": { file: `${CONSOLE_DIR}console.css`, type: "text/css; charset=utf-8" },
  [VENDOR_PATH]: { file: SOCKET_IO_BROWSER, type: "text/javascript; charset=utf-8" },
};
/** The SDK's modules, by file name. */
const SDK_FILES = new Set(["roomcast-client.js", "backoff.js"]);

function send(reply: FastifyReply, type: string, body: string): FastifyReply {
  return reply
    .type(type)
    .header("content-security-policy", CONTENT_SECURITY_POLICY)
    .header("cache-control", "no-cache")
    .send(body);
}

export function consoleRoutes(app: FastifyInstance): void {
  // Read once: the files do not change while the gateway runs.
  const cache = new Map<string, string>();
  const read = (file: string, transform: (text: string) => string = (t) => t) => {
    let text = cache.get(file);
    if (text === undefined) cache.set(file, (text = transform(readFileSync(file, "utf8"))));
    return text;
  };
  for (const [path, { file, type }] of Object.entries(PAGES)) {
    app.get(path, async (_request, reply) => send(reply, type, read(file)));
  }
  app.get<{ Params: { file: string } }>("/console/sdk/:file", async (request, reply) => {
    const name = request.params.file;
    if (!SDK_FILES.has(name)) throw new RoomcastError("not_found", `no console file ${name}`);
    const text = read(`${SDK_DIR}${name}`, (source) =>
      source.replace(/from "socket\.io-client"/g, `from "${VENDOR_PATH}"`).replace(/\n\/\/# sourceMappingURL=.*$/m, ""),
    );
    return send(reply, "text/javascript; charset=utf-8", text);
  });
}
