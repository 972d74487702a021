/**
 * Shared helpers of the roomcast k6 scripts: a Socket.IO client over k6/websockets that
 * speaks the Engine.IO v4 / Socket.IO v5 framing itself (no socket.io-client in k6), HS256
 * tokens minted inside k6 (one `sub` per VU), the per-channel offset bookkeeping of
 * docs/protocol.md, and the HTTP API (publish, jobs) over k6/http.
 *
 * The framing (default JSON parser, namespace `/`, WebSocket transport only):
 *   server  0{"sid","pingInterval","pingTimeout","maxPayload"}   Engine.IO open
 *   client  40{"token":"..."}                                    CONNECT with the auth payload
 *   server  40{"sid":"..."}  or  44{"message","data":{code,reason,...}}   connected / refused
 *   server  42["welcome",{...}]                                  an event
 *   client  421["subscribe",{...}]  server  431[{...}]           a request with ack id 1, its answer
 *   server  2  client  3                                         ping, pong
 *   client  41                                                   DISCONNECT
 */
import http from "k6/http";
import { hmac } from "k6/crypto";
import { b64decode, b64encode } from "k6/encoding";
import { clearTimeout, setTimeout } from "k6/timers";
import { WebSocket } from "k6/websockets";

/**
 * @typedef {{ code: number, reason: string, message?: string, [key: string]: unknown }} ErrorBody
 * @typedef {{ channel: string, offset: number, epoch: string, id: string, type: string, ts: number, priority?: string, data: any }} ChannelEvent
 * @typedef {{ ok: true, channel: string, offset: number, epoch: string, recovered: boolean, events: ChannelEvent[], snapshot?: any }} SubscribeOk
 * @typedef {{ ok: false, error: ErrorBody }} RequestFailed
 * @typedef {SubscribeOk | RequestFailed} SubscribeAnswer
 * @typedef {{ sessionId: string, node: string, serverTime: number, limits?: Record<string, unknown> }} Welcome
 * @typedef {{ channel: string, since?: { offset: number, epoch: string }, history?: number, filter?: Record<string, unknown> }} SubscribeRequest
 * @typedef {{ status: number, body: any, durationMs: number }} HttpAnswer
 */

// ---------------------------------------------------------------------------------------------
// Settings from __ENV
// ---------------------------------------------------------------------------------------------

/**
 * A number from __ENV, or the default.
 * @param {string} name
 * @param {number} fallback
 * @returns {number}
 */
export function envNumber(name, fallback) {
  const raw = __ENV[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n)) throw new Error(`${name} must be a number, not ${JSON.stringify(raw)}`);
  return n;
}

/**
 * @param {string} name
 * @param {string} fallback
 * @returns {string}
 */
export function envString(name, fallback) {
  const raw = __ENV[name];
  return raw === undefined || raw === "" ? fallback : raw;
}

/**
 * The gateways: BASE_URL, or several comma-separated (port-forwards of single replicas, for
 * example); VUs spread over them.
 */
export const BASE_URLS = envString("BASE_URL", "http://localhost:3000")
  .split(",")
  .map((u) => u.trim().replace(/\/+$/, ""))
  .filter((u) => u !== "");

/**
 * The gateway for the n-th VU (or connection).
 * @param {number} n
 * @returns {string}
 */
export function baseUrl(n) {
  return BASE_URLS[Math.abs(Math.floor(n)) % BASE_URLS.length] ?? "http://localhost:3000";
}

/**
 * @param {string} base
 * @returns {string}
 */
export function socketUrl(base) {
  return `${base.replace(/^http/, "ws")}/socket.io/?EIO=4&transport=websocket`;
}

/** How long a request (subscribe...) may wait for its ack, ms. */
export const REQUEST_TIMEOUT_MS = envNumber("REQUEST_TIMEOUT_MS", 10000);

