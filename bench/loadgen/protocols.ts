/**
 * The wire protocols the load generators speak, each kept cheap: deliveries are recognised
 * by a string prefix and only parsed when they must be (sampled for latency, or tracked for
 * recovery).
 *
 * - `roomcast`: Socket.IO v5 over Engine.IO v4 WebSocket, CONNECT with `{ token }`,
 *   `subscribe` with an ack (`{ ok, offset, epoch, recovered, events }`), `event` deliveries
 *   `{ channel, offset, epoch, data }`.
 * - `socketio`: the stock baseline, same framing, no token; `subscribe` acks `{ ok: true }`;
 *   `event` deliveries are the published data `{ channel, seq, t }`.
 * - `ws-relay`: the floor: plain WebSocket JSON, `{ subscribe: [channels] }` answered
 *   `{ subscribed }`; deliveries are the published JSON text `{ channel, seq, t }`.
 * - `centrifugo`: Centrifugo's JSON protocol (v2): `{ id, connect: { token } }`,
 *   `{ id, subscribe: { channel, recover?, offset?, epoch? } }`, publications pushed as
 *   `{ push: { channel, pub: { data, offset } } }`; `{}` pings answered `{}`.
 */
export type Protocol = "roomcast" | "socketio" | "ws-relay" | "centrifugo";

export interface Delivery {
  channel: string;
  /** Channel position (roomcast, centrifugo) or the publisher's sequence number (others). */
  offset: number;
  epoch: string;
  /** Publish time (ms, the publisher's clock: the same machine). */
  t: number;
}

export interface SubscribeAnswer {
  ok: boolean;
  offset: number;
  epoch: string;
  recovered: boolean;
  events: Delivery[];
  error?: string;
}

export interface ProtocolCodec {
  path: string;
  /** First frames after the WebSocket opens (before any subscribe). */
  hello(token: string | undefined): string[];
  /** No handshake: subscribe as soon as the WebSocket is open. */
  readyOnOpen?: boolean;
  /** True once `frame` completes the handshake. Throws on a refusal. */
  connected(frame: string): boolean;
  subscribe(id: number, channel: string, since?: { offset: number; epoch: string }): string;
  /** A subscribe answer: its request id and content, or undefined. */
  answer(frame: string): { id: number; answer: SubscribeAnswer } | undefined;
  /** Whether a frame is a delivery (cheap: no parsing). */
  isDelivery(frame: string): boolean;
  parseDelivery(frame: string): Delivery;
  /** A frame to send back (a pong), or undefined. */
  reply(frame: string): string | undefined;
}

const EVENT_PREFIX = '42["event",';

function fromData(data: { channel?: string; seq?: number; t?: number }): Delivery {
  return { channel: data.channel ?? "", offset: data.seq ?? 0, epoch: "", t: data.t ?? 0 };
}

const socketIoBase = {
  path: "/socket.io/?EIO=4&transport=websocket",
  connected(frame: string): boolean {
    if (frame.startsWith("44")) throw new Error(`refused: ${frame.slice(2, 300)}`);
    return frame.startsWith("40");
  },
  isDelivery: (frame: string) => frame.startsWith(EVENT_PREFIX),
  reply: (frame: string) => (frame === "2" ? "3" : undefined),
};

function ackOf(frame: string): { id: number; body: unknown } | undefined {
  if (!frame.startsWith("43")) return undefined;
  const bracket = frame.indexOf("[");
  return { id: Number(frame.slice(2, bracket)), body: (JSON.parse(frame.slice(bracket)) as unknown[])[0] };
}

