/**
 * A load-generator process (forked by bench/lib/loadgen-pool.ts): opens many raw WebSocket
 * clients speaking one of bench/loadgen/protocols.ts, subscribes them, counts deliveries,
 * samples end-to-end latency on a few of them, and, in tracking mode, behaves like a careful
 * client: it follows each channel's position, reconnects to the next URL when its socket
 * drops, resubscribes with `since` and counts every event lost or repeated.
 * It also publishes (the publisher role) over HTTP, at a fixed rate or as fast as it can.
 * Commands and answers travel over the fork IPC channel.
 */
import { WebSocket } from "ws";
import { emptyHistogram, record, type HistogramData } from "../lib/histogram.js";
import { nowMs } from "../lib/proc.js";
import { CODECS, type Delivery, type Protocol, type ProtocolCodec, type SubscribeAnswer } from "./protocols.js";

export interface ClientSpec {
  token?: string;
  channels: string[];
}

export interface ConnectCommand {
  op: "connect";
  protocol: Protocol;
  /** Replica URLs: client i starts on urls[i % urls.length]; tracking clients fail over to the next. */
  urls: string[];
  clients: ClientSpec[];
  /** Handshakes in flight at once. */
  concurrency: number;
  /** Parse one delivery in this many for latency (0: none). */
  sampleEvery: number;
  /** Follow positions, recover after drops, count lost and duplicate events. */
  track: boolean;
  /** Local addresses to open connections from, round robin (more ephemeral ports). */
  localAddresses?: string[];
  /** Client i starts on urls[i % n] (default), or every client on urls[0]. */
  allOnFirst?: boolean;
  /** roomcast job channels: count log lines and `done` events. */
  jobs?: boolean;
}

export interface PublishCommand {
  op: "publish";
  /** Whose publish API: its path and body (see PUBLISH_PATHS, BODIES). */
  kind: Protocol;
  /** Replica base URLs, used round robin. */
  urls: string[];
  headers: Record<string, string>;
  /** Channels, used round robin; each channel's events carry seq 1, 2, 3... */
  channels: string[];
  count: number;
  /** Events per second in all (0: as fast as `concurrency` requests in flight allow). */
  rate: number;
  concurrency: number;
}

/** `lastOffset`: the last offset (or seq) published on each tracked channel, for the count of lost events. */
export type Command =
  ConnectCommand | PublishCommand | { op: "reset" } | { op: "stats"; lastOffset?: number } | { op: "close" };

export interface LoadgenStats {
  connected: number;
  failed: number;
  errors: string[];
  deliveries: number;
  firstDeliveryAt: number;
  lastDeliveryAt: number;
  latency: HistogramData;
  cpuSeconds: number;
  /** Tracking mode. */
  lost: number;
  duplicates: number;
  reconnects: number;
  recovered: number;
  notRecovered: number;
  /** Clients whose every channel has been resubscribed since the last reset. */
  clientsResubscribed: number;
  lastResubscribedAt: number;
  /** Job channels. */
  lines: number;
  jobsDone: number;
  /** Publisher role. */
  published: number;
  publishErrors: number;
  /** From sending a publish to its answer (ms). */
  publishLatency: HistogramData;
  firstPublishAt: number;
  lastPublishAt: number;
}

interface Track {
  offset: number | undefined;
  epoch: string;
  first: number | undefined;
  seen: Set<number>;
}

interface Client {
  index: number;
  spec: ClientSpec;
  ws?: WebSocket;
  urlIndex: number;
  sampled: boolean;
  pending: Map<number, string>;
  nextId: number;
  /** Tracking, per channel: the highest offset (for the stock protocols, the publisher's seq) seen, the first one expected, and every one seen. */
  positions: Map<string, Track>;
  resubscribing: number;
  closing: boolean;
}

