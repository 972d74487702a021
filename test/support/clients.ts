/** Real socket.io-client connections, typed with the shared event maps. */
import { io, type Socket } from "socket.io-client";
import { mintToken, type MintOptions } from "../../src/auth/mint-token.js";
import type {
  ChannelEvent,
  ClientToServerEvents,
  ServerToClientEvents,
  SubscribeOk,
} from "../../src/contracts/events.js";
import { TEST_SECRET } from "./gateway-process.js";

/** A subscribe request's answer, as the tests read it. */
export type SubscribeAnswer =
  (SubscribeOk & { ok: true }) | { ok: false; error: { code: number; reason: string; message: string } };

export type TestSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

export function token(options: Omit<MintOptions, "secret"> & { secret?: string }): Promise<string> {
  return mintToken({ secret: TEST_SECRET, ...options });
}

export interface ConnectOptions {
  token?: string;
  transports?: ("websocket" | "polling")[];
  extraHeaders?: Record<string, string>;
  query?: Record<string, string>;
  reconnection?: boolean;
  /** Keep cookies (Node: engine.io-client's cookie jar), as browsers do: load-balancer stickiness. */
  withCredentials?: boolean;
}

/** Connects and resolves once connected (rejects with the connect_error). */
export function connect(url: string, options: ConnectOptions = {}): Promise<TestSocket> {
  const socket: TestSocket = io(url, {
    auth: options.token ? { token: options.token } : {},
    transports: options.transports ?? ["websocket"],
    extraHeaders: options.extraHeaders,
    query: options.query,
    reconnection: options.reconnection ?? false,
    withCredentials: options.withCredentials ?? false,
    forceNew: true,
  });
  return new Promise((resolve, reject) => {
    // Neither `connect` nor `connect_error` (a transport closed before CONNECT): fail, never hang.
    const timer = setTimeout(() => {
      socket.close();
      reject(new Error(`no connect nor connect_error within 10 s (${url})`));
    }, 10_000);
    socket.once("connect", () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once("connect_error", (err) => {
      clearTimeout(timer);
      socket.close();
      reject(err);
    });
  });
}

/** The connect_error a handshake ends in (fails if it connects). */
export async function connectError(
  url: string,
  options: ConnectOptions = {},
): Promise<{ message: string; data: Record<string, unknown> }> {
  try {
    const socket = await connect(url, options);
    socket.close();
  } catch (err) {
    return err as { message: string; data: Record<string, unknown> };
  }
  throw new Error("expected the handshake to be refused");
}

/** Connects with a token minted for `claims` and records the socket in `opened`, for closing after the test. */
export async function openAs(
  opened: TestSocket[],
  url: string,
  claims: Parameters<typeof token>[0],
): Promise<TestSocket> {
  const socket = await connect(url, { token: await token(claims) });
  opened.push(socket);
  return socket;
}

/** Sends a request with an ack. */
export async function request<T = Record<string, unknown>>(
  socket: TestSocket,
  event: string,
  payload: unknown,
  timeoutMs = 5000,
): Promise<T> {
  return (await (socket as unknown as Socket).timeout(timeoutMs).emitWithAck(event, payload)) as T;
}

export function nextEvent<T = unknown>(socket: TestSocket, event: string, timeoutMs = 5000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} within ${timeoutMs} ms`)), timeoutMs);
    (socket as unknown as Socket).once(event, (value: T) => {
      clearTimeout(timer);
      resolve(value);
    });
  });
}

/** Records every `event` delivery per channel, in arrival order. */
export function recordEvents(socket: TestSocket): Map<string, ChannelEvent[]> {
  const seen = new Map<string, ChannelEvent[]>();
  socket.on("event", (e) => {
    const list = seen.get(e.channel) ?? [];
    list.push(e);
    seen.set(e.channel, list);
  });
  return seen;
}

export async function waitUntil(check: () => boolean, timeoutMs = 10_000, what = "condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** POST /v1/channels/:channel/events */
export async function httpPublish(
  baseUrl: string,
  bearer: string,
  channel: string,
  body: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${baseUrl}/v1/channels/${encodeURIComponent(channel)}/events`, {
    method: "POST",
    headers: { authorization: `Bearer ${bearer}`, "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/**
 * The first request of a new Engine.IO session (long-polling handshake, or a WebSocket upgrade
 * with `websocket: true`): its HTTP status and, for a refusal, the error body.
 */
export async function engineHandshake(
  baseUrl: string,
  options: { websocket?: boolean; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: Record<string, unknown> | string }> {
  if (options.websocket) {
    const { default: WebSocket } = await import("ws");
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`${baseUrl.replace(/^http/, "ws")}/socket.io/?EIO=4&transport=websocket`, {
        headers: options.headers,
      });
      ws.on("open", () => {
        ws.terminate();
        resolve({ status: 101, body: "" });
      });
      ws.on("unexpected-response", (_req, res) => {
        let text = "";
        res.on("data", (d: Buffer) => (text += d.toString()));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            body: text.startsWith("{") ? (JSON.parse(text) as Record<string, unknown>) : text,
          }),
        );
      });
      ws.on("error", (err) => reject(err));
    });
  }
  const res = await fetch(`${baseUrl}/socket.io/?EIO=4&transport=polling`, { headers: options.headers });
  const text = await res.text();
  return { status: res.status, body: text.startsWith("{") ? (JSON.parse(text) as Record<string, unknown>) : text };
}

export async function httpGet(
  url: string,
  bearer?: string,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, { headers: bearer ? { authorization: `Bearer ${bearer}` } : {} });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}
