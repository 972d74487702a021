/**
 * The socket.io adapter that links the replicas (for everything but channel events, which
 * travel on the channel feed): @socket.io/redis-adapter, classic (PUBLISH) or sharded
 * (SPUBLISH, Redis Cluster), on its own key so that the two never read each other's messages.
 */
import { createShardedAdapter, RedisAdapter } from "@socket.io/redis-adapter";
import type { Adapter } from "socket.io-adapter";
import type { Namespace } from "socket.io";
import type { RedisClient } from "./redis-clients.js";

type Unsubscribe = (...args: unknown[]) => Promise<unknown>;

/**
 * The classic adapter's close() fires UNSUBSCRIBE and PUNSUBSCRIBE without handling their
 * promises: while Redis is away they reject, and a shutdown then died of an unhandled
 * rejection instead of draining. Those rejections are expected on the way out: caught here.
 */
class ClosingSafely extends RedisAdapter {
  override close(): void {
    const subscriber = this.subClient as Record<"unsubscribe" | "punsubscribe", Unsubscribe>;
    const patched = (["unsubscribe", "punsubscribe"] as const).map((name) => {
      const original = subscriber[name];
      subscriber[name] = (...args: unknown[]) => {
        const result = original.apply(subscriber, args);
        result.catch(() => undefined);
        return result;
      };
      return () => delete (subscriber as Partial<typeof subscriber>)[name];
    });
    try {
      super.close();
    } finally {
      for (const restore of patched) restore();
    }
  }
}

/** What socket.io's `io.adapter()` takes: an adapter per namespace. */
export type AdapterFactory = (nsp: Namespace) => Adapter;

export function createSocketAdapter(
  commands: RedisClient,
  subscriber: RedisClient,
  key: string,
  sharded: boolean,
): AdapterFactory {
  if (sharded) return createShardedAdapter(commands, subscriber, { channelPrefix: key, subscriptionMode: "static" });
  // What the package's createAdapter() does, with our subclass.
  const options = { key, requestsTimeout: 5000 };
  // socket.io calls it with `new`: a function, not an arrow.
  return function (nsp: Namespace) {
    return new ClosingSafely(nsp, commands, subscriber, options);
  };
}