/**
 * A run id that keeps the `sub`s (and channels) of two runs, or of two load generators,
 * apart: RUN_ID, or a random one (made in setup() and passed to the VUs).
 * @returns {string}
 */
export function newRunId() {
  return envString("RUN_ID", `lt${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`);
}

// ---------------------------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------------------------

const SECRET = envString("JWT_SECRET", envString("ROOMCAST_JWT_SECRET", ""));
const TOKEN = envString("TOKEN", "");

/**
 * An HS256 JWT, as `roomcast token` mints it.
 * @param {string} secret
 * @param {{ sub: string, scope?: string, envs?: string[], ttlS?: number }} claims
 * @returns {string}
 */
export function mintToken(secret, claims) {
  const now = Math.floor(Date.now() / 1000);
  /** @type {Record<string, unknown>} */
  const payload = { sub: claims.sub, iat: now, exp: now + (claims.ttlS ?? 3600) };
  if (claims.scope) payload.scope = claims.scope;
  if (claims.envs) payload.envs = claims.envs;
  const head = b64encode(JSON.stringify({ alg: "HS256", typ: "JWT" }), "rawurl");
  const body = b64encode(JSON.stringify(payload), "rawurl");
  const signature = hmac("sha256", secret, `${head}.${body}`, "base64rawurl");
  return `${head}.${body}.${signature}`;
}

/**
 * The `sub` claim of a token (not verified).
 * @param {string} token
 * @returns {string}
 */
export function tokenSub(token) {
  const part = token.split(".")[1] ?? "";
  const claims = JSON.parse(b64decode(part, "rawurl", "s"));
  return String(claims.sub);
}

/**
 * Credentials for one VU: a token minted for `sub` with JWT_SECRET (the gateways'
 * ROOMCAST_JWT_SECRET), or else the ready TOKEN from __ENV (then every VU is that token's
 * user, and the per-user connection limit applies to all of them together).
 * @param {string} sub
 * @param {{ scope?: string, envs?: string[], ttlS?: number }} [claims]
 * @returns {{ sub: string, token: string }}
 */
export function credentials(sub, claims = {}) {
  if (SECRET) return { sub, token: mintToken(SECRET, { sub, ...claims }) };
  if (TOKEN) return { sub: tokenSub(TOKEN), token: TOKEN };
  throw new Error(
    "set JWT_SECRET (the gateways' ROOMCAST_JWT_SECRET) to mint a token per VU, or TOKEN to use one ready token",
  );
}

// ---------------------------------------------------------------------------------------------
// The Socket.IO client
// ---------------------------------------------------------------------------------------------

/** A refused handshake (`44`) or a failed request: carries the server's code and reason. */
export class SocketIoError extends Error {
  /**
   * @param {string} message
   * @param {Partial<ErrorBody>} [data]
   */
  constructor(message, data = {}) {
    super(message);
    this.name = "SocketIoError";
    /** @type {number} */
    this.code = typeof data.code === "number" ? data.code : 0;
    /** @type {string} */
    this.reason = typeof data.reason === "string" ? data.reason : "";
    this.data = data;
  }
}

/**
 * One Socket.IO connection over k6/websockets. It connects at once; `ready` resolves with
 * the `welcome` payload, or rejects with a SocketIoError (code 44xx/45xx from the server's
 * refusal, 0 for a transport failure or a timeout).
 *
 *   const client = new SocketIoClient(baseUrl(__VU), { token });
 *   const welcome = await client.ready;
 *   client.on("event", (e) => ...);
 *   const answer = await client.request("subscribe", { channel });
 *   client.close();
 */