// The publisher's bodies, by system (functions do not cross IPC).
const BODIES: Record<Protocol, (channel: string, seq: number, t: number) => string> = {
  roomcast: (_channel, seq, t) => JSON.stringify({ type: "b", data: { seq, t } }),
  socketio: (channel, seq, t) => JSON.stringify({ channel, data: { channel, seq, t } }),
  "ws-relay": (channel, seq, t) => JSON.stringify({ channel, data: { channel, seq, t } }),
  centrifugo: (channel, seq, t) => JSON.stringify({ channel, data: { seq, t } }),
};
const PUBLISH_PATHS: Record<Protocol, (channel: string) => string> = {
  roomcast: (channel) => `/v1/channels/${encodeURIComponent(channel)}/events`,
  socketio: () => "/publish",
  "ws-relay": () => "/publish",
  centrifugo: () => "/api/publish",
};

let codec: ProtocolCodec;
let clients: Client[] = [];
let command: ConnectCommand | undefined;
let stats: LoadgenStats = freshStats();
const cpuAtStart = process.cpuUsage();

function freshStats(): LoadgenStats {
  return {
    connected: 0,
    failed: 0,
    errors: [],
    deliveries: 0,
    firstDeliveryAt: 0,
    lastDeliveryAt: 0,
    latency: emptyHistogram(),
    cpuSeconds: 0,
    lost: 0,
    duplicates: 0,
    reconnects: 0,
    recovered: 0,
    notRecovered: 0,
    clientsResubscribed: 0,
    lastResubscribedAt: 0,
    lines: 0,
    jobsDone: 0,
    published: 0,
    publishErrors: 0,
    publishLatency: emptyHistogram(),
    firstPublishAt: 0,
    lastPublishAt: 0,
  };
}

function error(text: string): void {
  if (stats.errors.length < 20) stats.errors.push(text.slice(0, 300));
}

function delivered(client: Client, delivery: Delivery | undefined): void {
  const at = nowMs();
  stats.deliveries++;
  if (stats.firstDeliveryAt === 0) stats.firstDeliveryAt = at;
  stats.lastDeliveryAt = at;
  if (!delivery) return;
  if (delivery.t > 0 && client.sampled) record(stats.latency, at - delivery.t);
  if (!command?.track) return;
  const position = client.positions.get(delivery.channel);
  if (!position) return;
  // (Centrifugo's pushes carry no epoch.)
  if (delivery.epoch !== "" && position.epoch !== "" && delivery.epoch !== position.epoch) {
    error(`epoch changed on ${delivery.channel}`);
    return;
  }
  // Counted against the set of offsets seen, so that a reordering is not taken for a loss.
  if (position.seen.has(delivery.offset)) stats.duplicates++;
  else position.seen.add(delivery.offset);
  position.first ??= delivery.offset;
  position.offset = Math.max(position.offset ?? delivery.offset, delivery.offset);
}

/** Events missing between each tracked channel's first expected offset and `last` (or the highest seen). */
function lostEvents(last: number | undefined): number {
  let lost = 0;
  for (const client of clients) {
    for (const track of client.positions.values()) {
      if (track.first === undefined) continue;
      const end = last ?? track.offset ?? track.first - 1;
      let seenInRange = 0;
      for (const offset of track.seen) if (offset >= track.first && offset <= end) seenInRange++;
      lost += Math.max(0, end - track.first + 1 - seenInRange);
    }
  }
  return lost;
}

function onAnswer(client: Client, channel: string, answer: SubscribeAnswer): void {
  if (!answer.ok) {
    error(`subscribe ${channel}: ${answer.error ?? "refused"}`);
    return;
  }
  if (!command?.track) return;
  const withOffsets = command.protocol === "roomcast" || command.protocol === "centrifugo";
  const position = client.positions.get(channel);
  if (!position) {
    // Offsets: everything after the answer's is expected. The stock protocols have none: their
    // positions are the publisher's sequence numbers, from the first delivery on.
    client.positions.set(channel, {
      offset: withOffsets ? answer.offset : undefined,
      epoch: answer.epoch,
      first: withOffsets ? answer.offset + 1 : undefined,
      seen: new Set(),
    });
    return;
  }
  if (withOffsets) {
    if (answer.recovered) stats.recovered++;
    else stats.notRecovered++;
    for (const event of answer.events) delivered(client, { ...event, channel });
    position.offset = Math.max(position.offset ?? answer.offset, answer.offset);
    position.epoch = answer.epoch;
  }
  if (--client.resubscribing === 0) {
    stats.clientsResubscribed++;
    stats.lastResubscribedAt = nowMs();
  }
}

