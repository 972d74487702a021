/**
 * The admin UI's login on namespace "/admin", done here instead of by @socket.io/admin-ui
 * (its middleware crashed the process on a non-string password, told a wrong user from the
 * right one by its answer time, ran bcrypt on the event loop and let bogus session ids
 * through uncounted). Same protocol as the package, which the UI speaks:
 *
 * - CONNECT auth `{ sessionId }`: a session id from an earlier login, kept in Redis
 *   (ADMIN_SESSION_TTL_S), so any replica takes it. A session that exists is the only
 *   attempt that is not counted.
 * - CONNECT auth `{ username, password }`: on success the server emits `session` with a new
 *   session id, then accepts; a refusal is the error `invalid credentials`.
 *
 * Every other attempt counts toward ADMIN_LOGINS_PER_MINUTE per client IP, cluster-wide
 * (admin-login-limit.ts). A counted password attempt runs exactly one bcrypt compare, in a
 * worker thread (bcrypt-worker.ts): against the configured hash for the right user, against
 * a dummy hash of the same cost for any other, so that both answer after the same time.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import bcrypt from "bcryptjs";
import type { Logger } from "pino";
import type { RedisClient } from "../cluster/redis-clients.js";
import { AdminLoginLimit } from "./admin-login-limit.js";
import { BcryptBusyError, BcryptWorker } from "./bcrypt-worker.js";
import { clientAddress } from "./client-address.js";

/** How long a login lasts: the UI reconnects with its session id instead of the password. */
export const ADMIN_SESSION_TTL_S = 8 * 3600;
/** Login attempts (anything but an existing session) per client IP and minute, cluster-wide. */
export const ADMIN_LOGINS_PER_MINUTE = 10;
/** Password checks queued or running per replica; more are refused with ADMIN_LOGIN_BUSY. */
export const ADMIN_LOGIN_QUEUE = 4;

/** The answer the UI knows ("Invalid credentials" in its login form). */
export const INVALID_CREDENTIALS = "invalid credentials";
export const TOO_MANY_LOGINS = "too many login attempts; retry in a minute";
/** Too many password checks at once on this replica (not this client's fault). */
export const ADMIN_LOGIN_BUSY = "too many login attempts in progress; retry in a moment";

const MAX_CREDENTIAL_LENGTH = 1024;
/** The package's session ids are 16 hex digits; anything far longer is not worth a lookup. */
const MAX_SESSION_ID_LENGTH = 128;
/** One "busy" warning this often at most (a burst would log one per refused login). */
const BUSY_WARN_EVERY_MS = 10_000;

export interface AdminLoginOptions {
  user: string;
  passwordHash: string;
  redis: RedisClient;
  redisPrefix: string;
  trustProxy: number;
  log: Logger;
}

/** What the middleware reads and calls of a connecting socket. */
export interface AdminHandshakeSocket {
  handshake: { auth: unknown; address: string; headers: Record<string, string | string[] | undefined> };
  emit(event: "session", sessionId: string): unknown;
}

const isCredential = (value: unknown): value is string =>
  typeof value === "string" && value.length > 0 && value.length <= MAX_CREDENTIAL_LENGTH;
const isSessionId = (value: unknown): value is string =>
  typeof value === "string" && value.length > 0 && value.length <= MAX_SESSION_ID_LENGTH;
const digest = (value: string) => createHash("sha256").update(value, "utf8").digest();

/** The admin UI's login sessions, shared by the replicas. */
function redisSessions(redis: RedisClient, prefix: string, log: Logger) {
  const key = (sessionId: string) => `${prefix}:admin-ui:session:${sessionId}`;
  return {
    async exists(sessionId: string): Promise<boolean> {
      try {
        return (await redis.exists(key(sessionId))) === 1;
      } catch (err) {
        log.warn({ err: (err as Error).message }, "admin UI session check failed");
        return false;
      }
    },
    async create(): Promise<string> {
      // The package's format (8 random bytes in hex), which the UI keeps in localStorage.
      const sessionId = randomBytes(8).toString("hex");
      try {
        await redis.set(key(sessionId), "1", "EX", ADMIN_SESSION_TTL_S);
      } catch (err) {
        // The login stands; only a reconnect with this id will ask for the password again.
        log.warn({ err: (err as Error).message }, "admin UI session not saved");
      }
      return sessionId;
    },
  };
}

/** The Socket.IO middleware for namespace "/admin". */
export function adminLogin({ user, passwordHash, redis, redisPrefix, trustProxy, log }: AdminLoginOptions) {
  const sessions = redisSessions(redis, redisPrefix, log);
  const limit = new AdminLoginLimit(redis, redisPrefix, log);
  const bcryptWorker = new BcryptWorker(ADMIN_LOGIN_QUEUE, log);
  const userDigest = digest(user);
  // Same cost as the real hash, so that a wrong user costs the same compare as the right one.
  const dummyHash = bcrypt.hashSync(randomBytes(24).toString("base64"), bcrypt.getRounds(passwordHash));
  let busyWarnedAt = 0;

  async function authenticate(socket: AdminHandshakeSocket): Promise<Error | undefined> {
    const { handshake } = socket;
    const auth = (typeof handshake.auth === "object" && handshake.auth !== null ? handshake.auth : {}) as Record<
      string,
      unknown
    >;
    const { sessionId, username, password } = auth;
    if (isSessionId(sessionId) && (await sessions.exists(sessionId))) return undefined;

    const ip = clientAddress(handshake.address, handshake.headers["x-forwarded-for"], trustProxy);
    const attempts = await limit.hit(ip);
    if (attempts > ADMIN_LOGINS_PER_MINUTE) {
      // Once per window and IP, not once per refused guess.
      if (attempts === ADMIN_LOGINS_PER_MINUTE + 1)
        log.warn({ ip }, "admin UI logins refused for a minute: too many attempts");
      return new Error(TOO_MANY_LOGINS);
    }
    if (!isCredential(username) || !isCredential(password)) return new Error(INVALID_CREDENTIALS);

    const rightUser = timingSafeEqual(digest(username), userDigest);
    let match: boolean;
    try {
      match = await bcryptWorker.compare(password, rightUser ? passwordHash : dummyHash);
    } catch (err) {
      if (err instanceof BcryptBusyError) {
        if (Date.now() - busyWarnedAt >= BUSY_WARN_EVERY_MS) {
          busyWarnedAt = Date.now();
          log.warn(
            { ip, queued: bcryptWorker.maxPending },
            "admin UI logins refused: too many password checks at once",
          );
        }
        return new Error(ADMIN_LOGIN_BUSY);
      }
      return new Error(INVALID_CREDENTIALS);
    }
    if (!(match && rightUser)) return new Error(INVALID_CREDENTIALS);
    socket.emit("session", await sessions.create());
    return undefined;
  }

  return (socket: AdminHandshakeSocket, next: (err?: Error) => void): void => {
    authenticate(socket).then(next, (err: unknown) => {
      // Nothing above should throw; if it does, a refusal, never an unhandled rejection.
      log.error({ err: (err as Error).message }, "admin UI login failed");
      next(new Error(INVALID_CREDENTIALS));
    });
  };
}
