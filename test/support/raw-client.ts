/**
 * A Socket.IO client written by hand over a `ws` WebSocket (Engine.IO v4 / Socket.IO v5
 * framing), so that a test can stop reading from the TCP socket like a stalled phone.
 */
import assert from "node:assert/strict";
import WebSocket from "ws";
import { waitUntil } from "./clients.js";

/** What a raw client read, in wire order. */
export type RawPacket =
  | { kind: "connect"; data: unknown }
  | { kind: "connect_error"; data: unknown }
  | { kind: "disconnect" }
  | { kind: "event"; name: string; data: unknown }
  | { kind: "ack"; id: number; data: unknown[] };

export class RawClient {
  readonly packets: RawPacket[] = [];
  opened = false;
  closed = false;
  closeCode: number | undefined;
  private nextId = 0;

  private constructor(readonly ws: WebSocket) {
    ws.on("message", (raw: Buffer) => this.onFrame(raw.toString()));
    ws.on("close", (code: number) => {
      this.closed = true;
      this.closeCode = code;
    });
    ws.on("error", () => undefined);
  }

  static async open(baseUrl: string, bearer: string): Promise<RawClient> {
    const client = new RawClient(
      new WebSocket(`${baseUrl.replace(/^http/, "ws")}/socket.io/?EIO=4&transport=websocket`),
    );
    await waitUntil(() => client.opened || client.closed, 5000, "the Engine.IO open packet");
    assert.equal(client.closed, false, "the WebSocket closed before the Engine.IO open packet");
    client.ws.send(`40${JSON.stringify({ token: bearer })}`);
    await waitUntil(
      () => client.packets.some((p) => p.kind === "connect" || p.kind === "connect_error"),
      5000,
      "the Socket.IO CONNECT answer",
    );
    const answer = client.packets.find((p) => p.kind === "connect" || p.kind === "connect_error")!;
    assert.equal(answer.kind, "connect", `handshake refused: ${JSON.stringify(answer)}`);
    return client;
  }

  private onFrame(text: string): void {
    const type = text[0];
    if (type === "0") this.opened = true;
    else if (type === "2") this.ws.send("3");
    else if (type === "4") this.onPacket(text.slice(1));
  }

  private onPacket(text: string): void {
    const type = text[0];
    const rest = text.slice(1);
    if (type === "0") this.packets.push({ kind: "connect", data: rest ? JSON.parse(rest) : undefined });
    else if (type === "1") this.packets.push({ kind: "disconnect" });
    else if (type === "4") this.packets.push({ kind: "connect_error", data: JSON.parse(rest) });
    else if (type === "2" || type === "3") {
      const idDigits = /^\d*/.exec(rest)![0];
      const payload = JSON.parse(rest.slice(idDigits.length)) as unknown[];
      if (type === "2") this.packets.push({ kind: "event", name: payload[0] as string, data: payload[1] });
      else this.packets.push({ kind: "ack", id: Number(idDigits), data: payload });
    }
  }

  /** A request with an ack; resolves the answer. */
  async request<T = Record<string, unknown>>(event: string, payload: unknown, timeoutMs = 5000): Promise<T> {
    const id = ++this.nextId;
    this.ws.send(`42${id}${JSON.stringify([event, payload])}`);
    const isAnswer = (p: RawPacket) => p.kind === "ack" && p.id === id;
    await waitUntil(() => this.packets.some(isAnswer), timeoutMs, `the answer to ${event}`);
    return (this.packets.find(isAnswer) as { data: unknown[] }).data[0] as T;
  }

  /** The server events named `name`, in arrival order. */
  events<T = unknown>(name: string): T[] {
    return this.packets
      .filter((p): p is Extract<RawPacket, { kind: "event" }> => p.kind === "event" && p.name === name)
      .map((p) => p.data as T);
  }

  /** Stops reading from the TCP socket: the server's writes pile up in the kernel, then in the server. */
  pause(): void {
    this.ws.pause();
  }

  resume(): void {
    this.ws.resume();
  }

  close(): void {
    this.ws.terminate();
  }
}