function open(client: Client, first: boolean): Promise<void> {
  const cmd = command!;
  const url = cmd.urls[client.urlIndex % cmd.urls.length]!.replace(/^http/, "ws") + codec.path;
  const localAddress = cmd.localAddresses?.[client.index % cmd.localAddresses.length];
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, ...(localAddress ? { localAddress } : {}) });
    client.ws = ws;
    client.pending.clear();
    let handshook = false;
    const settle = (ok: boolean, why?: string) => {
      if (handshook) return;
      handshook = true;
      if (first) {
        if (ok) stats.connected++;
        else {
          stats.failed++;
          if (why) error(why);
        }
      } else if (!ok && why && !/ECONNREFUSED/.test(why)) error(`reconnect: ${why}`);
      resolve();
    };
    ws.on("open", () => {
      for (const frame of codec.hello(client.spec.token)) ws.send(frame);
      if (codec.readyOnOpen) subscribeAll(client, ws, () => settle(true));
    });
    ws.on("message", (raw: Buffer) => {
      const text = raw.toString();
      for (const frame of cmd.protocol === "centrifugo" ? text.split("\n") : [text])
        handle(
          client,
          ws,
          frame,
          () => settle(true),
          (why) => settle(false, why),
        );
    });
    ws.on("error", (err) => settle(false, err.message));
    ws.on("close", () => {
      settle(false, "closed during the handshake");
      if (client.ws !== ws || client.closing || !cmd.track) return;
      // Like a careful client: back off a little (spread the storm), then the next replica.
      stats.reconnects++;
      client.urlIndex++;
      setTimeout(() => void open(client, false), 100 + Math.random() * 900);
    });
  });
}

function countJobOutput(frame: string): void {
  if (frame.includes('"type":"log"'))
    stats.lines += (JSON.parse(frame.slice(11, -1)) as { data: { lines: unknown[] } }).data.lines.length;
  else if (frame.includes('"type":"done"')) stats.jobsDone++;
}

function handle(
  client: Client,
  ws: WebSocket,
  frame: string,
  connected: () => void,
  failed: (why: string) => void,
): void {
  if (frame === "") return;
  if (codec.isDelivery(frame)) {
    const parse = client.sampled || command!.track;
    delivered(client, parse ? codec.parseDelivery(frame) : undefined);
    if (command!.jobs) countJobOutput(frame);
    return;
  }
  const reply = codec.reply(frame);
  if (reply !== undefined) {
    ws.send(reply);
    return;
  }
  if (frame.startsWith("0{") && codec.path.startsWith("/socket.io")) {
    ws.send(client.spec.token ? `40${JSON.stringify({ token: client.spec.token })}` : "40");
    return;
  }
  const answer = codec.answer(frame);
  if (answer) {
    const channel = client.pending.get(answer.id);
    client.pending.delete(answer.id);
    if (channel !== undefined) onAnswer(client, channel, answer.answer);
    if (client.pending.size === 0) connected();
    return;
  }
  try {
    if (!codec.connected(frame)) return;
  } catch (err) {
    failed((err as Error).message);
    return;
  }
  subscribeAll(client, ws, connected);
}

