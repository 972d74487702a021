/**
 * The `k6/http` module: synchronous requests, as in k6. The VU thread posts the request to
 * the HTTP helper thread and blocks in Atomics.wait (its event loop does not run meanwhile,
 * as in k6) until the response is back. Records http_reqs, http_req_duration,
 * http_req_waiting and http_req_failed.
 */
import { Buffer } from "node:buffer";
import { receiveMessageOnPort } from "node:worker_threads";
import { runtime } from "../runtime.js";
import type { HttpRequestMessage, HttpResponseMessage } from "../protocol.js";
import { parseDuration } from "../durations.js";

type Body = string | ArrayBuffer | ArrayBufferView | Record<string, unknown> | null | undefined;

interface Params {
  headers?: Record<string, string>;
  tags?: Record<string, string>;
  timeout?: string | number;
  responseType?: "text" | "binary" | "none";
  redirects?: number;
  responseCallback?: (res: { status: number }) => boolean;
}

const port = runtime.data.http.port;
port.unref();
const counter = new Int32Array(runtime.data.http.flag);
let nextId = 1;

/** The default response callback: 200 to 399 are expected (http_req_failed counts the rest). */
let responseCallback: ((res: { status: number }) => boolean) | null = (res) => res.status >= 200 && res.status < 400;

function exchange(request: HttpRequestMessage): HttpResponseMessage {
  let seen = Atomics.load(counter, 0);
  port.postMessage(request);
  const deadline = Date.now() + request.timeoutMs + 5000;
  for (;;) {
    for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) {
      const response = m.message as HttpResponseMessage;
      if (response.id === request.id) return response;
    }
    const left = deadline - Date.now();
    if (left <= 0) {
      return {
        id: request.id,
        status: 0,
        statusText: "",
        headers: {},
        body: "",
        bodyBase64: false,
        url: request.url,
        error: "the HTTP helper thread did not answer",
        errorCode: 1000,
        durationMs: request.timeoutMs,
        waitingMs: 0,
        proto: "",
      };
    }
    Atomics.wait(counter, 0, seen, left);
    seen = Atomics.load(counter, 0);
  }
}

function encodeBody(body: Body, headers: Record<string, string>): { text: string | null; base64: boolean } {
  if (body === null || body === undefined) return { text: null, base64: false };
  if (typeof body === "string") return { text: body, base64: false };
  if (body instanceof ArrayBuffer) return { text: Buffer.from(new Uint8Array(body)).toString("base64"), base64: true };
  if (ArrayBuffer.isView(body))
    return { text: Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("base64"), base64: true };
  // k6 sends an object as a form.
  if (!Object.keys(headers).some((h) => h.toLowerCase() === "content-type"))
    headers["Content-Type"] = "application/x-www-form-urlencoded";
  const form = new URLSearchParams();
  for (const [k, v] of Object.entries(body)) form.append(k, String(v));
  return { text: form.toString(), base64: false };
}

/** gjson-like selection for res.json(selector): dotted keys and array indexes. */
function select(value: unknown, selector: string): unknown {
  let current = value;
  for (const part of selector.split(".")) {
    if (current === null || typeof current !== "object") return undefined;
    current = (current as Record<string, unknown>)[part];
  }
  return current;
}

export class Response {
  status: number;
  status_text: string;
  body: string | ArrayBuffer | null;
  headers: Record<string, string>;
  url: string;
  error: string;
  error_code: number;
  proto: string;
  timings: {
    blocked: number;
    connecting: number;
    tls_handshaking: number;
    sending: number;
    waiting: number;
    receiving: number;
    duration: number;
  };
  request: { method: string; url: string; body: string; headers: Record<string, string[]> };
  cookies: Record<string, unknown[]> = {};

  constructor(message: HttpResponseMessage, request: HttpRequestMessage, responseType: string) {
    this.status = message.status;
    this.status_text = message.statusText;
    this.headers = message.headers;
    this.url = message.url;
    this.error = message.error;
    this.error_code = message.errorCode;
    this.proto = message.proto;
    this.timings = {
      blocked: 0,
      connecting: 0,
      tls_handshaking: 0,
      sending: 0,
      waiting: message.waitingMs,
      receiving: Math.max(0, message.durationMs - message.waitingMs),
      duration: message.durationMs,
    };
    this.request = {
      method: request.method,
      url: request.url,
      body: request.bodyBase64 ? "" : (request.body ?? ""),
      headers: Object.fromEntries(Object.entries(request.headers).map(([k, v]) => [k, [v]])),
    };
    if (responseType === "none") this.body = null;
    else if (responseType === "binary") {
      const bytes = Buffer.from(message.body, message.bodyBase64 ? "base64" : "utf8");
      this.body = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
    } else this.body = message.body;
  }

