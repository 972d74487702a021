/**
 * The `k6/websockets` module over the `ws` package: the browser-like WebSocket of k6 v1
 * (addEventListener, on* handlers, send, close, ping, readyState). An open socket keeps the
 * iteration alive until its `close` event ran. Each message is its own event-loop task (ws
 * with allowSynchronousEvents off), so promise jobs run between two messages, as in k6.
 * Records ws_connecting, ws_sessions, ws_session_duration, ws_msgs_sent, ws_msgs_received.
 */
import { WebSocket as NodeWebSocket, type RawData } from "ws";
import { runtime } from "../runtime.js";

type EventName = "open" | "close" | "error" | "message" | "ping" | "pong";
type Listener = (event: Record<string, unknown>) => unknown;

interface Params {
  headers?: Record<string, string>;
  tags?: Record<string, string>;
  compression?: "deflate";
}

const EVENTS: readonly EventName[] = ["open", "close", "error", "message", "ping", "pong"];

function toArrayBuffer(data: RawData): ArrayBuffer {
  const buffer = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
  const copy = new ArrayBuffer(buffer.byteLength);
  new Uint8Array(copy).set(buffer);
  return copy;
}

export class WebSocket {
  static readonly CONNECTING = 0;
  static readonly OPEN = 1;
  static readonly CLOSING = 2;
  static readonly CLOSED = 3;
  readonly CONNECTING = 0;
  readonly OPEN = 1;
  readonly CLOSING = 2;
  readonly CLOSED = 3;

  readonly url: string;
  binaryType: "blob" | "arraybuffer" = "arraybuffer";
  onopen: Listener | null = null;
  onmessage: Listener | null = null;
  onclose: Listener | null = null;
  onerror: Listener | null = null;
  onping: Listener | null = null;
  onpong: Listener | null = null;

  readonly #ws: NodeWebSocket;
  readonly #listeners = new Map<EventName, Listener[]>();
  readonly #generation: number;
  readonly #tags: Record<string, string>;

  constructor(url: string, protocols?: string | string[] | null, params?: Params | null) {
    if (runtime.context === "init") throw new Error("a WebSocket cannot be opened in the init context");
    this.url = url;
    this.#generation = runtime.generation;
    this.#tags = { url, ...params?.tags };
    const started = Date.now();
    let opened = 0;
    this.#ws = new NodeWebSocket(url, protocols ?? undefined, {
      headers: params?.headers,
      perMessageDeflate: params?.compression === "deflate",
      allowSynchronousEvents: false,
    });
    const handle = runtime.open({ description: `WebSocket ${url}`, cancel: () => this.#ws.terminate() });
    this.#ws.on("upgrade", (res) => {
      this.#tags.status = String(res.statusCode ?? 101);
    });
    this.#ws.on("open", () => {
      opened = Date.now();
      runtime.builtin("ws_connecting", "trend", true, opened - started, this.#tags);
      runtime.builtin("ws_sessions", "counter", false, 1, this.#tags);
      this.#dispatch("open", {});
    });
    this.#ws.on("message", (data, isBinary) => {
      runtime.builtin("ws_msgs_received", "counter", false, 1, this.#tags);
      this.#dispatch("message", { data: isBinary ? toArrayBuffer(data) : data.toString() });
    });
    this.#ws.on("ping", () => this.#dispatch("ping", {}));
    this.#ws.on("pong", () => this.#dispatch("pong", {}));
    this.#ws.on("error", (err) => this.#dispatch("error", { error: err.message }));
    this.#ws.on("close", (code, reason) => {
      if (opened) runtime.builtin("ws_session_duration", "trend", true, Date.now() - started, this.#tags);
      try {
        this.#dispatch("close", { code, reason: reason.toString() });
      } finally {
        handle.release();
      }
    });
  }

  get readyState(): 0 | 1 | 2 | 3 {
    return this.#ws.readyState;
  }

  get bufferedAmount(): number {
    return this.#ws.bufferedAmount;
  }

  addEventListener(event: EventName, listener: Listener): void {
    if (!EVENTS.includes(event)) throw new Error(`unknown WebSocket event ${String(event)}`);
    if (typeof listener !== "function") throw new TypeError("addEventListener needs a function");
    this.#listeners.set(event, [...(this.#listeners.get(event) ?? []), listener]);
  }

  send(data: string | ArrayBuffer | ArrayBufferView): void {
    if (this.#ws.readyState === NodeWebSocket.CONNECTING)
      throw new Error("InvalidStateError: the WebSocket is still connecting");
    // As in browsers: data sent after close is dropped.
    if (this.#ws.readyState !== NodeWebSocket.OPEN) return;
    const payload =
      typeof data === "string"
        ? data
        : data instanceof ArrayBuffer
          ? Buffer.from(new Uint8Array(data))
          : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    this.#ws.send(payload);
    runtime.builtin("ws_msgs_sent", "counter", false, 1, this.#tags);
  }

  ping(): void {
    if (this.#ws.readyState === NodeWebSocket.OPEN) this.#ws.ping();
  }

  close(code?: number, reason?: string): void {
    if (this.#ws.readyState === NodeWebSocket.CLOSED || this.#ws.readyState === NodeWebSocket.CLOSING) return;
    if (this.#ws.readyState === NodeWebSocket.CONNECTING) this.#ws.terminate();
    else this.#ws.close(code ?? 1000, reason);
  }

  #dispatch(name: EventName, fields: Record<string, unknown>): void {
    const event = { type: name, timestamp: Date.now(), target: this, ...fields };
    const handler = this[`on${name}`];
    const listeners = [...(handler ? [handler] : []), ...(this.#listeners.get(name) ?? [])];
    for (const listener of listeners) runtime.callback(this.#generation, listener, event);
  }
}

export default { WebSocket };
