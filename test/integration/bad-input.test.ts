/**
 * Bad input, over raw WebSockets (Engine.IO v4 / Socket.IO v5 framing written by hand) and
 * raw HTTP (fetch, and node:net for requests fetch cannot send), against one real
 * two-replica cluster: replica A verifies HS256 tokens, replica B RS256 tokens from a
 * public key file (docs/protocol.md ("Transport" to "Deliveries", "HTTP API", "Limits")).
 *
 * Every case is a row of a table below. After each case the replica it hit must still
 * serve: its process is alive, /readyz answers 200, and a quiet, well-behaved
 * socket.io-client that connected to that replica before the first case, subscribed to a
 * channel, receives a fresh event published over HTTP right after the case. The last test
 * asserts that each quiet client got every one of those events exactly once, in order,
 * with no gap.
 *
 * The request rate limits and the per-user and per-IP connection quotas are turned off
 * (0): this suite sends hundreds of bad requests from one IP and is not about those limits.
 */
import assert from "node:assert/strict";
import { createHmac, generateKeyPairSync, type KeyObject } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect as netConnect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { SignJWT } from "jose";
import WebSocket from "ws";
import type { ChannelEvent } from "../../src/contracts/events.js";
import { connect, httpPublish, token, waitUntil, type TestSocket } from "../support/clients.js";
import { startCluster, type TestCluster } from "../support/cluster.js";
import { writeChatConfig } from "../support/util.js";
import { TEST_SECRET, type GatewayProcess } from "../support/gateway-process.js";
import { refusedWith, type Answer, type ErrorBody } from "../support/answers.js";

const MAX_MESSAGE_BYTES = 65_536;
const nowS = () => Math.floor(Date.now() / 1000);
const b64url = (value: string | Buffer) => Buffer.from(value).toString("base64url");
const b64json = (value: unknown) => b64url(JSON.stringify(value));

// ---------------------------------------------------------------------------------------
// Keys and tokens
// ---------------------------------------------------------------------------------------

const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
const stranger = generateKeyPairSync("rsa", { modulusLength: 2048 });
const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });
const RSA_PUBLIC_PEM = rsa.publicKey.export({ type: "spki", format: "pem" }) as string;
const hsKey = new TextEncoder().encode(TEST_SECRET);

async function sign(
  claims: Record<string, unknown>,
  alg: string,
  key: KeyObject | Uint8Array,
  header: Record<string, unknown> = {},
): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ ...header, alg }).sign(key);
}

/** Default claims: a token that would be accepted, minus whatever a case changes. */
const claimsFor = (sub: string, extra: Record<string, unknown> = {}) => ({
  sub,
  exp: nowS() + 3600,
  iat: nowS(),
  ...extra,
});

type ReplicaName = "A" | "B";

/** A valid token for a replica: HS256 with the shared secret on A, RS256 with the key pair on B. */
async function validToken(replica: ReplicaName, sub: string, extra: Record<string, unknown> = {}): Promise<string> {
  return replica === "A"
    ? sign(claimsFor(sub, extra), "HS256", hsKey)
    : sign(claimsFor(sub, extra), "RS256", rsa.privateKey);
}

// ---------------------------------------------------------------------------------------
// Raw Engine.IO / Socket.IO client
// ---------------------------------------------------------------------------------------

/** A frame: text (a string), a binary frame, or a text frame with raw (possibly invalid UTF-8) bytes. */
type Frame = string | { binary: Buffer } | { textBytes: Buffer };
/** A frame, or a pause between frames. */
type Step = Frame | { waitMs: number };

const describeFrame = (f: Step) =>
  typeof f !== "string" && "waitMs" in f
    ? `(${f.waitMs} ms)`
    : typeof f === "string"
      ? JSON.stringify(f.length > 80 ? `${f.slice(0, 80)}...(${f.length} chars)` : f)
      : "binary" in f
        ? `binary(${f.binary.length} bytes)`
        : `text-bytes(${f.textBytes.toString("hex").slice(0, 40)})`;

class RawSocket {
  readonly received: string[] = [];
  openPacket: { sid: string; maxPayload: number } | undefined;
  closeInfo: { code: number; reason: string } | undefined;
  /** Ack ids of requests sent with emit(); the tables use small ids (1) of their own. */
  private nextAck = 100;
  private readonly listeners = new Set<() => void>();

  private constructor(
    readonly ws: WebSocket,
    readonly sub: string,
  ) {
    ws.on("message", (data, isBinary) => {
      const text = isBinary ? `<binary ${(data as Buffer).toString("hex")}>` : data.toString();
      if (text === "2") {
        ws.send("3"); // answer the server's heartbeat like any client
      } else {
        this.received.push(text);
      }
      this.notify();
    });
    ws.on("close", (code, reason) => {
      this.closeInfo = { code, reason: reason.toString() };
      this.notify();
    });
    ws.on("error", () => {
      // a refused or reset connection shows up as a close
    });
  }

  private notify() {
    for (const l of [...this.listeners]) l();
  }

  /** Opens the WebSocket transport and waits for the Engine.IO open packet. */
  static async open(url: string, sub: string, headers: Record<string, string> = {}): Promise<RawSocket> {
    const ws = new WebSocket(`${url.replace(/^http/, "ws")}/socket.io/?EIO=4&transport=websocket`, { headers });
    const raw = new RawSocket(ws, sub);
    const open = await raw.waitFor((m) => m.startsWith("0{"), 5000, "Engine.IO open packet");
    raw.openPacket = JSON.parse(open.slice(1)) as { sid: string; maxPayload: number };
    return raw;
  }

  /** Opens and sends a Socket.IO CONNECT with this auth payload; resolves with the CONNECT answer (`40...` or `44...`). */
  static async handshake(
    url: string,
    sub: string,
    auth: unknown,
    headers: Record<string, string> = {},
  ): Promise<{ raw: RawSocket; answer: string }> {
    const raw = await RawSocket.open(url, sub, headers);
    const mark = raw.received.length;
    raw.send(auth === undefined ? "40" : `40${JSON.stringify(auth)}`);
    const answer = await raw.waitFor((m) => m.startsWith("40") || m.startsWith("44"), 5000, "CONNECT answer", mark);
    return { raw, answer };
  }

  /** Opens, connects with a valid token and waits for `welcome`. */
  static async connected(url: string, sub: string, tokenValue: string): Promise<RawSocket> {
    const { raw, answer } = await RawSocket.handshake(url, sub, { token: tokenValue });
    assert.match(answer, /^40\{"sid":"[^"]+"\}$/, `handshake refused: ${answer}`);
    await raw.waitFor((m) => m.startsWith('42["welcome",'), 5000, "welcome");
    return raw;
  }

  get isOpen(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  send(frame: Frame): void {
    if (typeof frame === "string") this.ws.send(frame);
    else if ("binary" in frame) this.ws.send(frame.binary, { binary: true });
    else this.ws.send(frame.textBytes, { binary: false });
  }

  /** Sends an EVENT; with `ack`, an ack id, which it returns. `payload` undefined sends no argument. */
  emit(event: unknown, payload: unknown, ack: boolean): number | undefined {
    const id = ack ? this.nextAck++ : undefined;
    const args = payload === undefined ? [event] : [event, payload];
    this.send(`42${id ?? ""}${toWire(args)}`);
    return id;
  }

  /** Waits for the ACK with this id and returns its answer. */
  async ackOf(id: number, timeoutMs = 5000, from = 0): Promise<Answer> {
    const prefix = `43${id}[`;
    const msg = await this.waitFor((m) => m.startsWith(prefix), timeoutMs, `ack ${id}`, from);
    const args = JSON.parse(msg.slice(prefix.length - 1)) as unknown[];
    assert.equal(args.length, 1, `ack with ${args.length} arguments: ${msg}`);
    return args[0] as Answer;
  }

  /** Sends a request with an ack and waits for its answer. */
  async request(event: string, payload: unknown, timeoutMs = 5000): Promise<Answer> {
    const mark = this.received.length;
    const id = this.emit(event, payload, true)!;
    return this.ackOf(id, timeoutMs, mark);
  }

  /**
   * Proves the connection still works: a harmless request (unsubscribe from a channel it
   * never joined) answered ok. Returns every message that arrived from `mark` up to that answer, the answer excluded.
   */
  async probe(mark: number, timeoutMs = 5000): Promise<string[]> {
    const id = this.emit("unsubscribe", { channel: `user:${this.sub}-probe` }, true)!;
    const answer = await this.ackOf(id, timeoutMs, mark);
    assert.deepEqual(answer, { ok: true, channel: `user:${this.sub}-probe` }, "probe request");
    const prefix = `43${id}[`;
    return this.received.slice(mark).filter((m) => !m.startsWith(prefix));
  }

  waitFor(match: (m: string) => boolean, timeoutMs: number, what: string, from = 0): Promise<string> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.received.slice(from).find(match);
        if (found !== undefined) {
          done();
          resolve(found);
        } else if (this.closeInfo) {
          done();
          reject(
            new Error(
              `connection closed (${this.closeInfo.code} ${this.closeInfo.reason}) before ${what}; received ${JSON.stringify(this.received.slice(from).map((m) => m.slice(0, 200)))}`,
            ),
          );
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new Error(
            `no ${what} within ${timeoutMs} ms; received ${JSON.stringify(this.received.slice(from).map((m) => m.slice(0, 200)))}`,
          ),
        );
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.listeners.delete(check);
      };
      this.listeners.add(check);
      check();
    });
  }

  /** Waits for the server to close the connection. */
  closed(timeoutMs: number): Promise<{ code: number; reason: string }> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!this.closeInfo) return;
        done();
        resolve(this.closeInfo);
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new Error(
            `the server did not close the connection within ${timeoutMs} ms; received ${JSON.stringify(this.received.map((m) => m.slice(0, 200)))}`,
          ),
        );
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.listeners.delete(check);
      };
      this.listeners.add(check);
      check();
    });
  }

  close(): void {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.terminate();
  }
}

// ---------------------------------------------------------------------------------------
// Raw HTTP
// ---------------------------------------------------------------------------------------

interface HttpResult {
  status: number;
  /** The parsed JSON body, if the body is JSON. */
  json?: Record<string, unknown>;
  text: string;
}

/** Writes these exact bytes to the port and reads until the server closes (or timeoutMs). */
function rawHttp(port: number, bytes: string | Buffer, timeoutMs = 5000): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: "127.0.0.1", port });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        new Error(
          `no complete answer within ${timeoutMs} ms; got ${JSON.stringify(Buffer.concat(chunks).toString().slice(0, 300))}`,
        ),
      );
    }, timeoutMs);
    // Written in parts, and no more once an answer arrives, as HTTP clients do: a server that
    // answers early (413) and closes would otherwise reset the connection with our unsent
    // megabytes in flight, and the reset can discard its answer before we read it.
    const whole = typeof bytes === "string" ? Buffer.from(bytes) : bytes;
    let sent = 0;
    const writeMore = () => {
      if (sent >= whole.length || chunks.length > 0 || socket.destroyed) return;
      const part = whole.subarray(sent, sent + 65536);
      sent += part.length;
      // One part per turn of the event loop, so that an answer is read before the next part.
      if (socket.write(part)) setImmediate(writeMore);
      else socket.once("drain", writeMore);
    };
    socket.on("connect", writeMore);
    socket.on("data", (d: Buffer) => chunks.push(d));
    socket.on("error", () => {
      // a reset after the answer is fine; a reset without one shows as status 0
    });
    socket.on("close", () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString("utf8");
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0);
      const bodyStart = text.indexOf("\r\n\r\n");
      let body = bodyStart >= 0 ? text.slice(bodyStart + 4) : "";
      if (/\r\ntransfer-encoding: chunked/i.test(text.slice(0, bodyStart))) body = dechunk(body);
      let json: Record<string, unknown> | undefined;
      try {
        json = JSON.parse(body) as Record<string, unknown>;
      } catch {
        json = undefined;
      }
      resolve({ status, json, text });
    });
  });
}

function dechunk(body: string): string {
  let out = "";
  let rest = body;
  for (;;) {
    const eol = rest.indexOf("\r\n");
    if (eol < 0) return out;
    const size = parseInt(rest.slice(0, eol), 16);
    if (!size) return out;
    out += rest.slice(eol + 2, eol + 2 + size);
    rest = rest.slice(eol + 2 + size + 2);
  }
}

