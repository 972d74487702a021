/**
 * A Lua script called with EVALSHA (EVAL the first time a Redis does not know it), for scripts
 * whose number of keys varies from call to call.
 *
 * ioredis's defineCommand needs the key count at definition time, so such a script would be
 * defined once per count; but ioredis copies every defined command onto each (auto-)pipeline it
 * makes, and a hundred definitions made every Redis call of the replica pay for that copy
 * (about 40 µs each). EVALSHA declares its keys per call: ioredis still routes it, and on a
 * Redis Cluster auto-pipelines it, by its first key's slot.
 */
import { createHash } from "node:crypto";
import type { RedisClient } from "./redis-clients.js";

export type ScriptArg = string | number;

export class LuaScript {
  private readonly sha: string;

  constructor(private readonly lua: string) {
    this.sha = createHash("sha1").update(lua).digest("hex");
  }

  /** Runs the script with `keyCount` keys: `args` holds the keys, then the arguments. */
  async run(redis: RedisClient, keyCount: number, args: readonly ScriptArg[]): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keyCount, ...args);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith("NOSCRIPT")) throw err;
      return redis.eval(this.lua, keyCount, ...args);
    }
  }
}
