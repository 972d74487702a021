/**
 * The pub/sub feed of channel events. The publish script publishes each event on its
 * channel's feed (`<prefix>:{<channel>}:feed`, same hash slot as the channel's keys); a
 * replica subscribes to the feed of every channel it has subscribers for, SUBSCRIBE on a
 * single Redis or SSUBSCRIBE (sharded pub/sub) on a Redis Cluster, and hands each message to
 * the delivery. `ready(channel)` resolves once Redis confirmed the subscription, so a
 * subscriber reads history only when no later event can slip past it.
 */
import type { Logger } from "pino";
import { channelKeys } from "./channel-keys.js";
import type { RedisClient } from "../cluster/redis-clients.js";

/** A message `<offset> <epoch> <event json>` from the publish script. */
export interface ChannelMessage {
  offset: number;
  epoch: string;
  /** The event as JSON, ready to write. */
  json: string;
}

/** A message `close <code> <reason>` from the close script: the channel ended. */
export interface ChannelClosed {
  closed: true;
  code: number;
  reason: string;
}

/** A message `presence <json>` from the presence scripts: a join or leave, for the subscribers (no offset). */
export interface ChannelPresence {
  presence: string;
}

export type ChannelMessageHandler = (
  channel: string,
  message: ChannelMessage | ChannelClosed | ChannelPresence,
) => void;

const PRESENCE_HEAD = "presence ";

export function closeMessage(code: number, reason: string): string {
  return `close ${code} ${reason}`;
}

export function parseChannelMessage(text: string): ChannelMessage | ChannelClosed | ChannelPresence | undefined {
  if (text.startsWith(PRESENCE_HEAD)) return { presence: text.slice(PRESENCE_HEAD.length) };
  const a = text.indexOf(" ");
  const b = text.indexOf(" ", a + 1);
  if (a <= 0 || b <= a) return undefined;
  if (text.startsWith("close ")) return { closed: true, code: Number(text.slice(a + 1, b)), reason: text.slice(b + 1) };
  return { offset: Number(text.slice(0, a)), epoch: text.slice(a + 1, b), json: text.slice(b + 1) };
}

type PubSubClient = RedisClient & {
  ssubscribe(...channels: string[]): Promise<unknown>;
  sunsubscribe(...channels: string[]): Promise<unknown>;
};

/** What a confirmed subscription is kept as: one settled promise for all channels. */
const CONFIRMED: Promise<void> = Promise.resolve();

export class ChannelFeed {
  private readonly subscriptions = new Map<string, Promise<void>>();
  private readonly feedPrefix: string;

  constructor(
    private readonly subscriber: RedisClient,
    private readonly prefix: string,
    /** SSUBSCRIBE (sharded pub/sub) instead of SUBSCRIBE. */
    readonly sharded: boolean,
    private readonly log: Logger,
    onMessage: ChannelMessageHandler,
  ) {
    this.feedPrefix = `${prefix}:{`;
    subscriber.on(sharded ? "smessageBuffer" : "messageBuffer", (raw: Buffer, payload: Buffer) => {
      const name = raw.toString();
      if (!name.startsWith(this.feedPrefix) || !name.endsWith("}:feed")) return;
      const message = parseChannelMessage(payload.toString());
      if (message) onMessage(name.slice(this.feedPrefix.length, -"}:feed".length), message);
    });
  }

  /** Subscribes to a channel's feed (once per replica); resolves when Redis confirmed it. */
  ready(channel: string): Promise<void> {
    let subscription = this.subscriptions.get(channel);
    if (!subscription) {
      const feed = channelKeys(this.prefix, channel).feed;
      const client = this.subscriber as PubSubClient;
      subscription = (this.sharded ? client.ssubscribe(feed) : client.subscribe(feed)).then(() => undefined);
      this.subscriptions.set(channel, subscription);
      const pending = subscription;
      pending.then(
        () => {
          if (this.subscriptions.get(channel) === pending) this.subscriptions.set(channel, CONFIRMED);
        },
        () => {
          if (this.subscriptions.get(channel) === pending) this.subscriptions.delete(channel);
        },
      );
    }
    return subscription;
  }

  /** The last local subscriber left: stop receiving the channel. */
  release(channel: string): void {
    if (!this.subscriptions.delete(channel)) return;
    const feed = channelKeys(this.prefix, channel).feed;
    const client = this.subscriber as PubSubClient;
    (this.sharded ? client.sunsubscribe(feed) : client.unsubscribe(feed)).catch((err: unknown) =>
      this.log.debug({ err, channel }, "unsubscribe from feed failed (the connection will not resubscribe it)"),
    );
  }
}