export class SocketIoClient {
  /**
   * @param {string} base the gateway's http(s) URL
   * @param {{ token: string, requestTimeoutMs?: number, connectTimeoutMs?: number, tags?: Record<string, string> }} options
   */
  constructor(base, options) {
    this.base = base;
    this.token = options.token;
    this.requestTimeoutMs = options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
    /** @type {Map<string, Array<(payload: any) => void>>} */
    this.listeners = new Map();
    /** @type {Map<number, { event: string, resolve: (value: any) => void, reject: (err: Error) => void, timer: number }>} */
    this.pending = new Map();
    this.nextAckId = 1;
    this.connected = false;
    this.closed = false;
    this.sid = "";
    /** @type {Welcome | null} */
    this.welcome = null;
    /** Why the connection ended, once it did. */
    this.closeReason = "";
    this.startedAt = Date.now();

    /** @type {(welcome: Welcome) => void} */
    let resolveReady = () => {};
    /** @type {(err: Error) => void} */
    let rejectReady = () => {};
    /** @type {Promise<Welcome>} */
    this.ready = new Promise((resolve, reject) => {
      resolveReady = resolve;
      rejectReady = reject;
    });
    // Handled here, so that a script that never awaits it does not fail on an unhandled rejection.
    this.ready.catch(() => {});
    this.resolveReady = resolveReady;
    this.rejectReady = rejectReady;
    /** @type {() => void} */
    let resolveDone = () => {};
    /** Resolves once the socket is closed. */
    this.done = new Promise((resolve) => {
      resolveDone = () => resolve(undefined);
    });
    this.resolveDone = resolveDone;

    const connectTimeoutMs = options.connectTimeoutMs ?? this.requestTimeoutMs;
    this.connectTimer = setTimeout(() => {
      if (!this.welcome) this.fail(new SocketIoError(`no welcome within ${connectTimeoutMs} ms`));
    }, connectTimeoutMs);

    this.ws = new WebSocket(socketUrl(base), null, { tags: options.tags ?? {} });
    this.ws.onmessage = (event) => {
      if (event && typeof event.data === "string") this.onFrame(event.data);
    };
    this.ws.onerror = (event) => {
      this.closeReason = `transport error: ${event ? event.error : "unknown"}`;
    };
    this.ws.onclose = () => this.onClosed();
  }

  /**
   * Listens to a server event (`welcome`, `event`, `closing`, `unsubscribed`, `lag`,
   * `failure`...) or to `disconnect` (the connection ended; payload: the reason).
   * @param {string} event
   * @param {(payload: any) => void} fn
   * @returns {this}
   */
  on(event, fn) {
    const list = this.listeners.get(event) ?? [];
    list.push(fn);
    this.listeners.set(event, list);
    return this;
  }

  /**
   * @param {string} event
   * @param {(payload: any) => void} fn
   */
  off(event, fn) {
    this.listeners.set(
      event,
      (this.listeners.get(event) ?? []).filter((f) => f !== fn),
    );
  }

  /**
   * An event without an ack (an error comes back as a `failure` event).
   * @param {string} event
   * @param {unknown} payload
   */
  emit(event, payload) {
    this.send(`42${JSON.stringify([event, payload])}`);
  }