function httpRequest(method: string, path: string, headers: Record<string, string>, body = ""): string {
  const lines = [
    `${method} ${path} HTTP/1.1`,
    "Host: 127.0.0.1",
    "Connection: close",
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
  ];
  if (body !== "" || method === "POST" || method === "PUT") lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
  return `${lines.join("\r\n")}\r\n\r\n${body}`;
}

async function fetchResult(url: string, init: RequestInit): Promise<HttpResult> {
  const res = await fetch(url, init);
  const text = await res.text();
  let json: Record<string, unknown> | undefined;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text };
}

/** The docs/protocol.md, "HTTP API" error body with this status and reason. */
function assertHttpError(res: HttpResult, status: number, reason: string): void {
  assert.equal(res.status, status, `status ${res.status}, body ${res.text.slice(0, 300)}`);
  assert.ok(res.json, `not a JSON body: ${res.text.slice(0, 300)}`);
  const error = res.json.error as ErrorBody | undefined;
  assert.ok(error && typeof error === "object", `no error object: ${res.text.slice(0, 300)}`);
  assert.equal(error.reason, reason, JSON.stringify(error));
  assert.equal(
    error.code,
    { bad_request: 4400, unauthorized: 4401, forbidden: 4403, not_found: 4404, too_large: 4413 }[reason],
    JSON.stringify(error),
  );
  assert.equal(typeof error.message, "string");
  assert.doesNotMatch(error.message, /at .*\.js:\d+|node_modules|Error:/, "the message leaks internals");
}

// ---------------------------------------------------------------------------------------
// Answers
// ---------------------------------------------------------------------------------------

function parseEvent(msg: string): [string, Record<string, unknown>] | undefined {
  if (!msg.startsWith("42[")) return undefined;
  const args = JSON.parse(msg.slice(2)) as unknown[];
  return [args[0] as string, args[1] as Record<string, unknown>];
}

// ---------------------------------------------------------------------------------------
// Case tables
// ---------------------------------------------------------------------------------------

/** What a raw frame case must lead to. */
type FrameOutcome =
  /** The server ends the connection (with this WebSocket close code, if given). */
  | { closed: true; code?: number }
  /** Nothing comes back, and the connection keeps serving requests. */
  | { ignored: true }
  /** Exactly this frame comes back, and the connection keeps serving requests. */
  | { reply: string }
  /** An ACK with id 1 comes back, checked by this function; the connection keeps serving. */
  | { ack: (answer: Answer) => void };

interface FrameCase {
  name: string;
  /** `open`: sent before any Socket.IO CONNECT; `connected` (default): after a successful one. */
  stage?: "open" | "connected";
  frames: Step[];
  expect: FrameOutcome;
}

const CLOSED = { closed: true } as const;
const IGNORED = { ignored: true } as const;