export const CODECS: Record<Protocol, ProtocolCodec> = {
  roomcast: {
    ...socketIoBase,
    hello: () => [],
    subscribe: (id, channel, since) =>
      `42${id}${JSON.stringify(["subscribe", since ? { channel, since } : { channel }])}`,
    answer(frame) {
      const ack = ackOf(frame);
      if (!ack) return undefined;
      const body = ack.body as {
        ok: boolean;
        offset: number;
        epoch: string;
        recovered: boolean;
        events: { channel: string; offset: number; epoch: string; data: { t?: number } }[];
        error?: { reason: string };
      };
      return {
        id: ack.id,
        answer: {
          ok: body.ok,
          offset: body.offset,
          epoch: body.epoch,
          recovered: body.recovered,
          events: (body.events ?? []).map((e) => ({
            channel: e.channel,
            offset: e.offset,
            epoch: e.epoch,
            t: e.data?.t ?? 0,
          })),
          ...(body.ok ? {} : { error: body.error?.reason }),
        },
      };
    },
    parseDelivery(frame) {
      const event = JSON.parse(frame.slice(EVENT_PREFIX.length, -1)) as {
        channel: string;
        offset: number;
        epoch: string;
        ts: number;
        data: { t?: number };
      };
      // The publisher's own clock where it sent one (sub-millisecond), else the event's publish time.
      return { channel: event.channel, offset: event.offset, epoch: event.epoch, t: event.data?.t ?? event.ts };
    },
  },
  socketio: {
    ...socketIoBase,
    hello: () => [],
    subscribe: (id, channel) => `42${id}${JSON.stringify(["subscribe", { channel }])}`,
    answer(frame) {
      const ack = ackOf(frame);
      return ack
        ? {
            id: ack.id,
            answer: { ok: (ack.body as { ok: boolean }).ok, offset: 0, epoch: "", recovered: false, events: [] },
          }
        : undefined;
    },
    parseDelivery: (frame) =>
      fromData(JSON.parse(frame.slice(EVENT_PREFIX.length, -1)) as { channel: string; seq: number; t: number }),
  },
  "ws-relay": {
    path: "/",
    hello: () => [],
    readyOnOpen: true,
    connected: () => true,
    subscribe: (id, channel) => JSON.stringify({ id, subscribe: [channel] }),
    answer(frame) {
      if (!frame.startsWith('{"id":')) return undefined;
      const body = JSON.parse(frame) as { id: number; subscribed: number };
      return { id: body.id, answer: { ok: true, offset: 0, epoch: "", recovered: false, events: [] } };
    },
    isDelivery: (frame) => frame.startsWith('{"channel":'),
    parseDelivery: (frame) => fromData(JSON.parse(frame) as { channel: string; seq: number; t: number }),
    reply: () => undefined,
  },
  centrifugo: {
    path: "/connection/websocket",
    hello: (token) => [JSON.stringify({ id: 1, connect: { token, name: "bench" } })],
    connected(frame) {
      if (frame.includes('"error"') && frame.startsWith('{"id":1')) throw new Error(`refused: ${frame.slice(0, 300)}`);
      return frame.startsWith('{"id":1,');
    },
    subscribe: (id, channel, since) =>
      JSON.stringify({
        id: id + 1,
        subscribe: since ? { channel, recover: true, offset: since.offset, epoch: since.epoch } : { channel },
      }),
    answer(frame) {
      if (!frame.startsWith('{"id":') || frame.startsWith('{"id":1,')) return undefined;
      const body = JSON.parse(frame) as {
        id: number;
        error?: { code: number; message: string };
        subscribe?: {
          offset?: number;
          epoch?: string;
          recovered?: boolean;
          publications?: { data: { t?: number }; offset?: number }[];
        };
      };
      const sub = body.subscribe ?? {};
      return {
        id: body.id - 1,
        answer: {
          ok: !body.error,
          offset: sub.offset ?? 0,
          epoch: sub.epoch ?? "",
          recovered: sub.recovered ?? false,
          events: (sub.publications ?? []).map((p) => ({
            channel: "",
            offset: p.offset ?? 0,
            epoch: sub.epoch ?? "",
            t: p.data?.t ?? 0,
          })),
          ...(body.error ? { error: body.error.message } : {}),
        },
      };
    },
    isDelivery: (frame) => frame.startsWith('{"push":{"channel":'),
    parseDelivery(frame) {
      const { push } = JSON.parse(frame) as {
        push: { channel: string; pub: { data: { t?: number }; offset?: number } };
      };
      return { channel: push.channel, offset: push.pub.offset ?? 0, epoch: "", t: push.pub.data?.t ?? 0 };
    },
    reply: (frame) => (frame === "{}" ? "{}" : undefined),
  },
};
