/**
 * The redis adapter, plus one thing: channel events published by the publish script
 * (a text message `<offset> <epoch> <event json>`, where the adapter's own messages are
 * msgpack arrays) are handed to the gateway's delivery instead of a plain room broadcast,
 * so that each subscriber gets them in offset order, exactly once.
 */
import { RedisAdapter, type RedisAdapterOptions } from "@socket.io/redis-adapter";
import type { Redis } from "ioredis";
import type { Namespace } from "socket.io";

export interface ChannelMessage {
  offset: number;
  epoch: string;
  /** The event as JSON, ready to write. */
  json: string;
}

export type ChannelMessageHandler = (room: string, message: ChannelMessage, socketIds: ReadonlySet<string>) => void;

const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;

export function parseChannelMessage(text: string): ChannelMessage | undefined {
  const a = text.indexOf(" ");
  const b = text.indexOf(" ", a + 1);
  if (a <= 0 || b <= a) return undefined;
  return { offset: Number(text.slice(0, a)), epoch: text.slice(a + 1, b), json: text.slice(b + 1) };
}

export class ChannelAdapter extends RedisAdapter {
  private readonly channelPrefix: string;

  constructor(
    nsp: Namespace,
    pubClient: Redis,
    subClient: Redis,
    opts: Partial<RedisAdapterOptions> & { key: string },
    private readonly onChannelMessage: ChannelMessageHandler,
  ) {
    super(nsp, pubClient, subClient, opts);
    this.channelPrefix = `${opts.key}#${nsp.name}#`;
  }

  /** Called for every pattern message (see the prototype wiring below). */
  routeMessage(pattern: string, channel: string | Buffer, msg: Buffer): void {
    const first = msg[0];
    if (first === undefined || first < DIGIT_0 || first > DIGIT_9) {
      redisAdapterOnMessage.call(this, pattern, channel, msg);
      return;
    }
    const name = channel.toString();
    if (!name.startsWith(this.channelPrefix)) return;
    const room = name.slice(this.channelPrefix.length, -1);
    const socketIds = this.rooms.get(room);
    if (!socketIds || socketIds.size === 0) return;
    const message = parseChannelMessage(msg.toString());
    if (message) this.onChannelMessage(room, message, socketIds);
  }
}

type OnMessage = (this: RedisAdapter, pattern: string, channel: string | Buffer, msg: Buffer) => void;
type WithOnMessage = { onmessage: OnMessage };
// RedisAdapter declares onmessage private, but binds `this.onmessage` in its constructor:
// replacing it on our prototype is how its messages reach routeMessage.
const redisAdapterOnMessage = (RedisAdapter.prototype as unknown as WithOnMessage).onmessage;
(ChannelAdapter.prototype as unknown as WithOnMessage).onmessage = function (this: RedisAdapter, pattern, channel, msg) {
  (this as ChannelAdapter).routeMessage(pattern, channel, msg);
};

export function channelAdapterFactory(pub: Redis, sub: Redis, key: string, onChannelMessage: ChannelMessageHandler) {
  // Socket.IO calls the factory with `new`, so it must be a function, not an arrow.
  return function channelAdapter(nsp: Namespace) {
    return new ChannelAdapter(nsp, pub, sub, { key, requestsTimeout: 5000 }, onChannelMessage);
  };
}