const engineIoCases: FrameCase[] = [
  { name: "unknown packet type 9", frames: ["9"], expect: CLOSED },
  { name: "unknown packet type x", frames: ["x"], expect: CLOSED },
  { name: "unknown packet type 7 with data", frames: ['7["subscribe",{}]'], expect: CLOSED },
  { name: "empty text frame", frames: [""], expect: CLOSED },
  { name: "empty text frame before CONNECT", stage: "open", frames: [""], expect: CLOSED },
  { name: '"4" (message) with nothing', frames: ["4"], expect: CLOSED },
  { name: '"4" + garbage', frames: ["4garbage"], expect: CLOSED },
  { name: '"4" + NUL bytes', frames: ["4\u0000\u0000\u0000"], expect: CLOSED },
  { name: '"4" + 200 KB of garbage', frames: [`4${"#".repeat(200_000)}`], expect: CLOSED },
  { name: "open packet 0 sent by the client", frames: ["0"], expect: IGNORED },
  {
    name: "open packet 0{...} with a forged sid sent by the client",
    frames: ['0{"sid":"forged","upgrades":[],"pingInterval":1,"pingTimeout":1}'],
    expect: IGNORED,
  },
  { name: "upgrade packet 5 on a transport that is already WebSocket", frames: ["5"], expect: IGNORED },
  { name: "noop packet 6 sent by the client", frames: ["6"], expect: IGNORED },
  { name: "close packet 1 sent over WebSocket", frames: ["1"], expect: IGNORED },
  { name: "unsolicited pong 3", frames: ["3"], expect: IGNORED },
  { name: 'upgrade probe "3probe" after the upgrade', frames: ["3probe"], expect: IGNORED },
  { name: "ping 2 from the client (wrong heartbeat direction in EIO4)", frames: ["2"], expect: CLOSED },
  { name: 'upgrade probe "2probe" after the upgrade', frames: ["2probe"], expect: CLOSED },
  {
    name: "upgrade packet 5 before CONNECT",
    stage: "open",
    frames: ["5", "40"],
    expect: {
      reply: '44{"message":"token missing","data":{"code":4401,"reason":"unauthorized","message":"token missing"}}',
    },
  },
  {
    name: "binary frame of random bytes",
    frames: [{ binary: Buffer.from("9f3c00e1a27b44d0c8ff0213", "hex") }],
    expect: CLOSED,
  },
  { name: "binary frame of 0xff x 1024", frames: [{ binary: Buffer.alloc(1024, 0xff) }], expect: CLOSED },
  { name: "binary frame of zero bytes", frames: [{ binary: Buffer.alloc(0) }], expect: CLOSED },
  { name: "binary frame before CONNECT", stage: "open", frames: [{ binary: Buffer.alloc(16, 0xff) }], expect: CLOSED },
  {
    name: "text frame that is not valid UTF-8 (c3 28)",
    frames: [{ textBytes: Buffer.from([0x34, 0x32, 0xc3, 0x28]) }],
    expect: { closed: true, code: 1007 },
  },
  {
    name: "text frame that is not valid UTF-8 (lone 0xff)",
    frames: [{ textBytes: Buffer.from([0x34, 0x32, 0x5b, 0xff, 0x5d]) }],
    expect: { closed: true, code: 1007 },
  },
  {
    name: "text frame with an encoded UTF-16 surrogate (ed a0 80)",
    frames: [
      { textBytes: Buffer.concat([Buffer.from('42["x","'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"]')]) },
    ],
    expect: { closed: true, code: 1007 },
  },
];

const ACK_BAD_REQUEST_1 = (answer: Answer) => {
  const error = refusedWith(answer, 4400, "bad_request");
  assert.equal(error.event, "1");
};

const socketIoCases: FrameCase[] = [
  { name: "42 with invalid JSON", frames: ["42{not json"], expect: CLOSED },
  { name: "42 with a JSON object instead of an array", frames: ['42{"event":"subscribe"}'], expect: CLOSED },
  { name: "42 with a JSON string", frames: ['42"subscribe"'], expect: CLOSED },
  { name: "42 with nothing after it", frames: ["42"], expect: IGNORED },
  { name: "4242: ack id 42 and no payload at all", frames: ["4242"], expect: IGNORED },
  { name: "42 with a JSON string after the ack id", frames: ['421"subscribe"'], expect: CLOSED },
  { name: "42[] (no event name)", frames: ["42[]"], expect: CLOSED },
  { name: "42[null]", frames: ["42[null]"], expect: CLOSED },
  { name: "42[{...}] (event name an object)", frames: ['42[{"channel":"user:x"}]'], expect: CLOSED },
  { name: "42[1] (numeric event name, no ack): ignored as an unknown event", frames: ["42[1]"], expect: IGNORED },
  { name: "421[1] (numeric event name, ack): 4400 naming it", frames: ["421[1]"], expect: { ack: ACK_BAD_REQUEST_1 } },
  { name: '42["subscribe" unterminated', frames: ['42["subscribe"'], expect: CLOSED },
  {
    name: '42["subscribe",{"channel":"user:x"} unterminated',
    frames: ['42["subscribe",{"channel":"user:x"}'],
    expect: CLOSED,
  },
  { name: "42 with trailing garbage after the array", frames: ['42["subscribe",{}]xyz'], expect: CLOSED },
  { name: "ack id that is not a number (42abc[...])", frames: ['42abc["subscribe",{}]'], expect: CLOSED },
  {
    name: "CONNECT to a namespace that does not exist (40/nope,)",
    frames: ["40/nope,"],
    expect: { reply: '44/nope,{"message":"Invalid namespace"}' },
  },
  {
    name: "CONNECT to a namespace that does not exist, with auth",
    frames: ['40/admin,{"token":"x"}'],
    expect: { reply: '44/admin,{"message":"Invalid namespace"}' },
  },
  {
    name: "EVENT for a namespace that does not exist (42/nope,[...])",
    frames: ['42/nope,["subscribe",{"channel":"user:x"}]'],
    expect: CLOSED,
  },
  {
    name: "EVENT with ack for a namespace that does not exist",
    frames: ['42/nope,1["subscribe",{"channel":"user:x"}]'],
    expect: CLOSED,
  },
  { name: "DISCONNECT for a namespace that does not exist (41/nope,)", frames: ["41/nope,"], expect: CLOSED },
  { name: "namespace without the comma (42/nope[...])", frames: ['42/nope["x"]'], expect: CLOSED },
  {
    name: "BINARY_EVENT 451- whose attachment never comes, then a text packet",
    frames: ['451-["subscribe",{"_placeholder":true,"num":0}]', '421["subscribe",{"channel":"user:x"}]'],
    expect: CLOSED,
  },
  { name: "BINARY_EVENT 450- (zero attachments)", frames: ['450-["subscribe",{"channel":"user:x"}]'], expect: CLOSED },
  { name: "BINARY_EVENT with a non-numeric attachment count (45x-)", frames: ['45x-["a"]'], expect: CLOSED },
  { name: "BINARY_EVENT with a negative attachment count (45-1-)", frames: ['45-1-["a"]'], expect: CLOSED },
  { name: "BINARY_EVENT with a huge attachment count", frames: ['4599999999999-["a"]'], expect: CLOSED },
  {
    name: "BINARY_EVENT whose placeholder points past its attachments",
    frames: ['451-["a",{"_placeholder":true,"num":7}]', { binary: Buffer.from([1, 2, 3]) }],
    expect: CLOSED,
  },
  { name: "BINARY_EVENT without the dash (451[...])", frames: ['451["a"]'], expect: CLOSED },
  {
    name: "BINARY_ACK 461- for an unknown ack id, with its attachment",
    frames: ['461-1[{"_placeholder":true,"num":0}]', { binary: Buffer.from([1]) }],
    expect: IGNORED,
  },
  { name: "ACK for an unknown id (431[...])", frames: ['431[{"ok":true}]'], expect: IGNORED },
  { name: "ACK without an id (43[...])", frames: ["43[{}]"], expect: IGNORED },
  { name: "ACK with a non-array payload (431{...})", frames: ['431{"ok":true}'], expect: CLOSED },
  { name: "ACK with garbage (43abc)", frames: ["43abc"], expect: CLOSED },
  { name: "CONNECT_ERROR sent by the client", frames: ['44{"message":"x"}'], expect: CLOSED },
  { name: "packet type 8 (no such Socket.IO type)", frames: ['48["x"]'], expect: CLOSED },
  { name: "packet type -1 (4-1[...])", frames: ['4-1["a"]'], expect: CLOSED },
  { name: "CONNECT twice (second with a valid-looking auth)", frames: ['40{"token":"x"}'], expect: CLOSED },
  { name: "CONNECT twice (second without auth)", frames: ["40"], expect: CLOSED },
  // (A request in the same tick as the DISCONNECT is dropped with the socket, as Socket.IO does.)
  {
    name: "DISCONNECT (41), then a request on the closed namespace",
    frames: ["41", { waitMs: 100 }, '421["subscribe",{"channel":"user:x"}]'],
    expect: CLOSED,
  },
  { name: "EVENT before CONNECT", stage: "open", frames: ['42["subscribe",{"channel":"user:x"}]'], expect: CLOSED },
  {
    name: "EVENT with ack before CONNECT",
    stage: "open",
    frames: ['421["subscribe",{"channel":"user:x"}]'],
    expect: CLOSED,
  },
  { name: "ACK before CONNECT", stage: "open", frames: ["431[{}]"], expect: CLOSED },
  { name: "DISCONNECT before CONNECT", stage: "open", frames: ["41", "4"], expect: CLOSED },
  { name: "CONNECT whose auth is a string", stage: "open", frames: ['40"token"'], expect: CLOSED },
  { name: "CONNECT whose auth is an array", stage: "open", frames: ['40["token"]'], expect: CLOSED },
  { name: "CONNECT whose auth is invalid JSON", stage: "open", frames: ['40{"token":'], expect: CLOSED },
  {
    name: "ack id at Number.MAX_SAFE_INTEGER is answered with that id",
    frames: ['429007199254740991["frobnicate",{}]'],
    expect: {
      reply:
        '439007199254740991[{"ok":false,"error":{"code":4400,"reason":"bad_request","message":"unknown event frobnicate","event":"frobnicate"}}]',
    },
  },
];

// Request payloads with wrong types. `field` is the field the error must name (docs/protocol.md, "Requests").
interface PayloadCase {
  name: string;
  event: string;
  /** undefined: the EVENT carries no argument at all. */
  payload: unknown;
  code?: number;
  reason?: string;
  field?: string | RegExp;
  /** Built when the case runs (tokens need the clock): the payload becomes { token: await lazyToken() }. */
  lazyToken?: () => Promise<string>;
}

const RAW_SUB = "raw-a";
const OWN = `user:${RAW_SUB}`;
const CHAT = "chat:bad-input";
const LONG_STRING = "x".repeat(10_000);
/**
 * Stands for JSON nested 20 000 arrays deep (40 KB: under the message limit, deeper than
 * JSON.stringify's stack allows), spliced into the frame as text by RawSocket.emit.
 */
const DEEP = { deep: "20 000 nested arrays" };
const DEEP_JSON = `${"[".repeat(20_000)}${"]".repeat(20_000)}`;
const DEEP_MARK = "\u0000deep\u0000";
/** JSON.stringify, with DEEP spliced in as DEEP_JSON. */
function toWire(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (v === DEEP ? DEEP_MARK : v))
    .split(JSON.stringify(DEEP_MARK))
    .join(DEEP_JSON);
}

const notObjects: [string, unknown][] = [
  ["no argument", undefined],
  ["null", null],
  ["a string", OWN],
  ["a number", 7],
  ["an array", [OWN]],
  ["true", true],
];

const badChannels: [string, unknown][] = [
  ["a number", 42],
  ["null", null],
  ["an object", { name: OWN }],
  ["an array", [OWN]],
  ['""', ""],
  ["true", true],
];

const payloadCases: PayloadCase[] = [
  // subscribe
  ...notObjects.map(([what, payload]): PayloadCase => ({
    name: `subscribe: payload is ${what}`,
    event: "subscribe",
    payload,
    field: "payload",
  })),
  { name: "subscribe: channel missing", event: "subscribe", payload: {}, field: "channel" },
  ...badChannels.map(([what, channel]): PayloadCase => ({
    name: `subscribe: channel is ${what}`,
    event: "subscribe",
    payload: { channel },
    field: "channel",
  })),
  { name: "subscribe: since is a string", event: "subscribe", payload: { channel: OWN, since: "abc" }, field: "since" },
  { name: "subscribe: since is null", event: "subscribe", payload: { channel: OWN, since: null }, field: "since" },
  {
    name: "subscribe: since is an array",
    event: "subscribe",
    payload: { channel: OWN, since: [1, "e"] },
    field: "since",
  },
  {
    name: "subscribe: since.offset -1",
    event: "subscribe",
    payload: { channel: OWN, since: { offset: -1, epoch: "e" } },
    field: "since.offset",
  },
  {
    name: "subscribe: since.offset 1.5",
    event: "subscribe",
    payload: { channel: OWN, since: { offset: 1.5, epoch: "e" } },
    field: "since.offset",
  },
  {
    name: "subscribe: since.offset 1e20 (not a safe integer)",
    event: "subscribe",
    payload: { channel: OWN, since: { offset: 1e20, epoch: "e" } },
    field: "since.offset",
  },
  {
    name: 'subscribe: since {offset:"1", epoch:"x"}',
    event: "subscribe",
    payload: { channel: OWN, since: { offset: "1", epoch: "x" } },
    field: "since.offset",
  },
  {
    name: "subscribe: since {epoch:1} (offset missing, epoch a number)",
    event: "subscribe",
    payload: { channel: OWN, since: { epoch: 1 } },
    field: /^since\.(offset|epoch)$/,
  },
  {
    name: "subscribe: since.epoch a number",
    event: "subscribe",
    payload: { channel: OWN, since: { offset: 1, epoch: 1 } },
    field: "since.epoch",
  },
  {
    name: 'subscribe: since.epoch ""',
    event: "subscribe",
    payload: { channel: OWN, since: { offset: 1, epoch: "" } },
    field: "since.epoch",
  },
  {
    name: "subscribe: since.epoch 10 000 chars",
    event: "subscribe",
    payload: { channel: OWN, since: { offset: 1, epoch: LONG_STRING } },
    field: "since.epoch",
  },
  {
    name: "subscribe: since with an extra key",
    event: "subscribe",
    payload: { channel: OWN, since: { offset: 1, epoch: "e", at: 5 } },
    field: /^since/,
  },
  { name: "subscribe: history -1", event: "subscribe", payload: { channel: OWN, history: -1 }, field: "history" },
  { name: "subscribe: history 1.5", event: "subscribe", payload: { channel: OWN, history: 1.5 }, field: "history" },
  { name: 'subscribe: history "10"', event: "subscribe", payload: { channel: OWN, history: "10" }, field: "history" },
  { name: "subscribe: history 1e9", event: "subscribe", payload: { channel: OWN, history: 1e9 }, field: "history" },
  { name: "subscribe: history null", event: "subscribe", payload: { channel: OWN, history: null }, field: "history" },
  { name: "subscribe: history true", event: "subscribe", payload: { channel: OWN, history: true }, field: "history" },
  { name: 'subscribe: filter "x"', event: "subscribe", payload: { channel: OWN, filter: "x" }, field: "filter" },
  { name: "subscribe: filter a number", event: "subscribe", payload: { channel: OWN, filter: 1 }, field: "filter" },
  {
    name: 'subscribe: filter.stream "nope"',
    event: "subscribe",
    payload: { channel: OWN, filter: { stream: "nope" } },
    field: "filter.stream",
  },
  {
    name: "subscribe: filter with an unknown key",
    event: "subscribe",
    payload: { channel: OWN, filter: { regex: ".*" } },
    field: /^filter/,
  },
  {
    name: 'subscribe: filter.level "verbose"',
    event: "subscribe",
    payload: { channel: OWN, filter: { level: "verbose" } },
    field: "filter.level",
  },
  {
    name: "subscribe: filter.level 3",
    event: "subscribe",
    payload: { channel: OWN, filter: { level: 3 } },
    field: "filter.level",
  },
  {
    name: 'subscribe: filter.contains ""',
    event: "subscribe",
    payload: { channel: OWN, filter: { contains: "" } },
    field: "filter.contains",
  },
  {
    name: "subscribe: filter.contains 10 000 chars",
    event: "subscribe",
    payload: { channel: OWN, filter: { contains: LONG_STRING } },
    field: "filter.contains",
  },
  { name: "subscribe: an extra key", event: "subscribe", payload: { channel: OWN, extra: true }, field: "payload" },
  {
    name: 'subscribe: a "__proto__" key',
    event: "subscribe",
    payload: JSON.parse(`{"channel":"${OWN}","__proto__":{"admin":true}}`),
    field: "payload",
  },
  {
    name: 'subscribe: a "constructor" key',
    event: "subscribe",
    payload: { channel: OWN, constructor: { prototype: { admin: true } } },
    field: "payload",
  },
  // unsubscribe
  ...notObjects.map(([what, payload]): PayloadCase => ({
    name: `unsubscribe: payload is ${what}`,
    event: "unsubscribe",
    payload,
    field: "payload",
  })),
  { name: "unsubscribe: channel missing", event: "unsubscribe", payload: {}, field: "channel" },
  ...badChannels.map(([what, channel]): PayloadCase => ({
    name: `unsubscribe: channel is ${what}`,
    event: "unsubscribe",
    payload: { channel },
    field: "channel",
  })),
  {
    name: "unsubscribe: an extra key",
    event: "unsubscribe",
    payload: { channel: OWN, since: { offset: 1, epoch: "e" } },
    field: "payload",
  },
  // publish (chat:* allows client publish with scope chat:write, which the raw client has)
  ...notObjects.map(([what, payload]): PayloadCase => ({
    name: `publish: payload is ${what}`,
    event: "publish",
    payload,
    field: "payload",
  })),
  ...badChannels.map(([what, channel]): PayloadCase => ({
    name: `publish: channel is ${what}`,
    event: "publish",
    payload: { channel, type: "t", data: 1 },
    field: "channel",
  })),
  { name: "publish: channel missing", event: "publish", payload: { type: "t", data: 1 }, field: "channel" },
  { name: "publish: type a number", event: "publish", payload: { channel: CHAT, type: 7, data: 1 }, field: "type" },
  { name: 'publish: type ""', event: "publish", payload: { channel: CHAT, type: "", data: 1 }, field: "type" },
  {
    name: "publish: type 65 chars",
    event: "publish",
    payload: { channel: CHAT, type: "t".repeat(65), data: 1 },
    field: "type",
  },
  {
    name: "publish: type 10 000 chars",
    event: "publish",
    payload: { channel: CHAT, type: LONG_STRING, data: 1 },
    field: "type",
  },
  {
    name: "publish: type with spaces",
    event: "publish",
    payload: { channel: CHAT, type: "has space", data: 1 },
    field: "type",
  },
  {
    name: "publish: type with a newline",
    event: "publish",
    payload: { channel: CHAT, type: "a\nb", data: 1 },
    field: "type",
  },
  {
    name: "publish: type non-ASCII",
    event: "publish",
    payload: { channel: CHAT, type: "événement", data: 1 },
    field: "type",
  },
  { name: "publish: type null", event: "publish", payload: { channel: CHAT, type: null, data: 1 }, field: "type" },
  { name: "publish: type missing", event: "publish", payload: { channel: CHAT, data: 1 }, field: "type" },
  { name: "publish: data missing", event: "publish", payload: { channel: CHAT, type: "t" }, field: "data" },
  {
    name: "publish: data nested 20 000 arrays deep",
    event: "publish",
    payload: { channel: CHAT, type: "t", data: DEEP },
  },
  {
    name: "subscribe: an extra key nested 20 000 arrays deep",
    event: "subscribe",
    payload: { channel: OWN, deep: DEEP },
    field: "payload",
  },
  {
    name: "publish: an extra key (priority is HTTP only)",
    event: "publish",
    payload: { channel: CHAT, type: "t", data: 1, priority: "critical" },
    field: "payload",
  },
  // control
  ...notObjects.map(([what, payload]): PayloadCase => ({
    name: `control: payload is ${what}`,
    event: "control",
    payload,
    field: "payload",
  })),
  { name: 'control: action "nope"', event: "control", payload: { channel: OWN, action: "nope" }, field: "action" },
  { name: "control: action 1", event: "control", payload: { channel: OWN, action: 1 }, field: "action" },
  { name: "control: action null", event: "control", payload: { channel: OWN, action: null }, field: "action" },
  {
    name: 'control: action "PAUSE" (case)',
    event: "control",
    payload: { channel: OWN, action: "PAUSE" },
    field: "action",
  },
  { name: "control: action missing", event: "control", payload: { channel: OWN }, field: "action" },
  { name: "control: channel missing", event: "control", payload: { action: "pause" }, field: "channel" },
  { name: "control: channel a number", event: "control", payload: { channel: 1, action: "pause" }, field: "channel" },
  {
    name: 'control: filter "x"',
    event: "control",
    payload: { channel: OWN, action: "filter", filter: "x" },
    field: "filter",
  },
  {
    name: "control: action filter without a filter",
    event: "control",
    payload: { channel: OWN, action: "filter" },
    field: "filter",
  },
  {
    name: 'control: filter.stream "all"',
    event: "control",
    payload: { channel: OWN, action: "filter", filter: { stream: "all" } },
    field: "filter.stream",
  },
  {
    name: "control: an extra key",
    event: "control",
    payload: { channel: OWN, action: "pause", at: 1 },
    field: "payload",
  },
  {
    name: "control: pause a channel it is not subscribed to",
    event: "control",
    payload: { channel: "user:raw-a-other", action: "pause" },
    field: "channel",
  },
  // refresh
  ...notObjects.map(([what, payload]): PayloadCase => ({
    name: `refresh: payload is ${what}`,
    event: "refresh",
    payload,
    field: "payload",
  })),
  { name: "refresh: token missing", event: "refresh", payload: {}, field: "token" },
  { name: "refresh: token a number", event: "refresh", payload: { token: 42 }, field: "token" },
  { name: 'refresh: token ""', event: "refresh", payload: { token: "" }, field: "token" },
  { name: "refresh: token null", event: "refresh", payload: { token: null }, field: "token" },
  { name: "refresh: token an object", event: "refresh", payload: { token: { jwt: "a.b.c" } }, field: "token" },
  { name: "refresh: token 20 000 chars", event: "refresh", payload: { token: "a".repeat(20_000) }, field: "token" },
  { name: "refresh: an extra key", event: "refresh", payload: { token: "a.b.c", sub: "admin" }, field: "payload" },
  {
    name: 'refresh: token "a.b.c" (invalid JWT)',
    event: "refresh",
    payload: { token: "a.b.c" },
    code: 4401,
    reason: "unauthorized",
  },
  {
    name: "refresh: token of one segment",
    event: "refresh",
    payload: { token: "garbage" },
    code: 4401,
    reason: "unauthorized",
  },
];

// Refresh tokens that are well-formed strings but must be refused 4401 (the connection keeps its grants).
const tamperedRefresh: [string, () => Promise<string>][] = [
  ["alg none", async () => `${b64json({ alg: "none", typ: "JWT" })}.${b64json(claimsFor(RAW_SUB))}.`],
  ["expired", () => sign(claimsFor(RAW_SUB, { exp: nowS() - 60 }), "HS256", hsKey)],
  ["for another sub", () => validToken("A", "someone-else")],
  [
    "signed with another secret",
    () => sign(claimsFor(RAW_SUB), "HS256", new TextEncoder().encode("another-secret-that-is-long-enough-too")),
  ],
  ["RS256 (not configured on this replica)", () => validToken("B", RAW_SUB)],
  ["HS512 with the right secret", () => sign(claimsFor(RAW_SUB), "HS512", hsKey)],
];
payloadCases.push(
  ...tamperedRefresh.map(([what, lazyToken]): PayloadCase => ({
    name: `refresh: token ${what}`,
    event: "refresh",
    payload: {},
    lazyToken,
    code: 4401,
    reason: "unauthorized",
  })),
);

// Unknown events, and names that look like reserved ones.
interface UnknownEventCase {
  name: string;
  event: unknown;
  payload?: unknown;
  /** `answered`: 4400 naming it with an ack, ignored without; `closed`: a protocol violation (Socket.IO reserved name). */
  expect: "answered" | "closed";
}

const unknownEventCases: UnknownEventCase[] = [
  { name: "frobnicate", event: "frobnicate", expect: "answered" },
  { name: "empty name", event: "", expect: "answered" },
  { name: "a 10 000-character name", event: "e".repeat(10_000), expect: "answered" },
  { name: "a name with a newline and quotes", event: 'a\n"b"', expect: "answered" },
  { name: "a numeric name 0", event: 0, expect: "answered" },
  { name: "a negative numeric name", event: -1, expect: "answered" },
  { name: "error", event: "error", expect: "answered" },
  {
    name: "frobnicate with a payload nested 20 000 arrays deep",
    event: "frobnicate",
    payload: DEEP,
    expect: "answered",
  },
  { name: "welcome (a server-to-client name)", event: "welcome", expect: "answered" },
  { name: "event (a server-to-client name)", event: "event", expect: "answered" },
  { name: "failure (a server-to-client name)", event: "failure", expect: "answered" },
  { name: "closing (a server-to-client name)", event: "closing", expect: "answered" },
  { name: "__proto__", event: "__proto__", expect: "answered" },
  { name: "constructor", event: "constructor", expect: "answered" },
  { name: "toString", event: "toString", expect: "answered" },
  { name: "hasOwnProperty", event: "hasOwnProperty", expect: "answered" },
  { name: "Subscribe (case differs)", event: "Subscribe", expect: "answered" },
  { name: '"subscribe " (trailing space)', event: "subscribe ", expect: "answered" },
  { name: "connect (reserved)", event: "connect", expect: "closed" },
  { name: "connect_error (reserved)", event: "connect_error", expect: "closed" },
  { name: "disconnect (reserved)", event: "disconnect", expect: "closed" },
  { name: "disconnecting (reserved)", event: "disconnecting", expect: "closed" },
  { name: "newListener (reserved)", event: "newListener", expect: "closed" },
  { name: "removeListener (reserved)", event: "removeListener", expect: "closed" },
];

// Channel names that break `^[a-z][a-z0-9_-]{0,31}:[A-Za-z0-9_.:@-]{1,200}$`.
const invalidChannelNames: string[] = [
  "UPPER:x",
  "User:x",
  "nocolon",
  "user",
  "user:",
  ":x",
  ":",
  "::",
  `${"n".repeat(33)}:x`,
  `user:${"x".repeat(201)}`,
  `user:${"x".repeat(5000)}`,
  "1user:x",
  "_user:x",
  "-user:x",
  "usér:x",
  "user:é",
  "user:日本",
  "user:😀",
  "user:a\u200bb",
  "user:a\u202eb",
  "user:a b",
  " user:x",
  "user:x ",
  "user :x",
  "user:a\tb",
  "user:x\n",
  "user:a\u0000b",
  "user:a/b",
  "user/a:b",
  "user:../../etc/passwd",
  "user:a\\b",
  "user:{a}",
  "user:a{b",
  "user:a}b",
  "{user}:x",
  "user:a#b",
  "user:a?b",
  "user:a%2Fb",
  "user:a*b",
  "user:a,b",
  "user:a;b",
  'user:a"b',
  "user:a'b",
  "user:a$b",
  "user:a+b",
  "user:a~b",
  "user:<script>",
];

// Tampered tokens at the handshake. Tokens are built when the case runs (they need the clock).
interface TokenCase {
  name: string;
  replica: ReplicaName;
  /** The CONNECT auth payload (undefined: none); `token` replaces its token with the built one. */
  auth?: () => Promise<unknown>;
  /** The Authorization header instead. */
  header?: () => Promise<string>;
}

const TAMPER_SUB = "tamper";
const tamperClaims = () => claimsFor(TAMPER_SUB);
const goodHs = () => validToken("A", TAMPER_SUB);
const goodRs = () => validToken("B", TAMPER_SUB);
const segments = async (t: Promise<string>) => (await t).split(".") as [string, string, string];
const flip = (sig: string) => (sig[0] === "A" ? "B" : "A") + sig.slice(1);
const none = (header: Record<string, unknown>, signature = "") =>
  `${b64json(header)}.${b64json(tamperClaims())}.${signature}`;
const hsWith = (extra: Record<string, unknown>) => sign({ ...tamperClaims(), ...extra }, "HS256", hsKey);
const rsWith = (extra: Record<string, unknown>) => sign({ ...tamperClaims(), ...extra }, "RS256", rsa.privateKey);
const withoutClaim = (claim: string, replica: ReplicaName) => {
  const c: Record<string, unknown> = tamperClaims();
  delete c[claim];
  return replica === "A" ? sign(c, "HS256", hsKey) : sign(c, "RS256", rsa.privateKey);
};
/** A correctly signed HS256 token (the real secret) with this header and payload text, whatever they hold. */
const hsRaw = (header: Record<string, unknown>, payload: string) => {
  const head = b64json(header);
  const body = b64url(payload);
  return `${head}.${body}.${createHmac("sha256", TEST_SECRET).update(`${head}.${body}`).digest("base64url")}`;
};
const hsWithPayload = async (payload: string) => hsRaw({ alg: "HS256", typ: "JWT" }, payload);

const tok = (name: string, replica: ReplicaName, build: () => Promise<string> | string): TokenCase => ({
  name,
  replica,
  auth: async () => ({ token: await build() }),
});

const tokenCases: TokenCase[] = [
  ...(["A", "B"] as const).flatMap((replica) => [
    tok("alg none, empty signature", replica, () => none({ alg: "none", typ: "JWT" })),
    tok("alg None, empty signature", replica, () => none({ alg: "None" })),
    tok("alg NONE, with a real token's signature", replica, async () =>
      none({ alg: "NONE" }, (await segments(replica === "A" ? goodHs() : goodRs()))[2]),
    ),
    tok("alg none without the trailing dot", replica, () => none({ alg: "none" }).slice(0, -1)),
  ]),
  // HS/RS confusion: HS256 signed with the replica's RSA public key as the HMAC secret.
  tok("HS256 signed with the RSA public key PEM as HMAC secret (HS/RS confusion)", "B", () =>
    sign(tamperClaims(), "HS256", new TextEncoder().encode(RSA_PUBLIC_PEM)),
  ),
  tok("HS256 signed with the PEM without its trailing newline", "B", () =>
    sign(tamperClaims(), "HS256", new TextEncoder().encode(RSA_PUBLIC_PEM.trimEnd())),
  ),
  tok("HS256 signed with the DER public key as HMAC secret", "B", () =>
    sign(tamperClaims(), "HS256", rsa.publicKey.export({ type: "spki", format: "der" })),
  ),
  tok("RS256 token against the HS256 replica", "A", goodRs),
  tok("RS256 signed by an unknown key", "B", () => sign(tamperClaims(), "RS256", stranger.privateKey)),
  tok("RS384 signed by the right key (algorithm not pinned)", "B", () => sign(tamperClaims(), "RS384", rsa.privateKey)),
  tok("PS256 signed by the right key (algorithm not pinned)", "B", () => sign(tamperClaims(), "PS256", rsa.privateKey)),
  tok("ES256 token against the RS256 replica", "B", () => sign(tamperClaims(), "ES256", ec.privateKey)),
  tok("HS512 signed with the right secret (algorithm not pinned)", "A", () => sign(tamperClaims(), "HS512", hsKey)),
  tok("HS384 signed with the right secret (algorithm not pinned)", "A", () => sign(tamperClaims(), "HS384", hsKey)),
  tok("expired (HS256)", "A", () => hsWith({ exp: nowS() - 120 })),
  tok("expired (RS256)", "B", () => rsWith({ exp: nowS() - 120 })),
  tok("not yet valid, nbf in an hour (HS256)", "A", () => hsWith({ nbf: nowS() + 3600 })),
  tok("not yet valid, nbf in an hour (RS256)", "B", () => rsWith({ nbf: nowS() + 3600 })),
  tok("wrong signature: another secret", "A", () =>
    sign(tamperClaims(), "HS256", new TextEncoder().encode("not-the-secret-but-long-enough-for-hs256")),
  ),
  tok("wrong signature: one character flipped (HS256)", "A", async () => {
    const [h, b, s] = await segments(goodHs());
    return `${h}.${b}.${flip(s)}`;
  }),
  tok("wrong signature: one character flipped (RS256)", "B", async () => {
    const [h, b, s] = await segments(goodRs());
    return `${h}.${b}.${flip(s)}`;
  }),
  tok("a real signature over a swapped payload (sub admin, scope admin)", "A", async () => {
    const [h, , s] = await segments(goodHs());
    return `${h}.${b64json({ ...tamperClaims(), sub: "admin", scope: "admin" })}.${s}`;
  }),
  tok("truncated: last 10 characters cut", "A", async () => (await goodHs()).slice(0, -10)),
  tok("truncated: signature cut off", "A", async () => (await segments(goodHs())).slice(0, 2).join(".")),
  tok("truncated: header only", "B", async () => (await segments(goodRs()))[0]),
  tok("truncated: half the token", "B", async () => {
    const t = await goodRs();
    return t.slice(0, Math.floor(t.length / 2));
  }),
  tok("extra segments (4)", "A", async () => {
    const t = await goodHs();
    return `${t}.${t.split(".")[2]}`;
  }),
  tok("extra segments (5, JWE-shaped)", "A", async () => `${await goodHs()}.x.y`),
  tok("payload not JSON (correctly signed)", "A", () => hsWithPayload("not json")),
  tok("payload a JSON array (correctly signed)", "A", () => hsWithPayload(JSON.stringify([tamperClaims()]))),
  tok("payload a JSON string (correctly signed)", "A", () => hsWithPayload(JSON.stringify("claims"))),
  tok("header not JSON", "A", async () => {
    const [, b, s] = await segments(goodHs());
    return `${b64url("not json")}.${b}.${s}`;
  }),
  tok("segments not base64url", "A", () => "!!!.@@@.###"),
  tok("sub a number", "A", () => hsWith({ sub: 42 })),
  tok("sub an empty string", "A", () => hsWith({ sub: "" })),
  tok("sub null", "B", () => rsWith({ sub: null })),
  tok("sub an array", "B", () => rsWith({ sub: [TAMPER_SUB] })),
  tok("sub an object", "A", () => hsWith({ sub: { id: TAMPER_SUB } })),
  tok("sub missing", "A", () => withoutClaim("sub", "A")),
  tok("exp missing", "B", () => withoutClaim("exp", "B")),
  tok("exp a string", "A", () => hsWith({ exp: String(nowS() + 3600) })),
  tok("crit header naming an unknown extension (correctly signed)", "A", () =>
    hsRaw({ alg: "HS256", crit: ["x-unknown"], "x-unknown": 1 }, JSON.stringify(tamperClaims())),
  ),
  tok("a 10 000-character token", "A", () => `${"a".repeat(5000)}.${"b".repeat(4999)}`),
  tok("a valid token with spaces around it", "A", async () => ` ${await goodHs()} `),
  tok('"Bearer <valid token>" as the token', "A", async () => `Bearer ${await goodHs()}`),
  // Auth payload shapes
  { name: "no auth payload (40)", replica: "A" },
  { name: "auth {}", replica: "A", auth: async () => ({}) },
  { name: 'token ""', replica: "A", auth: async () => ({ token: "" }) },
  { name: "token a number", replica: "A", auth: async () => ({ token: 42 }) },
  { name: "token null", replica: "B", auth: async () => ({ token: null }) },
  {
    name: "token an object holding a valid token",
    replica: "B",
    auth: async () => ({ token: { jwt: await goodRs() } }),
  },
  { name: "token an array holding a valid token", replica: "A", auth: async () => ({ token: [await goodHs()] }) },
  { name: "a valid token under another key", replica: "A", auth: async () => ({ jwt: await goodHs() }) },
  // The Authorization header instead of the auth payload
  {
    name: "Authorization: Bearer <alg-none token>",
    replica: "A",
    header: async () => `Bearer ${none({ alg: "none" })}`,
  },
  {
    name: "Authorization: Bearer <expired RS256 token>",
    replica: "B",
    header: async () => `Bearer ${await rsWith({ exp: nowS() - 120 })}`,
  },
  { name: "Authorization: Basic", replica: "A", header: async () => `Basic ${b64url("admin:admin")}` },
  { name: "Authorization: Bearer with nothing after it", replica: "A", header: async () => "Bearer" },
];

// ---------------------------------------------------------------------------------------
// The suite
// ---------------------------------------------------------------------------------------

interface Replica {
  name: ReplicaName;
  gw: GatewayProcess;
  quiet: TestSocket;
  channel: string;
  publisher: string;
  seen: ChannelEvent[];
  /** Offsets of the check events published to the quiet client's channel, in order. */
  expected: number[];
  /** Anything the quiet client received that it should not have. */
  problems: string[];
}

const counts = new Map<string, number>();
function count(category: string, n = 1): void {
  counts.set(category, (counts.get(category) ?? 0) + n);
}

describe("bad input", () => {
  let cluster: TestCluster;
  let dir: string;
  let admin: string;
  const replicas = {} as Record<ReplicaName, Replica>;
  const opened: RawSocket[] = [];
  let checks = 0;
  const started = Date.now();

  /** The replica still serves: alive, ready, and its quiet client gets a fresh event once. */
  async function assertServes(r: Replica, after: string): Promise<void> {
    assert.equal(
      r.gw.process.exitCode,
      null,
      `replica ${r.name} exited after "${after}": ${r.gw.output().slice(-2000)}`,
    );
    assert.equal(r.gw.process.signalCode, null, `replica ${r.name} was killed after "${after}"`);
    const ready = await fetch(`${r.gw.url}/readyz`);
    assert.equal(ready.status, 200, `replica ${r.name} /readyz after "${after}"`);
    await ready.arrayBuffer();
    assert.equal(r.quiet.connected, true, `replica ${r.name}'s quiet client was disconnected after "${after}"`);
    const n = ++checks;
    const res = await httpPublish(r.gw.url, r.publisher, r.channel, {
      type: "check",
      data: { n, after: after.slice(0, 200) },
    });
    assert.equal(res.status, 202, `publish on ${r.name} after "${after}": ${JSON.stringify(res.body)}`);
    const offset = res.body.offset as number;
    r.expected.push(offset);
    await waitUntil(
      () => r.seen.some((e) => e.offset === offset),
      5000,
      `the check event (offset ${offset}) on ${r.name}'s quiet client after "${after}"`,
    );
    assert.equal(
      r.seen.filter((e) => e.offset === offset).length,
      1,
      `check event ${offset} delivered more than once on ${r.name}`,
    );
    assert.deepEqual(r.problems, [], `${r.name}'s quiet client got unexpected messages`);
  }

  /** Runs a case, then the health check even if the case failed; reports both failures. */
  async function guarded(r: Replica, name: string, body: () => Promise<void>): Promise<void> {
    let caseError: unknown;
    try {
      await body();
    } catch (err) {
      caseError = err;
    }
    try {
      await assertServes(r, name);
    } catch (healthError) {
      if (caseError)
        throw new AggregateError(
          [caseError, healthError],
          `case failed, and the replica did not serve after it: ${(healthError as Error).message}`,
        );
      throw healthError;
    }
    if (caseError) throw caseError;
  }

  async function rawConnected(r: Replica, sub: string, extra: Record<string, unknown> = {}): Promise<RawSocket> {
    const raw = await RawSocket.connected(r.gw.url, sub, await validToken(r.name, sub, extra));
    opened.push(raw);
    return raw;
  }

  async function rawOpen(r: Replica, sub: string, headers: Record<string, string> = {}): Promise<RawSocket> {
    const raw = await RawSocket.open(r.gw.url, sub, headers);
    opened.push(raw);
    return raw;
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "roomcast-bad-input-"));
    const configFile = writeChatConfig(dir);
    writeFileSync(join(dir, "rsa.pem"), RSA_PUBLIC_PEM);
    cluster = await startCluster({
      replicas: 0,
      env: {
        ROOMCAST_CONFIG: configFile,
        ROOMCAST_MAX_MESSAGE_BYTES: String(MAX_MESSAGE_BYTES),
        ROOMCAST_RATE_LIMIT: "0",
        ROOMCAST_HTTP_RATE_LIMIT: "0",
        ROOMCAST_MAX_CONNECTIONS_PER_USER: "0",
        ROOMCAST_MAX_CONNECTIONS_PER_IP: "0",
      },
    });
    const [a, b] = await Promise.all([
      cluster.addGateway(),
      cluster.addGateway({ ROOMCAST_JWT_SECRET: "", ROOMCAST_JWT_PUBLIC_KEY_FILE: join(dir, "rsa.pem") }),
    ]);
    admin = await token({ sub: "bad-input-admin", scope: "admin publish" });
    for (const [name, gw] of [
      ["A", a],
      ["B", b],
    ] as const) {
      const channel = `user:quiet-${name.toLowerCase()}`;
      const quiet = await connect(gw.url, { token: await validToken(name, `quiet-${name.toLowerCase()}`) });
      const seen: ChannelEvent[] = [];
      const problems: string[] = [];
      quiet.on("event", (e) => (e.channel === channel ? seen.push(e) : problems.push(`event on ${e.channel}`)));
      for (const unexpected of ["failure", "closing", "unsubscribed", "lag", "disconnect"] as const) {
        (quiet as unknown as { on(ev: string, fn: (x: unknown) => void): void }).on(unexpected, (x) =>
          problems.push(`${unexpected} ${JSON.stringify(x)}`),
        );
      }
      const answer = (await (
        quiet as unknown as { timeout(ms: number): { emitWithAck(ev: string, p: unknown): Promise<Answer> } }
      )
        .timeout(5000)
        .emitWithAck("subscribe", { channel })) as Answer;
      assert.equal(answer.ok, true, JSON.stringify(answer));
      replicas[name] = {
        name,
        gw,
        quiet,
        channel,
        publisher: await validToken(name, "bad-input-publisher", { scope: "publish admin" }),
        seen,
        expected: [],
        problems,
      };
    }
    await assertServes(replicas.A, "start");
    await assertServes(replicas.B, "start");
  });

  after(async () => {
    for (const raw of opened) raw.close();
    for (const r of Object.values(replicas)) r.quiet.close();
    await cluster?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
    const total = [...counts.values()].reduce((a, b) => a + b, 0);
    console.log(
      `bad-input cases: ${[...counts].map(([k, v]) => `${k} ${v}`).join(", ")}; total ${total} (${((Date.now() - started) / 1000).toFixed(1)} s)`,
    );
  });

  // -------------------------------------------------------------------------------------
  async function runFrameCase(r: Replica, c: FrameCase): Promise<void> {
    const sub = `frames-${r.name.toLowerCase()}`;
    const raw = c.stage === "open" ? await rawOpen(r, sub) : await rawConnected(r, sub);
    const mark = raw.received.length;
    for (const f of c.frames) {
      if (typeof f !== "string" && "waitMs" in f) await new Promise((resolve) => setTimeout(resolve, f.waitMs));
      else raw.send(f);
    }
    const expect = c.expect;
    if ("closed" in expect) {
      const info = await raw.closed(3000);
      if (expect.code !== undefined) assert.equal(info.code, expect.code, `close code ${info.code} ${info.reason}`);
      const after = raw.received.slice(mark);
      assert.ok(
        !after.some((m) => m.startsWith('42["welcome"')),
        `a welcome after ${c.frames.map(describeFrame).join(", ")}`,
      );
      return;
    }
    if (c.stage === "open") {
      // Before CONNECT, "keeps serving" means the handshake can still be made on this connection.
      const answer = await raw.waitFor((m) => m.startsWith("4"), 3000, "an answer", mark);
      if ("reply" in expect) assert.equal(answer, expect.reply);
      else assert.fail(`unexpected answer ${answer}`);
      raw.send(`40${JSON.stringify({ token: await validToken(r.name, sub) })}`);
      await raw.waitFor((m) => m.startsWith('42["welcome",'), 3000, "welcome after the case", mark);
      return;
    }
    const between = await raw.probe(mark);
    if ("ignored" in expect) {
      assert.deepEqual(between, [], `expected no answer to ${c.frames.map(describeFrame).join(", ")}`);
    } else if ("reply" in expect) {
      assert.deepEqual(between, [expect.reply]);
    } else {
      assert.equal(between.length, 1, `expected exactly one answer, got ${JSON.stringify(between)}`);
      const m = /^431(\[.*)$/s.exec(between[0]!);
      assert.ok(m, `expected an ACK with id 1, got ${between[0]}`);
      expect.ack((JSON.parse(m[1]!) as Answer[])[0]!);
    }
    assert.equal(raw.isOpen, true);
    raw.close();
  }

  describe("malformed Engine.IO frames", () => {
    engineIoCases.forEach((c, i) => {
      count("engine.io frames");
      const r = i % 2 === 0 ? "A" : "B";
      it(`[${r}] ${c.name}`, () => guarded(replicas[r], c.name, () => runFrameCase(replicas[r], c)));
    });
  });

  describe("malformed Socket.IO packets", () => {
    socketIoCases.forEach((c, i) => {
      count("socket.io packets");
      const r = i % 2 === 0 ? "B" : "A";
      it(`[${r}] ${c.name}`, () => guarded(replicas[r], c.name, () => runFrameCase(replicas[r], c)));
    });
  });

  // -------------------------------------------------------------------------------------
  describe("huge frames", () => {
    const huge = (r: ReplicaName, name: string, body: (replica: Replica) => Promise<void>) => {
      count("huge frames");
      it(`[${r}] ${name}`, () => guarded(replicas[r], name, () => body(replicas[r])));
    };
    const OVER = Math.floor(MAX_MESSAGE_BYTES * 1.5);
    const historyOf = async (r: Replica, channel: string) => {
      const res = await fetchResult(`${r.gw.url}/v1/channels/${channel}/history`, {
        headers: { authorization: `Bearer ${r.publisher}` },
      });
      assert.equal(res.status, 200, res.text);
      return res.json!.events as unknown[];
    };

    huge(
      "A",
      "a publish over ROOMCAST_MAX_MESSAGE_BYTES but under the Socket.IO buffer limit, with ack: 4413 too_large, nothing published",
      async (r) => {
        const raw = await rawConnected(r, "huge-a", { scope: "chat:write" });
        const maxPayload = raw.openPacket!.maxPayload;
        assert.ok(
          OVER > MAX_MESSAGE_BYTES && OVER + 100 < maxPayload,
          `test setup: ${OVER} vs ${MAX_MESSAGE_BYTES} / ${maxPayload}`,
        );
        refusedWith(
          await raw.request("publish", { channel: "chat:huge-a", type: "big", data: "x".repeat(OVER) }),
          4413,
          "too_large",
        );
        assert.equal(raw.isOpen, true);
        await raw.probe(raw.received.length);
        assert.deepEqual(await historyOf(r, "chat:huge-a"), [], "an oversized publish was published");
      },
    );

    huge("B", "the same oversized publish without ack: a failure event with 4413 too_large", async (r) => {
      const raw = await rawConnected(r, "huge-b", { scope: "chat:write" });
      const mark = raw.received.length;
      raw.emit("publish", { channel: "chat:huge-b", type: "big", data: "x".repeat(OVER) }, false);
      const between = await raw.probe(mark);
      assert.equal(
        between.length,
        1,
        `expected one failure event, got ${JSON.stringify(between.map((m) => m.slice(0, 300)))}`,
      );
      const [name, failure] = parseEvent(between[0]!) ?? [];
      assert.equal(name, "failure", between[0]);
      assert.deepEqual(Object.keys(failure!).sort(), ["channel", "error", "event"]);
      assert.equal(failure!.event, "publish");
      assert.equal(failure!.channel, "chat:huge-b");
      refusedWith({ ok: false, error: failure!.error as ErrorBody }, 4413, "too_large");
      assert.deepEqual(await historyOf(r, "chat:huge-b"), [], "an oversized publish was published");
    });

    huge(
      "A",
      "a publish of 25 000 x U+65E5 (75 KB of UTF-8, 25 000 characters): 4413 too_large, nothing published",
      async (r) => {
        const raw = await rawConnected(r, "huge-a-utf8", { scope: "chat:write" });
        const data = "\u65e5".repeat(25_000);
        const frame = `42100${JSON.stringify(["publish", { channel: "chat:huge-utf8", type: "big", data }])}`;
        assert.ok(Buffer.byteLength(frame) > MAX_MESSAGE_BYTES && frame.length < MAX_MESSAGE_BYTES, "test setup");
        const answer = await raw.request("publish", { channel: "chat:huge-utf8", type: "big", data });
        refusedWith(answer, 4413, "too_large");
        assert.deepEqual(await historyOf(r, "chat:huge-utf8"), [], "a publish over the byte limit was published");
      },
    );

    huge("A", "an oversized subscribe (a 100 KB key): 4413 too_large", async (r) => {
      const raw = await rawConnected(r, "huge-a2");
      refusedWith(
        await raw.request("subscribe", { channel: "user:huge-a2", pad: "p".repeat(100_000) }),
        4413,
        "too_large",
      );
      assert.equal(raw.isOpen, true);
    });

    huge("B", "an oversized unknown event with ack: refused (4413 or 4400), the connection stays", async (r) => {
      const raw = await rawConnected(r, "huge-b2");
      const answer = await raw.request("frobnicate", { pad: "p".repeat(100_000) });
      assert.equal(answer.ok, false);
      assert.ok(
        [4413, 4400].includes((answer as { error: ErrorBody }).error.code),
        JSON.stringify(answer).slice(0, 300),
      );
      await raw.probe(raw.received.length);
    });

    huge("A", "a publish just under the limit is accepted (the limit is not too strict)", async (r) => {
      const raw = await rawConnected(r, "huge-a3", { scope: "chat:write" });
      const answer = await raw.request("publish", {
        channel: "chat:huge-a3",
        type: "big",
        data: "x".repeat(MAX_MESSAGE_BYTES / 2),
      });
      assert.equal(answer.ok, true, JSON.stringify(answer).slice(0, 300));
    });

    for (const [r, kind] of [
      ["B", "text"],
      ["A", "binary"],
    ] as const) {
      huge(
        r,
        `a ${kind} frame far over the Socket.IO buffer limit: the connection is dropped (1009), the replica keeps serving`,
        async (replica) => {
          const raw = await rawConnected(replica, `huge-${kind}`);
          const size = raw.openPacket!.maxPayload * 3;
          raw.send(
            kind === "text"
              ? `421${JSON.stringify(["subscribe", { channel: `user:huge-${kind}`, pad: "z".repeat(size) }])}`
              : { binary: Buffer.alloc(size, 0x41) },
          );
          const info = await raw.closed(5000);
          assert.equal(info.code, 1009, `close ${info.code} ${info.reason}`);
        },
      );
    }

    huge("B", "a frame over the buffer limit before CONNECT: dropped, the replica keeps serving", async (r) => {
      const raw = await rawOpen(r, "huge-pre");
      raw.send(`40${JSON.stringify({ token: "t".repeat(raw.openPacket!.maxPayload * 2) })}`);
      const info = await raw.closed(5000);
      assert.equal(info.code, 1009, `close ${info.code} ${info.reason}`);
    });
  });

  // -------------------------------------------------------------------------------------
  describe("wrong types in request payloads", () => {
    let raw: RawSocket | undefined;

    /** The shared connection, reopened if a case closed it (which fails that case). */
    async function shared(): Promise<RawSocket> {
      if (!raw || !raw.isOpen) {
        raw = await rawConnected(replicas.A, RAW_SUB, { scope: "chat:write" });
        const sub = await raw.request("subscribe", { channel: OWN });
        assert.equal(sub.ok, true, JSON.stringify(sub));
      }
      return raw;
    }

    for (const mode of ["ack", "no ack"] as const) {
      for (const c of payloadCases) {
        count("request payloads");
        it(`[A] ${c.name} (${mode})`, () =>
          guarded(replicas.A, `${c.name} (${mode})`, async () => {
            const socket = await shared();
            const payload = c.lazyToken ? { token: await c.lazyToken() } : c.payload;
            const code = c.code ?? 4400;
            const reason = c.reason ?? "bad_request";
            const mark = socket.received.length;
            if (mode === "ack") {
              const id = socket.emit(c.event, payload, true)!;
              const answer = await socket.ackOf(id, 5000, mark);
              const error = refusedWith(answer, code, reason, c.field);
              if (typeof c.field === "string")
                assert.ok(error.message.startsWith(`${c.field}:`), `the message names the field: ${error.message}`);
              const others = socket.received.slice(mark).filter((m) => !m.startsWith(`43${id}[`));
              assert.deepEqual(others, [], "nothing but the ack");
            } else {
              socket.emit(c.event, payload, false);
              const between = await socket.probe(mark);
              assert.equal(
                between.length,
                1,
                `expected exactly one failure event, got ${JSON.stringify(between.map((m) => m.slice(0, 300)))}`,
              );
              const [name, failure] = parseEvent(between[0]!) ?? [];
              assert.equal(name, "failure", between[0]);
              const channel = (payload as { channel?: unknown } | null | undefined)?.channel;
              const keys = typeof channel === "string" ? ["channel", "error", "event"] : ["error", "event"];
              assert.deepEqual(Object.keys(failure!).sort(), keys, JSON.stringify(failure));
              assert.equal(failure!.event, c.event);
              if (typeof channel === "string") assert.equal(failure!.channel, channel.slice(0, 240));
              refusedWith({ ok: false, error: failure!.error as ErrorBody }, code, reason, c.field);
            }
            assert.equal(socket.isOpen, true, "the connection was dropped");
          }));
      }
    }

    it("[A] after all that, the shared connection kept its grants and its subscription, and nothing was published", () =>
      guarded(replicas.A, "payload summary", async () => {
        const socket = await shared();
        const mark = socket.received.length;
        const res = await httpPublish(replicas.A.gw.url, replicas.A.publisher, OWN, { type: "own", data: {} });
        assert.equal(res.status, 202, JSON.stringify(res.body));
        const msg = await socket.waitFor(
          (m) => m.startsWith('42["event",') && m.includes(`"offset":${res.body.offset as number},`),
          5000,
          "own channel event",
          mark,
        );
        assert.match(msg, /"type":"own"/);
        const history = await fetchResult(`${replicas.A.gw.url}/v1/channels/${CHAT}/history`, {
          headers: { authorization: `Bearer ${admin}` },
        });
        assert.equal(history.status, 200, history.text);
        assert.deepEqual(history.json!.events, [], "a refused publish was published");
      }));
  });

  // -------------------------------------------------------------------------------------
  describe("unknown events", () => {
    let raw: RawSocket | undefined;
    async function shared(): Promise<RawSocket> {
      if (!raw || !raw.isOpen) raw = await rawConnected(replicas.B, "unknown-b");
      return raw;
    }
    for (const c of unknownEventCases) {
      for (const mode of ["ack", "no ack"] as const) {
        count("unknown events");
        const label = `${c.name} (${mode})`;
        it(`[B] ${label}`, () =>
          guarded(replicas.B, label, async () => {
            const socket =
              c.expect === "closed" ? await rawConnected(replicas.B, "unknown-b-reserved") : await shared();
            const mark = socket.received.length;
            const id = socket.emit(c.event, "payload" in c ? c.payload : { channel: "user:unknown-b" }, mode === "ack");
            if (c.expect === "closed") {
              await socket.closed(3000);
              return;
            }
            if (mode === "ack") {
              const answer = await socket.ackOf(id!, 5000, mark);
              const error = refusedWith(answer, 4400, "bad_request");
              const name = String(c.event).slice(0, 64);
              assert.equal(error.event, name);
              assert.ok(error.message.includes(name), error.message);
              assert.deepEqual(Object.keys(error).sort(), ["code", "event", "message", "reason"]);
            }
            const between = await socket.probe(mark);
            assert.deepEqual(
              between.filter((m) => !(id !== undefined && m.startsWith(`43${id}[`))),
              [],
              "nothing else comes back (no failure event for an unknown event)",
            );
          }));
      }
    }
  });

  // -------------------------------------------------------------------------------------
  describe("invalid channel names", () => {
    let raw: RawSocket | undefined;
    async function shared(): Promise<RawSocket> {
      if (!raw || !raw.isOpen) raw = await rawConnected(replicas.A, "names-a", { scope: "chat:write" });
      return raw;
    }
    for (const name of invalidChannelNames) {
      const label = JSON.stringify(name.length > 40 ? `${name.slice(0, 40)}...(${name.length})` : name);
      count("channel names", 3);
      it(`[A] subscribe and publish ${label} over the socket: 4400 naming channel`, () =>
        guarded(replicas.A, `socket channel ${label}`, async () => {
          const socket = await shared();
          for (const [event, payload] of [
            ["subscribe", { channel: name }],
            ["publish", { channel: name, type: "t", data: 1 }],
          ] as const) {
            refusedWith(await socket.request(event, payload), 4400, "bad_request", "channel");
          }
        }));
      it(`[B] POST /v1/channels/${label}/events: 400 bad_request`, () =>
        guarded(replicas.B, `http channel ${label}`, async () => {
          const res = await fetchResult(`${replicas.B.gw.url}/v1/channels/${encodeURIComponent(name)}/events`, {
            method: "POST",
            headers: { authorization: `Bearer ${replicas.B.publisher}`, "content-type": "application/json" },
            body: JSON.stringify({ type: "t", data: 1 }),
          });
          assertHttpError(res, 400, "bad_request");
        }));
    }
    it("[A] nothing reached any history", async () => {
      // One valid name per shape the invalid ones were derived from: none of them got an event.
      for (const channel of ["user:x", "user:a", "chat:a"]) {
        const history = await fetchResult(`${replicas.A.gw.url}/v1/channels/${channel}/history`, {
          headers: { authorization: `Bearer ${admin}` },
        });
        assert.equal(history.status, 200, history.text);
        assert.deepEqual(history.json!.events, [], channel);
      }
    });
  });

  // -------------------------------------------------------------------------------------
  describe("tampered tokens at the handshake", () => {
    for (const c of tokenCases) {
      count("tampered tokens");
      it(`[${c.replica}] ${c.name}`, () => {
        const r = replicas[c.replica];
        return guarded(r, `token: ${c.name}`, async () => {
          const auth = c.auth ? await c.auth() : undefined;
          const headers: Record<string, string> = c.header ? { authorization: await c.header() } : {};
          const { raw, answer } = await RawSocket.handshake(r.gw.url, TAMPER_SUB, auth, headers);
          opened.push(raw);
          assert.match(answer, /^44\{/, `expected CONNECT_ERROR, got ${answer}`);
          const body = JSON.parse(answer.slice(2)) as { message: string; data: ErrorBody };
          assert.deepEqual(Object.keys(body).sort(), ["data", "message"], answer);
          assert.deepEqual(body.data && Object.keys(body.data).sort(), ["code", "message", "reason"], answer);
          assert.equal(body.data.code, 4401, answer);
          assert.equal(body.data.reason, "unauthorized", answer);
          // No session: no welcome, and a request on the refused connection is not served.
          raw.send(`421["subscribe",{"channel":"user:${TAMPER_SUB}"}]`);
          await raw.closed(3000);
          assert.ok(
            !raw.received.some((m) => m.startsWith('42["welcome"') || m.startsWith("431")),
            JSON.stringify(raw.received),
          );
        });
      });
    }

    it("[A] a refused CONNECT can be followed by a valid one on the same connection", () =>
      guarded(replicas.A, "connect after refusal", async () => {
        count("tampered tokens");
        const { raw, answer } = await RawSocket.handshake(replicas.A.gw.url, "retry", { token: "a.b.c" });
        opened.push(raw);
        assert.match(answer, /^44\{.*"code":4401/);
        const mark = raw.received.length;
        raw.send(`40${JSON.stringify({ token: await validToken("A", "retry") })}`);
        await raw.waitFor((m) => m.startsWith('42["welcome",'), 3000, "welcome", mark);
        assert.equal((await raw.request("subscribe", { channel: "user:retry" })).ok, true);
      }));
  });

  // -------------------------------------------------------------------------------------
  describe("raw HTTP", () => {
    interface HttpCase {
      name: string;
      send: () => Promise<HttpResult>;
      /** A docs/protocol.md error body with this status and reason, or (node-level refusals) just a status. */
      expect: { status: number; reason?: string } | { statuses: number[] };
    }
    const events = (ch = "user:http-x") => `/v1/channels/${encodeURIComponent(ch)}/events`;
    let port = 0;
    let pub = "";
    /** Scopes jobs:read jobs:write, env e1. */
    let jobsToken = "";
    const post = (path: string, headers: Record<string, string>, body: string | Buffer) =>
      fetchResult(`http://127.0.0.1:${port}${path}`, { method: "POST", headers, body });
    const jobsJson = () => ({ authorization: `Bearer ${jobsToken}`, "content-type": "application/json" });
    const postJob = (body: string) => post("/v1/jobs", jobsJson(), body);
    const jobRoute = (method: string, path: string) =>
      raw(httpRequest(method, path, { authorization: `Bearer ${jobsToken}` }));
    const auth = () => ({ authorization: `Bearer ${pub}` });
    const json = () => ({ ...auth(), "content-type": "application/json" });
    const raw = (bytes: string | Buffer) => rawHttp(port, bytes);
    const history = (query: string) =>
      fetchResult(`http://127.0.0.1:${port}/v1/channels/user:http-x/history?${query}`, { headers: auth() });

    const cases: HttpCase[] = [
      {
        name: "invalid JSON body",
        send: () => post(events(), json(), "{not json"),
        expect: { status: 400, reason: "bad_request" },
      },
      {
        name: "truncated JSON body",
        send: () => post(events(), json(), '{"type":"t","data":'),
        expect: { status: 400, reason: "bad_request" },
      },
      {
        name: "JSON array body",
        send: () => post(events(), json(), "[]"),
        expect: { status: 400, reason: "bad_request" },
      },
      {
        name: "JSON string body",
        send: () => post(events(), json(), '"event"'),
        expect: { status: 400, reason: "bad_request" },
      },
      {
        name: "JSON null body",
        send: () => post(events(), json(), "null"),
        expect: { status: 400, reason: "bad_request" },
      },
      {
        name: "empty body with Content-Type JSON",
        send: () => post(events(), json(), ""),
        expect: { status: 400, reason: "bad_request" },
      },
      {
        name: "body of 0xff bytes with Content-Type JSON",
        send: () => post(events(), json(), Buffer.alloc(64, 0xff)),
        expect: { status: 400, reason: "bad_request" },
      },
      {
        name: "body with a __proto__ key",
        send: () => post(events(), json(), '{"type":"t","data":1,"__proto__":{"x":1}}'),
        expect: { status: 400, reason: "bad_request" },
      },
      {
        name: "data nested 20 000 arrays deep (40 KB)",
        send: () => post(events(), json(), `{"type":"t","data":${"[".repeat(20_000)}${"]".repeat(20_000)}}`),
        expect: { status: 400, reason: "bad_request" },
      },
      {
        name: "wrong types in the body (type a number)",
        send: () => post(events(), json(), '{"type":1,"data":1}'),
        expect: { status: 400, reason: "bad_request" },
      },
      {
        name: "priority not one of the four",
        send: () => post(events(), json(), '{"type":"t","data":1,"priority":"urgent"}'),
        expect: { status: 400, reason: "bad_request" },
      },
      {
        name: "idempotencyKey a number",
        send: () => post(events(), json(), '{"type":"t","data":1,"idempotencyKey":5}'),
        expect: { status: 400, reason: "bad_request" },
      },
      {
        name: "Content-Type text/plain",
        send: () => post(events(), { ...auth(), "content-type": "text/plain" }, '{"type":"t","data":1}'),
        expect: { status: 400, reason: "bad_request" },
      },
      {
        name: "Content-Type application/x-www-form-urlencoded",
        send: () => post(events(), { ...auth(), "content-type": "application/x-www-form-urlencoded" }, "type=t&data=1"),
        expect: { status: 400, reason: "bad_request" },
      },
      {
        name: "Content-Type multipart/form-data",
        send: () =>
          post(
            events(),
            { ...auth(), "content-type": "multipart/form-data; boundary=x" },
            '--x\r\nContent-Disposition: form-data; name="type"\r\n\r\nt\r\n--x--\r\n',
          ),
        expect: { status: 400, reason: "bad_request" },
      },
      {
        name: "Content-Type application/octet-stream",
        send: () => post(events(), { ...auth(), "content-type": "application/octet-stream" }, Buffer.from([1, 2, 3])),
        expect: { status: 400, reason: "bad_request" },
      },
      {
        name: "Content-Type garbage",
        send: () => post(events(), { ...auth(), "content-type": ";;;/;;" }, '{"type":"t","data":1}'),
        expect: { status: 400, reason: "bad_request" },
      },
      {
        name: "no Content-Type with a body",
        send: () => raw(httpRequest("POST", events(), auth(), '{"type":"t","data":1}')),
        expect: { status: 400, reason: "bad_request" },
      },
      {
        name: "body over ROOMCAST_MAX_MESSAGE_BYTES (100 KB)",
        send: () => post(events(), json(), JSON.stringify({ type: "t", data: "x".repeat(100_000) })),
        expect: { status: 413, reason: "too_large" },
      },
      {
        name: "body of 25 000 x U+65E5 (75 KB of UTF-8, 25 000 characters)",
        send: () => post(events(), json(), JSON.stringify({ type: "t", data: "\u65e5".repeat(25_000) })),
        expect: { status: 413, reason: "too_large" },
      },
      {
        name: "body of 5 MB",
        send: () =>
          raw(httpRequest("POST", events(), json(), JSON.stringify({ type: "t", data: "x".repeat(5_000_000) }))),
        expect: { status: 413, reason: "too_large" },
      },
      {
        name: "Content-Length larger than the limit, no body sent",
        send: () =>
          raw(
            `POST ${events()} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer ${pub}\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\n\r\n`,
          ),
        expect: { status: 413, reason: "too_large" },
      },
      {
        name: "a 100 KB header",
        send: () => raw(httpRequest("GET", "/readyz", { "x-junk": "j".repeat(100_000) })),
        expect: { statuses: [431] },
      },
      {
        name: "a 100 KB URL",
        send: () => raw(httpRequest("GET", `/v1/channels/user:${"u".repeat(100_000)}/history`, auth())),
        expect: { statuses: [431, 414] },
      },
      {
        name: "a 100 KB Authorization header",
        send: () =>
          raw(
            httpRequest(
              "POST",
              events(),
              { authorization: `Bearer ${"a".repeat(100_000)}`, "content-type": "application/json" },
              "{}",
            ),
          ),
        expect: { statuses: [431] },
      },
      { name: "request line that is garbage", send: () => raw("GARBAGE\r\n\r\n"), expect: { statuses: [400] } },
      {
        name: "request line of binary junk",
        send: () => raw(Buffer.from([0x00, 0xff, 0x13, 0x37, 0x0d, 0x0a, 0x0d, 0x0a])),
        expect: { statuses: [400] },
      },
      {
        name: "HTTP/9.9",
        send: () => raw("GET /readyz HTTP/9.9\r\nHost: x\r\n\r\n"),
        expect: { statuses: [400, 505] },
      },
      {
        name: "a space inside the path",
        send: () => raw("GET /v1/channels/user:a b/history HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        expect: { statuses: [400] },
      },
      {
        name: "a header line without a colon",
        send: () => raw("GET /readyz HTTP/1.1\r\nHost: x\r\nthis is not a header\r\nConnection: close\r\n\r\n"),
        expect: { statuses: [400] },
      },
      {
        name: "Content-Length not a number",
        send: () => raw(`POST ${events()} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: abc\r\n\r\n{}`),
        expect: { statuses: [400] },
      },
      {
        name: "Content-Length and Transfer-Encoding both (smuggling shape)",
        send: () =>
          raw(
            `POST ${events()} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer ${pub}\r\nContent-Type: application/json\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /readyz HTTP/1.1\r\nHost: x\r\n\r\n`,
          ),
        expect: { statuses: [400] },
      },
      {
        name: "a malformed chunk size",
        send: () =>
          raw(
            `POST ${events()} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer ${pub}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`,
          ),
        expect: { statuses: [400] },
      },
      {
        name: "an obs-fold header continuation",
        send: () => raw("GET /readyz HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  folded\r\nConnection: close\r\n\r\n"),
        expect: { statuses: [400] },
      },
      {
        name: "path traversal: ..%2F..%2Fetc%2Fpasswd as the channel",
        send: () =>
          raw(httpRequest("POST", "/v1/channels/..%2F..%2Fetc%2Fpasswd/events", json(), '{"type":"t","data":1}')),
        expect: { status: 400, reason: "bad_request" },
      },
      {
        name: "path traversal: user:..%2F..%2Fadmin as the channel",
        send: () =>
          raw(httpRequest("POST", "/v1/channels/user:..%2F..%2Fadmin/events", json(), '{"type":"t","data":1}')),
        expect: { status: 400, reason: "bad_request" },
      },
      {
        name: "path traversal: raw ../ segments",
        send: () => raw(httpRequest("GET", "/v1/channels/../../healthz/../v1/channels/user:x/history", auth())),
        expect: { status: 404, reason: "not_found" },
      },
      {
        name: "path traversal: double-encoded %252e%252e%252f",
        send: () =>
          raw(httpRequest("POST", "/v1/channels/user:%252e%252e%252f/events", json(), '{"type":"t","data":1}')),
        expect: { status: 400, reason: "bad_request" },
      },
      {
        name: "percent-encoding junk: a lone %",
        send: () => raw(httpRequest("POST", "/v1/channels/%/events", json(), '{"type":"t","data":1}')),
        expect: { status: 400, reason: "bad_request" },
      },
      {
        name: "percent-encoding junk: %zz",
        send: () => raw(httpRequest("POST", "/v1/channels/user:%zz/events", json(), '{"type":"t","data":1}')),
        expect: { status: 400, reason: "bad_request" },
      },
      {
        name: "percent-encoding junk: a truncated UTF-8 sequence %E0%A4%A",
        send: () => raw(httpRequest("POST", "/v1/channels/user:%E0%A4%A/events", json(), '{"type":"t","data":1}')),
        expect: { status: 400, reason: "bad_request" },
      },
      {
        name: "percent-encoding junk: invalid UTF-8 %C3%28",
        send: () => raw(httpRequest("POST", "/v1/channels/user:%C3%28/events", json(), '{"type":"t","data":1}')),
        expect: { status: 400, reason: "bad_request" },
      },
      {
        name: "percent-encoding junk: %00",
        send: () => raw(httpRequest("POST", "/v1/channels/user:a%00b/events", json(), '{"type":"t","data":1}')),
        expect: { status: 400, reason: "bad_request" },
      },
      {
        name: "percent-encoding junk: an encoded newline %0A",
        send: () => raw(httpRequest("POST", "/v1/channels/user:x%0A/events", json(), '{"type":"t","data":1}')),
        expect: { status: 400, reason: "bad_request" },
      },
      {
        name: "PUT on the events route",
        send: () =>
          fetchResult(`http://127.0.0.1:${port}${events()}`, {
            method: "PUT",
            headers: json(),
            body: '{"type":"t","data":1}',
          }),
        expect: { status: 404, reason: "not_found" },
      },
      {
        name: "DELETE on the events route",
        send: () => fetchResult(`http://127.0.0.1:${port}${events()}`, { method: "DELETE", headers: auth() }),
        expect: { status: 404, reason: "not_found" },
      },
      {
        name: "PATCH on the events route",
        send: () =>
          fetchResult(`http://127.0.0.1:${port}${events()}`, { method: "PATCH", headers: json(), body: "{}" }),
        expect: { status: 404, reason: "not_found" },
      },
      {
        name: "GET on the events route",
        send: () => fetchResult(`http://127.0.0.1:${port}${events()}`, { headers: auth() }),
        expect: { status: 404, reason: "not_found" },
      },
      {
        name: "an unknown method (BREW)",
        send: () => raw(httpRequest("BREW", events(), auth())),
        expect: { statuses: [400, 404, 405, 501] },
      },
      { name: "history since=abc", send: () => history("since=abc"), expect: { status: 400, reason: "bad_request" } },
      { name: "history since=-1", send: () => history("since=-1"), expect: { status: 400, reason: "bad_request" } },
      { name: "history since=1.5", send: () => history("since=1.5"), expect: { status: 400, reason: "bad_request" } },
      { name: "history limit=-1", send: () => history("limit=-1"), expect: { status: 400, reason: "bad_request" } },
      { name: "history limit=0", send: () => history("limit=0"), expect: { status: 400, reason: "bad_request" } },
      { name: "history limit=1e9", send: () => history("limit=1e9"), expect: { status: 400, reason: "bad_request" } },
      { name: "history limit=abc", send: () => history("limit=abc"), expect: { status: 400, reason: "bad_request" } },
      {
        name: "history since given twice",
        send: () => history("since=1&since=2"),
        expect: { status: 400, reason: "bad_request" },
      },
      { name: "history since[]=1", send: () => history("since[]=1"), expect: { status: 400, reason: "bad_request" } },
      {
        name: "history an unknown parameter",
        send: () => history("offset=5"),
        expect: { status: 400, reason: "bad_request" },
      },
      { name: "history limit=%zz", send: () => history("limit=%zz"), expect: { status: 400, reason: "bad_request" } },
      {
        name: "no Authorization with a broken body: 401 before the body",
        send: () => post(events(), { "content-type": "application/json" }, "{not json"),
        expect: { status: 401, reason: "unauthorized" },
      },
      {
        name: "Authorization: Bearer a.b.c",
        send: () =>
          post(
            events(),
            { authorization: "Bearer a.b.c", "content-type": "application/json" },
            '{"type":"t","data":1}',
          ),
        expect: { status: 401, reason: "unauthorized" },
      },
      {
        name: "Authorization: Basic",
        send: () =>
          post(
            events(),
            { authorization: `Basic ${b64url("admin:admin")}`, "content-type": "application/json" },
            '{"type":"t","data":1}',
          ),
        expect: { status: 401, reason: "unauthorized" },
      },
      // The job API (no worker runs here: a well-formed job of any name is refused 404)
      {
        name: "job: invalid JSON body",
        send: () => postJob("{not json"),
        expect: { status: 400, reason: "bad_request" },
      },
      { name: "job: JSON array body", send: () => postJob("[]"), expect: { status: 400, reason: "bad_request" } },
      { name: "job: JSON null body", send: () => postJob("null"), expect: { status: 400, reason: "bad_request" } },
      { name: "job: name missing", send: () => postJob('{"data":{}}'), expect: { status: 400, reason: "bad_request" } },
      { name: "job: name a number", send: () => postJob('{"name":7}'), expect: { status: 400, reason: "bad_request" } },
      {
        name: "job: name with a slash",
        send: () => postJob('{"name":"../build"}'),
        expect: { status: 400, reason: "bad_request" },
      },
      {
        name: "job: name of 101 characters",
        send: () => postJob(JSON.stringify({ name: "n".repeat(101) })),
        expect: { status: 400, reason: "bad_request" },
      },
      {
        name: "job: envId with a colon",
        send: () => postJob('{"name":"sample.build","envId":"e1:logs"}'),
        expect: { status: 400, reason: "bad_request" },
      },
      {
        name: "job: opts.attempts 26",
        send: () => postJob('{"name":"sample.build","opts":{"attempts":26}}'),
        expect: { status: 400, reason: "bad_request" },
      },
      {
        name: "job: opts.delayMs -1",
        send: () => postJob('{"name":"sample.build","opts":{"delayMs":-1}}'),
        expect: { status: 400, reason: "bad_request" },
      },
      {
        name: "job: opts.backoffMs a string",
        send: () => postJob('{"name":"sample.build","opts":{"backoffMs":"1s"}}'),
        expect: { status: 400, reason: "bad_request" },
      },
      {
        name: "job: an unknown key in opts (removeOnComplete)",
        send: () => postJob('{"name":"sample.build","opts":{"removeOnComplete":false}}'),
        expect: { status: 400, reason: "bad_request" },
      },
      {
        name: "job: an unknown key (owner)",
        send: () => postJob('{"name":"sample.build","owner":"root"}'),
        expect: { status: 400, reason: "bad_request" },
      },
      {
        name: "job: data over the message size",
        send: () => postJob(JSON.stringify({ name: "sample.build", data: "x".repeat(100_000) })),
        expect: { status: 413, reason: "too_large" },
      },
      {
        name: "job: data nested 20 000 arrays deep",
        send: () => postJob(`{"name":"sample.build","data":${"[".repeat(20_000)}${"]".repeat(20_000)}}`),
        expect: { status: 400, reason: "bad_request" },
      },
      {
        name: "job: a name no worker runs",
        send: () => postJob('{"name":"sample.build","envId":"e1"}'),
        expect: { status: 404, reason: "not_found" },
      },
      {
        name: "job: an environment the token does not hold",
        send: () => postJob('{"name":"sample.build","envId":"e2"}'),
        expect: { status: 403, reason: "forbidden" },
      },
      {
        name: "job: no Authorization",
        send: () => post("/v1/jobs", { "content-type": "application/json" }, '{"name":"sample.build"}'),
        expect: { status: 401, reason: "unauthorized" },
      },
      {
        name: "job: a token without jobs:write",
        send: () => post("/v1/jobs", json(), '{"name":"sample.build"}'),
        expect: { status: 403, reason: "forbidden" },
      },
      {
        name: "job: GET an unknown id",
        send: () => jobRoute("GET", "/v1/jobs/jNoSuchJob"),
        expect: { status: 404, reason: "not_found" },
      },
      {
        name: "job: GET an id of 300 characters",
        send: () => jobRoute("GET", `/v1/jobs/${"j".repeat(300)}`),
        expect: { status: 404, reason: "not_found" },
      },
      {
        name: "job: GET an id with %00",
        send: () => jobRoute("GET", "/v1/jobs/j%00x"),
        expect: { status: 404, reason: "not_found" },
      },
      {
        name: "job: GET ..%2Fstats as the id",
        send: () => jobRoute("GET", "/v1/jobs/..%2Fstats"),
        expect: { status: 404, reason: "not_found" },
      },
      {
        name: "job: GET an id that is a record key",
        send: () => jobRoute("GET", "/v1/jobs/%7Bjob%3Ax%7D%3Aowner"),
        expect: { status: 404, reason: "not_found" },
      },
      {
        name: "job: DELETE an unknown id",
        send: () => jobRoute("DELETE", "/v1/jobs/jNoSuchJob"),
        expect: { status: 404, reason: "not_found" },
      },
      {
        name: "job: PUT /v1/jobs",
        send: () => jobRoute("PUT", "/v1/jobs"),
        expect: { status: 404, reason: "not_found" },
      },
      {
        name: "job: stats without jobs:read",
        send: () => fetchResult(`http://127.0.0.1:${port}/v1/jobs/stats`, { headers: auth() }),
        expect: { status: 403, reason: "forbidden" },
      },
    ];

    before(async () => {
      port = replicas.A.gw.port;
      pub = replicas.A.publisher;
      jobsToken = await validToken("A", "bad-input-jobs", { scope: "jobs:read jobs:write", envs: ["e1"] });
    });

    for (const c of cases) {
      count("raw http");
      it(`[A] ${c.name}`, () =>
        guarded(replicas.A, `http: ${c.name}`, async () => {
          const res = await c.send();
          if ("statuses" in c.expect) {
            assert.ok(
              c.expect.statuses.includes(res.status),
              `status ${res.status} not in ${c.expect.statuses.join("/")}: ${res.text.slice(0, 300)}`,
            );
          } else {
            assertHttpError(res, c.expect.status, c.expect.reason!);
          }
        }));
    }

    it("[A] none of the refused publishes reached the channel, and no refused job was queued", async () => {
      const res = await fetchResult(`http://127.0.0.1:${port}/v1/channels/user:http-x/history`, { headers: auth() });
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.json!.events, []);
      const stats = await fetchResult(`http://127.0.0.1:${port}/v1/jobs/stats`, {
        headers: { authorization: `Bearer ${jobsToken}` },
      });
      assert.equal(stats.status, 200, stats.text);
      assert.deepEqual(stats.json!.counts, {
        waiting: 0,
        active: 0,
        delayed: 0,
        prioritized: 0,
        completed: 0,
        failed: 0,
      });
    });
  });

  // -------------------------------------------------------------------------------------
  it("each quiet client got every check event exactly once, in order, with no gap", async () => {
    for (const r of Object.values(replicas)) {
      await waitUntil(() => r.seen.length >= r.expected.length, 5000, `${r.name}'s remaining check events`);
      // A moment for any duplicate to show up.
      await new Promise((resolve) => setTimeout(resolve, 200));
      const offsets = r.seen.map((e) => e.offset);
      assert.deepEqual(offsets, r.expected, `${r.name}: received offsets differ from the published ones`);
      assert.ok(r.expected.length > 10, `${r.name}: only ${r.expected.length} checks ran`);
      for (let i = 1; i < offsets.length; i++)
        assert.equal(offsets[i], offsets[0]! + i, `${r.name}: gap or reorder at ${i}`);
      const ns = r.seen.map((e) => (e.data as { n: number }).n);
      assert.deepEqual(
        ns,
        [...ns].sort((x, y) => x - y),
        `${r.name}: check events out of order`,
      );
      assert.equal(new Set(r.seen.map((e) => e.id)).size, r.seen.length, `${r.name}: duplicate event ids`);
      assert.equal(r.quiet.connected, true);
      assert.deepEqual(r.problems, []);
    }
  });

  it("no replica logged an error or crashed", () => {
    for (const r of Object.values(replicas)) {
      assert.equal(r.gw.process.exitCode, null);
      const errors = r.gw
        .output()
        .split("\n")
        .filter((line) => /"level":(50|60)/.test(line))
        .map((line) => line.slice(0, 600));
      assert.deepEqual(errors, [], `replica ${r.name} logged errors`);
    }
  });
});