  /**
   * A request with an ack: resolves with the answer (`{ ok: true, ... }` or
   * `{ ok: false, error }`); rejects when no answer came within the timeout or the
   * connection ended first.
   * @param {string} event
   * @param {unknown} payload
   * @param {number} [timeoutMs]
   * @returns {Promise<any>}
   */
  request(event, payload, timeoutMs = this.requestTimeoutMs) {
    if (this.closed || !this.connected) return Promise.reject(new SocketIoError(`${event}: not connected`));
    const id = this.nextAckId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new SocketIoError(`${event}: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { event, resolve, reject, timer });
      this.send(`42${id}${JSON.stringify([event, payload])}`);
    });
  }

  /** Leaves cleanly: a Socket.IO DISCONNECT, then the WebSocket close. */
  close() {
    if (this.closed) return;
    if (this.connected) this.send("41");
    this.closeReason = this.closeReason || "client close";
    this.ws.close();
  }

  /** Drops the connection without a DISCONNECT packet, as a lost network would. */
  drop() {
    if (this.closed) return;
    this.closeReason = "client drop";
    this.ws.close();
  }

  /** @param {string} text */
  send(text) {
    if (!this.closed && this.ws.readyState === 1) this.ws.send(text);
  }

  /**
   * One Engine.IO packet (WebSocket frames carry one each).
   * @param {string} text
   */
  onFrame(text) {
    switch (text[0]) {
      case "0": {
        const open = JSON.parse(text.slice(1));
        this.sid = String(open.sid);
        this.send(`40${JSON.stringify({ token: this.token })}`);
        return;
      }
      case "2":
        this.send(`3${text.slice(1)}`);
        return;
      case "1":
        this.closeReason = "engine.io close";
        this.ws.close();
        return;
      case "4":
        this.onPacket(text.slice(1));
        return;
      default:
        // 3 (pong), 6 (noop): nothing to do
        return;
    }
  }

  /**
   * One Socket.IO packet: type, optional namespace, optional ack id, JSON payload.
   * @param {string} packet
   */
  onPacket(packet) {
    const type = packet[0];
    let i = 1;
    if (packet[i] === "/") {
      const comma = packet.indexOf(",", i);
      i = comma === -1 ? packet.length : comma + 1;
    }
    let id = "";
    while (i < packet.length && packet.charCodeAt(i) >= 48 && packet.charCodeAt(i) <= 57) id += packet[i++];
    const body = i < packet.length ? JSON.parse(packet.slice(i)) : undefined;
    switch (type) {
      case "0":
        this.connected = true;
        this.dispatch("connect", body);
        return;
      case "4": {
        const data = body && typeof body.data === "object" && body.data !== null ? body.data : {};
        this.fail(new SocketIoError(String(body?.message ?? "connect_error"), data));
        return;
      }
      case "2": {
        if (!Array.isArray(body) || typeof body[0] !== "string") return;
        const [name, payload] = body;
        if (name === "welcome") {
          this.welcome = payload;
          clearTimeout(this.connectTimer);
          this.resolveReady(payload);
        }
        // The server asked for an ack: give an empty one.
        if (id !== "") this.send(`43${id}[]`);
        this.dispatch(name, payload);
        return;
      }
      case "3": {
        const request = this.pending.get(Number(id));
        if (!request) return;
        this.pending.delete(Number(id));
        clearTimeout(request.timer);
        request.resolve(Array.isArray(body) ? body[0] : body);
        return;
      }
      case "1":
        this.closeReason = "server disconnect";
        this.ws.close();
        return;
      default:
        return;
    }
  }

  /**
   * Ends the connection with an error: rejects `ready` (if still waiting) and every request.
   * @param {SocketIoError} err
   */
  fail(err) {
    this.closeReason = this.closeReason || err.message;
    this.rejectReady(err);
    this.rejectPending(err);
    this.ws.close();
  }

  /** @param {Error} err */
  rejectPending(err) {
    for (const [id, request] of this.pending) {
      this.pending.delete(id);
      clearTimeout(request.timer);
      request.reject(new SocketIoError(`${request.event}: ${err.message}`));
    }
  }

  onClosed() {
    if (this.closed) return;
    this.closed = true;
    this.connected = false;
    clearTimeout(this.connectTimer);
    const reason = this.closeReason || "closed by the server";
    this.rejectReady(new SocketIoError(`connection ended before welcome (${reason})`));
    this.rejectPending(new Error(`connection ended (${reason})`));
    this.dispatch("disconnect", reason);
    this.resolveDone();
  }

  /**
   * @param {string} event
   * @param {any} payload
   */
  dispatch(event, payload) {
    for (const fn of this.listeners.get(event) ?? []) fn(payload);
  }
}

// ---------------------------------------------------------------------------------------------
// Channels: offsets, gaps and duplicates
// ---------------------------------------------------------------------------------------------

/**
 * What a subscriber knows of one channel (docs/protocol.md, "Writing a client that loses
 * nothing"): the offset and epoch of the last event handled. Offsets grow by exactly 1;
 * an event at or below the offset is a duplicate, one above offset + 1 leaves a gap.
 */
export class OffsetTracker {
  /** @param {string} channel */
  constructor(channel) {
    this.channel = channel;
    this.offset = 0;
    this.epoch = "";
    /** Events handled (duplicates excluded). */
    this.received = 0;
    /** Discontinuities: a jump over offsets, or an epoch change in mid-stream. */
    this.gaps = 0;
    /** Offsets jumped over, in all. */
    this.missing = 0;
    this.duplicates = 0;
  }

  /**
   * Continues from here (a fresh subscription, or history that could not be recovered).
   * @param {number} offset
   * @param {string} epoch
   */
  start(offset, epoch) {
    this.offset = offset;
    this.epoch = epoch;
  }

  /**
   * @param {ChannelEvent} event
   * @returns {"next" | "gap" | "duplicate"}
   */
  accept(event) {
    if (event.epoch !== this.epoch) {
      // A new history generation without unsubscribed/history_lost first: a silent gap.
      this.gaps++;
      this.epoch = event.epoch;
      this.offset = event.offset;
      this.received++;
      return "gap";
    }
    if (event.offset <= this.offset) {
      this.duplicates++;
      return "duplicate";
    }
    const jumped = event.offset - this.offset - 1;
    this.offset = event.offset;
    this.received++;
    if (jumped > 0) {
      this.gaps++;
      this.missing += jumped;
      return "gap";
    }
    return "next";
  }
}

/**
 * Subscribes to a channel and follows it the way docs/protocol.md asks: listens before it
 * asks, handles the answer's `events` before any live event (holding those that arrive
 * meanwhile), drops duplicates and counts gaps in `tracker`. Pass `request.since` from the
 * tracker to recover after a reconnect. `onEvent` gets every event once, in offset order,
 * with where it came from.
 *
 * Resolves with the answer (`ok: false` answers too); rejects if the request failed.
 * @param {SocketIoClient} client
 * @param {SubscribeRequest} request
 * @param {OffsetTracker} tracker
 * @param {(event: ChannelEvent, source: "answer" | "live") => void} [onEvent]
 * @returns {Promise<SubscribeAnswer>}
 */
export async function follow(client, request, tracker, onEvent = () => {}) {
  /** @type {ChannelEvent[] | null} */
  let held = [];
  /**
   * @param {ChannelEvent} event
   * @param {"answer" | "live"} source
   */
  const handle = (event, source) => {
    if (tracker.accept(event) !== "duplicate") onEvent(event, source);
  };
  /** @param {ChannelEvent} event */
  const listener = (event) => {
    if (event.channel !== request.channel) return;
    if (held) held.push(event);
    else handle(event, "live");
  };
  client.on("event", listener);
  /** @type {SubscribeAnswer} */
  let answer;
  try {
    answer = await client.request("subscribe", request);
  } catch (err) {
    client.off("event", listener);
    throw err;
  }
  if (!answer.ok) {
    client.off("event", listener);
    return answer;
  }
  const recovering = request.since !== undefined && answer.recovered;
  if (!recovering) {
    // Fresh, or history could not fill the gap: continue from what the answer holds.
    const first = answer.events[0];
    tracker.start(first ? first.offset - 1 : answer.offset, first ? first.epoch : answer.epoch);
  }
  for (const event of answer.events) handle(event, "answer");
  if (answer.offset > tracker.offset) {
    // The answer says the channel is further on than its events reach: only fine when no history was asked for.
    if (recovering || (request.history ?? 0) > 0) {
      tracker.gaps++;
      tracker.missing += answer.offset - tracker.offset;
    }
    tracker.start(answer.offset, answer.epoch);
  }
  const waiting = held ?? [];
  held = null;
  for (const event of waiting) handle(event, "live");
  return answer;
}

// ---------------------------------------------------------------------------------------------
// Time
// ---------------------------------------------------------------------------------------------

/**
 * @param {number} ms
 * @returns {Promise<void>}
 */
export function pause(ms) {
  return new Promise((resolve) => {
    setTimeout(() => resolve(), ms);
  });
}

/**
 * Polls `condition` every `stepMs` until it holds (true) or `timeoutMs` passed (false).
 * @param {() => boolean} condition
 * @param {number} timeoutMs
 * @param {number} [stepMs]
 * @returns {Promise<boolean>}
 */
export async function waitUntil(condition, timeoutMs, stepMs = 10) {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() >= deadline) return false;
    await pause(stepMs);
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// HTTP API
// ---------------------------------------------------------------------------------------------

/**
 * @param {string | ArrayBuffer | null} body
 * @returns {any}
 */
function parseBody(body) {
  if (typeof body !== "string" || body === "") return null;
  try {
    return JSON.parse(body);
  } catch {
    return { raw: body };
  }
}

/**
 * A JSON request to the HTTP API with a bearer token; `name` tags it (one series per route).
 * @param {string} method
 * @param {string} url
 * @param {string} token
 * @param {unknown} body
 * @param {string} name
 * @returns {HttpAnswer}
 */
export function api(method, url, token, body, name) {
  /** @type {Record<string, string>} */
  const headers = { Authorization: `Bearer ${token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = http.request(method, url, body === undefined ? null : JSON.stringify(body), { headers, tags: { name } });
  return { status: res.status, body: parseBody(res.body), durationMs: res.timings.duration };
}

/**
 * POST /v1/channels/:channel/events (scope `publish`): 202 `{ offset, epoch, id }`.
 * @param {string} base
 * @param {string} token
 * @param {string} channel
 * @param {string} type
 * @param {unknown} data
 * @returns {HttpAnswer}
 */
export function publish(base, token, channel, type, data) {
  return api(
    "POST",
    `${base}/v1/channels/${encodeURIComponent(channel)}/events`,
    token,
    { type, data },
    "POST /v1/channels/:channel/events",
  );
}

/**
 * GET /v1/channels/:channel/history: `{ offset, epoch, events }`.
 * @param {string} base
 * @param {string} token
 * @param {string} channel
 * @param {number} limit
 * @returns {HttpAnswer}
 */
export function history(base, token, channel, limit) {
  return api(
    "GET",
    `${base}/v1/channels/${encodeURIComponent(channel)}/history?limit=${limit}`,
    token,
    undefined,
    "GET /v1/channels/:channel/history",
  );
}

/**
 * POST /v1/jobs (scope `jobs:write`): 201 `{ jobId, channel }`.
 * @param {string} base
 * @param {string} token
 * @param {{ name: string, envId?: string, data?: unknown, opts?: Record<string, number> }} job
 * @returns {HttpAnswer}
 */
export function createJob(base, token, job) {
  return api("POST", `${base}/v1/jobs`, token, job, "POST /v1/jobs");
}

/**
 * GET /v1/jobs/:id (scope `jobs:read`).
 * @param {string} base
 * @param {string} token
 * @param {string} jobId
 * @returns {HttpAnswer}
 */
export function getJob(base, token, jobId) {
  return api("GET", `${base}/v1/jobs/${encodeURIComponent(jobId)}`, token, undefined, "GET /v1/jobs/:id");
}

/**
 * setup(): every gateway answers /readyz, and there are credentials.
 * @returns {void}
 */
export function checkTarget() {
  credentials("probe");
  for (const base of BASE_URLS) {
    const res = http.get(`${base}/readyz`, { tags: { name: "GET /readyz" } });
    if (res.status !== 200)
      throw new Error(`${base}/readyz answered ${res.status} ${res.error}: is BASE_URL a roomcast gateway?`);
  }
}
