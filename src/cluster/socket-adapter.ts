/**
 * The socket.io adapter that links the replicas (for everything but channel events, which
 * travel on the channel feed): @socket.io/redis-adapter, classic (PUBLISH) or sharded
 * (SPUBLISH, Redis Cluster), on its own key so that the two never read each other's messages.
 */
import { createShardedAdapter, RedisAdapter } from "@socket.io/redis-adapter";
import type { Namespace } from "socket.io";
import type { Adapter } from "socket.io-adapter";
import type { RedisClient } from "./redis-clients.js";

/** What socket.io's `io.adapter()` takes: an adapter per namespace. */
export type AdapterFactory = (nsp: Namespace) => Adapter;

type Unsubscribe = (...args: unknown[]) => Promise<unknown>;
const UNSUBSCRIBES = ["unsubscribe", "punsubscribe", "sunsubscribe"] as const;

/**
 * Both adapters' close() fire (S|P)UNSUBSCRIBE without handling the promises: while Redis is
 * away they reject, and a shutdown then died of an unhandled rejection instead of draining.
 * Those rejections are expected on the way out: caught here, for the calls close() makes.
 */
function closingSafely<A extends Adapter>(adapter: A, subscriber: RedisClient): A {
  const close = adapter.close.bind(adapter);
  adapter.close = () => {
    const client = subscriber as unknown as Record<(typeof UNSUBSCRIBES)[number], Unsubscribe>;
    const restore = UNSUBSCRIBES.map((name) => {
      const original = client[name];
      client[name] = (...args: unknown[]) => {
        const result = original.apply(client, args);
        result?.catch?.(() => undefined);
        return result;
      };
      return () => delete (client as Partial<typeof client>)[name];
    });
    try {
      return close();
    } finally {
      for (const undo of restore) undo();
    }
  };
  return adapter;
}

export function createSocketAdapter(
  commands: RedisClient,
  subscriber: RedisClient,
  key: string,
  sharded: boolean,
): AdapterFactory {
  const makeSharded = sharded
    ? createShardedAdapter(commands, subscriber, { channelPrefix: key, subscriptionMode: "static" })
    : undefined;
  // What the package's createAdapter() does (socket.io calls the factory with `new`: a function, not an arrow).
  const options = { key, requestsTimeout: 5000 };
  return function (nsp: Namespace) {
    return closingSafely(
      makeSharded ? (makeSharded(nsp) as Adapter) : new RedisAdapter(nsp, commands, subscriber, options),
      subscriber,
    );
  };
}
