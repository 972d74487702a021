/**
 * The HTTP helper thread: k6/http is synchronous, so a VU posts its request here over its
 * own MessagePort and blocks in Atomics.wait; this thread runs the fetch, posts the response
 * back on that port and bumps the VU's flag, which wakes it (it then reads the response with
 * receiveMessageOnPort). One helper serves every VU of a run.
 */
import { Buffer } from "node:buffer";
import { parentPort, type MessagePort } from "node:worker_threads";
import type { HttpRequestMessage, HttpResponseMessage } from "./protocol.js";

/** Go's canonical header names, as k6 reports them: content-type -> Content-Type. */
export function canonicalHeader(name: string): string {
  return name.toLowerCase().replace(/(^|-)([a-z])/g, (_m, dash: string, c: string) => dash + c.toUpperCase());
}

function errorCode(err: unknown): { code: number; message: string } {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e.name === "TimeoutError" || e.name === "AbortError") return { code: 1050, message: "request timeout" };
  const cause = e.cause?.code;
  if (cause === "ECONNREFUSED") return { code: 1212, message: e.cause?.message ?? "connection refused" };
  if (cause === "ENOTFOUND" || cause === "EAI_AGAIN")
    return { code: 1101, message: e.cause?.message ?? "no IP for the host" };
  if (cause === "ECONNRESET") return { code: 1220, message: e.cause?.message ?? "connection reset by peer" };
  return { code: 1000, message: e.cause?.message ?? e.message ?? String(err) };
}

async function perform(req: HttpRequestMessage): Promise<HttpResponseMessage> {
  const started = performance.now();
  const base = { id: req.id, url: req.url, proto: "HTTP/1.1" };
  try {
    const body =
      req.body === null ? undefined : req.bodyBase64 ? Buffer.from(req.body, "base64") : Buffer.from(req.body, "utf8");
    // Bytes, not a string: fetch would add a text/plain content type that k6 never sends.
    const res = await fetch(req.url, {
      method: req.method,
      headers: req.headers,
      body: req.method === "GET" || req.method === "HEAD" ? undefined : body,
      redirect: req.followRedirects ? "follow" : "manual",
      signal: AbortSignal.timeout(req.timeoutMs),
    });
    const waitingMs = performance.now() - started;
    const headers: Record<string, string> = {};
    res.headers.forEach((value, name) => {
      const key = canonicalHeader(name);
      headers[key] = headers[key] === undefined ? value : `${headers[key]}, ${value}`;
    });
    const bytes = Buffer.from(await res.arrayBuffer());
    return {
      ...base,
      url: res.url || req.url,
      status: res.status,
      statusText: `${res.status} ${res.statusText}`,
      headers,
      body: req.binary ? bytes.toString("base64") : bytes.toString("utf8"),
      bodyBase64: req.binary,
      error: "",
      errorCode: 0,
      durationMs: performance.now() - started,
      waitingMs,
    };
  } catch (err) {
    const { code, message } = errorCode(err);
    return {
      ...base,
      status: 0,
      statusText: "",
      headers: {},
      body: "",
      bodyBase64: false,
      error: message,
      errorCode: code,
      durationMs: performance.now() - started,
      waitingMs: 0,
    };
  }
}

function serve(port: MessagePort, flag: SharedArrayBuffer): void {
  const counter = new Int32Array(flag);
  port.on("message", (req: HttpRequestMessage) => {
    void perform(req).then((res) => {
      port.postMessage(res);
      Atomics.add(counter, 0, 1);
      Atomics.notify(counter, 0);
    });
  });
}

parentPort!.on("message", (message: { port: MessagePort; flag: SharedArrayBuffer }) =>
  serve(message.port, message.flag),
);
parentPort!.postMessage({ type: "ready" });