/** Connected: subscribes to every channel (with `since` where we have a position). */
function subscribeAll(client: Client, ws: WebSocket, connected: () => void): void {
  client.resubscribing = client.positions.size > 0 ? client.spec.channels.length : 0;
  if (client.spec.channels.length === 0) connected();
  for (const channel of client.spec.channels) {
    const id = ++client.nextId;
    client.pending.set(id, channel);
    const position = client.positions.get(channel);
    const since =
      position?.offset !== undefined && (command!.protocol === "roomcast" || command!.protocol === "centrifugo")
        ? { offset: position.offset, epoch: position.epoch }
        : undefined;
    ws.send(codec.subscribe(id, channel, since));
  }
}

async function connectAll(cmd: ConnectCommand): Promise<void> {
  command = cmd;
  codec = CODECS[cmd.protocol];
  const start = clients.length;
  const created = cmd.clients.map((spec, i): Client => ({
    index: start + i,
    spec,
    urlIndex: cmd.allOnFirst ? 0 : start + i,
    sampled: cmd.sampleEvery > 0 && (start + i) % cmd.sampleEvery === 0,
    pending: new Map(),
    nextId: 0,
    positions: new Map(),
    resubscribing: 0,
    closing: false,
  }));
  clients.push(...created);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.max(1, cmd.concurrency) }, async () => {
      while (next < created.length) await open(created[next++]!, true);
    }),
  );
}

async function publish(cmd: PublishCommand): Promise<void> {
  const send = async (seq: number) => {
    const channel = cmd.channels[seq % cmd.channels.length]!;
    const t = nowMs();
    const url = `${cmd.urls[seq % cmd.urls.length]}${PUBLISH_PATHS[cmd.kind](channel)}`;
    const body = BODIES[cmd.kind](channel, Math.floor(seq / cmd.channels.length) + 1, t);
    if (stats.firstPublishAt === 0) stats.firstPublishAt = t;
    try {
      const res = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json", ...cmd.headers },
        body,
      });
      await res.arrayBuffer();
      if (res.status >= 300) {
        stats.publishErrors++;
        error(`publish answered ${res.status}`);
      } else stats.published++;
      record(stats.publishLatency, nowMs() - t);
    } catch (err) {
      stats.publishErrors++;
      error(`publish failed: ${(err as Error).message}`);
    }
    stats.lastPublishAt = nowMs();
  };
  let seq = 0;
  if (cmd.rate <= 0) {
    await Promise.all(
      Array.from({ length: cmd.concurrency }, async () => {
        while (seq < cmd.count) await send(seq++);
      }),
    );
    return;
  }
  // Paced: a tick every 5 ms sends what is due, with up to `concurrency` in flight.
  const started = nowMs();
  let inFlight = 0;
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const due = Math.min(cmd.count, Math.floor(((nowMs() - started) / 1000) * cmd.rate));
      while (seq < due && inFlight < cmd.concurrency) {
        inFlight++;
        void send(seq++).finally(() => inFlight--);
      }
      if (seq >= cmd.count && inFlight === 0) {
        clearInterval(tick);
        resolve();
      }
    }, 5);
  });
}

process.on("message", (message: Command & { reqId: number }) => {
  const answer = (value: unknown) => process.send!({ reqId: message.reqId, value });
  switch (message.op) {
    case "connect": {
      // The answer counts this command's clients only.
      const [connected, failed] = [stats.connected, stats.failed];
      void connectAll(message).then(() =>
        answer({ connected: stats.connected - connected, failed: stats.failed - failed, errors: stats.errors }),
      );
      break;
    }
    case "publish":
      void publish(message).then(() => answer({ published: stats.published, errors: stats.publishErrors }));
      break;
    case "reset": {
      const connected = stats.connected;
      stats = { ...freshStats(), connected };
      answer(true);
      break;
    }
    case "stats": {
      const cpu = process.cpuUsage(cpuAtStart);
      answer({
        ...stats,
        cpuSeconds: (cpu.user + cpu.system) / 1e6,
        ...(command?.track ? { lost: lostEvents(message.lastOffset) } : {}),
      });
      break;
    }
    case "close":
      for (const client of clients) {
        client.closing = true;
        client.ws?.terminate();
      }
      clients = [];
      answer(true);
      break;
  }
});
process.send!({ ready: true });