  json(selector?: string): unknown {
    if (typeof this.body !== "string") throw new Error("cannot parse a non-text body as JSON");
    const value: unknown = JSON.parse(this.body);
    return selector ? select(value, selector) : value;
  }

  html(): never {
    throw new Error("res.html() is not provided by the k6 test runner");
  }
}

export function request(
  method: string,
  url: string | { toString(): string },
  body?: Body,
  params: Params = {},
): Response {
  if (runtime.context === "init") throw new Error("making HTTP requests in the init context is not supported");
  const headers: Record<string, string> = { "User-Agent": "k6-test-runner", ...params.headers };
  const encoded = encodeBody(body, headers);
  const timeoutMs =
    params.timeout === undefined
      ? 60_000
      : typeof params.timeout === "number"
        ? params.timeout
        : parseDuration(params.timeout);
  const responseType = params.responseType ?? "text";
  const message: HttpRequestMessage = {
    id: nextId++,
    method: method.toUpperCase(),
    url: String(url),
    headers,
    body: encoded.text,
    bodyBase64: encoded.base64,
    timeoutMs,
    followRedirects: params.redirects !== 0,
    binary: responseType === "binary",
  };
  const res = new Response(exchange(message), message, responseType);
  const judge = params.responseCallback ?? responseCallback;
  const expected = judge ? judge(res) : true;
  const tags: Record<string, string> = {
    method: message.method,
    url: message.url,
    name: message.url,
    status: String(res.status),
    proto: res.proto,
    expected_response: String(expected),
    ...(res.error_code ? { error_code: String(res.error_code) } : {}),
    ...params.tags,
  };
  runtime.builtin("http_reqs", "counter", false, 1, tags);
  runtime.builtin("http_req_duration", "trend", true, res.timings.duration, tags);
  runtime.builtin("http_req_waiting", "trend", true, res.timings.waiting, tags);
  runtime.builtin("http_req_failed", "rate", false, expected ? 0 : 1, tags);
  return res;
}

export const get = (url: string, params?: Params) => request("GET", url, null, params);
export const head = (url: string, params?: Params) => request("HEAD", url, null, params);
export const post = (url: string, body?: Body, params?: Params) => request("POST", url, body, params);
export const put = (url: string, body?: Body, params?: Params) => request("PUT", url, body, params);
export const patch = (url: string, body?: Body, params?: Params) => request("PATCH", url, body, params);
export const del = (url: string, body?: Body, params?: Params) => request("DELETE", url, body, params);
export const options = (url: string, body?: Body, params?: Params) => request("OPTIONS", url, body, params);

export function asyncRequest(method: string, url: string, body?: Body, params?: Params): Promise<Response> {
  try {
    return Promise.resolve(request(method, url, body, params));
  } catch (err) {
    return Promise.reject(err);
  }
}

type BatchEntry =
  string | [string, string, Body?, Params?] | { method: string; url: string; body?: Body; params?: Params };

/** Sequential here (k6 runs them in parallel); same answers. */
export function batch(requests: BatchEntry[] | Record<string, BatchEntry>): Response[] | Record<string, Response> {
  const one = (r: BatchEntry) =>
    typeof r === "string"
      ? get(r)
      : Array.isArray(r)
        ? request(r[0], r[1], r[2], r[3])
        : request(r.method, r.url, r.body, r.params);
  if (Array.isArray(requests)) return requests.map(one);
  return Object.fromEntries(Object.entries(requests).map(([k, r]) => [k, one(r)]));
}

export function expectedStatuses(
  ...statuses: (number | { min: number; max: number })[]
): (res: { status: number }) => boolean {
  return (res) =>
    statuses.some((s) => (typeof s === "number" ? res.status === s : res.status >= s.min && res.status <= s.max));
}

export function setResponseCallback(callback: ((res: { status: number }) => boolean) | null): void {
  responseCallback = callback;
}

export function url(strings: TemplateStringsArray, ...values: unknown[]): string {
  return strings.reduce((acc, s, i) => acc + s + (i < values.length ? String(values[i]) : ""), "");
}

export function file(): never {
  throw new Error("http.file() is not provided by the k6 test runner");
}

export function cookieJar(): never {
  throw new Error("http.cookieJar() is not provided by the k6 test runner");
}

export default {
  request,
  get,
  head,
  post,
  put,
  patch,
  del,
  options,
  asyncRequest,
  batch,
  expectedStatuses,
  setResponseCallback,
  url,
  file,
  cookieJar,
};
