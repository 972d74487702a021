/**
 * A Redis Cluster master fails under load (cluster topology only): gateways reconnect and
 * keep serving; every publish is either delivered or refused, never silently lost; a
 * channel whose history may have lost its newest events starts a new epoch, which its
 * subscribers see. Prints delivered, refused, lost and the time to recover.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { ChannelEvent } from "../../src/contracts/events.js";
import { connect, httpPublish, recordEvents, request, token, waitUntil, type TestSocket } from "../support/clients.js";
import { TOPOLOGY } from "../support/cluster.js";
import { startGateway, type GatewayProcess } from "../support/gateway-process.js";
import { startRedisCluster, type RedisClusterHandle } from "../support/redis-cluster.js";

const CHANNELS = Array.from({ length: 12 }, (_, i) => `user:failover-${i}`);
const PUBLISH_MS_BEFORE = 1000;
const PUBLISH_MS_AFTER = 2500;

interface Acked {
  channel: string;
  offset: number;
  epoch: string;
  id: string;
}

describe(
  "Redis Cluster failover under load",
  { skip: TOPOLOGY !== "cluster" ? "runs with ROOMCAST_TEST_REDIS=cluster" : false },
  () => {
    let redis: RedisClusterHandle;
    let gateways: GatewayProcess[] = [];
    const sockets: TestSocket[] = [];

    before(async () => {
      redis = await startRedisCluster({ masters: 3, replicas: 1, nodeTimeoutMs: 1000 });
      const env = { ROOMCAST_HTTP_RATE_LIMIT: "0" };
      gateways = [await startGateway({ redisUrl: redis.url, env }), await startGateway({ redisUrl: redis.url, env })];
    });
    after(async () => {
      for (const s of sockets) s.close();
      await Promise.all(gateways.map((g) => g.kill()));
      await redis?.stop();
    });

    it("delivers or refuses every event while a master fails over, and loses none", async () => {
      // One subscriber per channel on each replica (user channels: the sub is the user).
      // Like a real client: when the server ends the subscription because the channel's
      // history was lost (history_lost), resubscribe with `since` and note the break.
      const subscribers: {
        channel: string;
        seen: Map<string, ChannelEvent[]>;
        breaks: number;
        recoveredFalse: number;
      }[] = [];
      for (const gateway of gateways) {
        for (const channel of CHANNELS) {
          const socket = await connect(gateway.url, { token: await token({ sub: channel.slice(5) }) });
          sockets.push(socket);
          const subscriber = { channel, seen: recordEvents(socket), breaks: 0, recoveredFalse: 0 };
          subscribers.push(subscriber);
          socket.on("unsubscribed", (notice) => {
            assert.deepEqual(notice, { channel, code: 4503, reason: "history_lost" });
            subscriber.breaks++;
            const last = subscriber.seen.get(channel)?.at(-1);
            // `history` too: on recovered: false, the new epoch's events so far come in the answer.
            const since = last ? { since: { offset: last.offset, epoch: last.epoch } } : {};
            void request<{ ok: boolean; recovered: boolean; events: ChannelEvent[] }>(socket, "subscribe", {
              channel,
              ...since,
              history: 1000,
            }).then((answer) => {
              if (!answer.ok) return;
              if (!answer.recovered) subscriber.recoveredFalse++;
              // The answer's events precede any live event of the new subscription.
              const list = subscriber.seen.get(channel) ?? [];
              const live = list.splice(list.length - countAfter(list, answer.events));
              subscriber.seen.set(channel, [...list, ...answer.events, ...live]);
            });
          });
          const answer = await request(socket, "subscribe", { channel });
          assert.equal(answer.ok, true, JSON.stringify(answer));
        }
      }
      const publisher = await token({ sub: "backend", scope: "publish", envs: ["*"] });
      const acked: Acked[] = [];
      let refused = 0;
      let killedAt = 0;
      let firstAckAfterKill = 0;
      const deadline = { at: Number.POSITIVE_INFINITY };
      const started = Date.now();
      let n = 0;
      const worker = async (w: number) => {
        while (Date.now() < deadline.at) {
          const channel = CHANNELS[n++ % CHANNELS.length]!;
          let res;
          try {
            res = await httpPublish(gateways[w % 2]!.url, publisher, channel, { type: "tick", data: { n } });
          } catch {
            refused++;
            continue;
          }
          if (res.status === 202) {
            acked.push({
              channel,
              offset: res.body.offset as number,
              epoch: res.body.epoch as string,
              id: res.body.id as string,
            });
            if (killedAt && !firstAckAfterKill && channelOnKilledShard.has(channel)) firstAckAfterKill = Date.now();
          } else {
            assert.equal(res.status, 503, `a publish may only be refused as unavailable: ${JSON.stringify(res.body)}`);
            refused++;
            await new Promise((r) => setTimeout(r, 20));
          }
        }
      };
      const channelOnKilledShard = new Set<string>();
      const workers = [0, 1, 2, 3].map(worker);

      await new Promise((r) => setTimeout(r, PUBLISH_MS_BEFORE));
      // Kill the master that owns the first channel's slot.
      const victimPort = redis.masterFor(`rc:{${CHANNELS[0]}}:meta`);
      for (const channel of CHANNELS)
        if (redis.masterFor(`rc:{${channel}}:meta`) === victimPort) channelOnKilledShard.add(channel);
      await redis.nodes.find((node) => node.port === victimPort)!.kill();
      killedAt = Date.now();
      await redis.waitFailover(victimPort);
      const healthyAt = Date.now();
      deadline.at = Date.now() + PUBLISH_MS_AFTER;
      await Promise.all(workers);
      const recoveredAt = firstAckAfterKill;

      // Every acked event must reach every subscriber of its channel, except events of an
      // older epoch on a channel whose subscriber was told its history was lost (the announced
      // break: a client reloads its state then). The final epoch's events must all arrive.
      const finalEpoch = new Map<string, string>();
      for (const a of acked) finalEpoch.set(a.channel, a.epoch);
      const missing = ({ channel, seen, breaks }: (typeof subscribers)[number]) => {
        const ids = new Set((seen.get(channel) ?? []).map((e) => e.id));
        return acked.filter(
          (a) => a.channel === channel && !ids.has(a.id) && !(breaks > 0 && a.epoch !== finalEpoch.get(channel)),
        );
      };
      await waitUntil(() => subscribers.every((s) => missing(s).length === 0), 15_000, "subscribers to catch up").catch(
        () => undefined,
      );
      let lost = 0;
      let delivered = 0;
      for (const subscriber of subscribers) {
        const { channel, seen } = subscriber;
        const events = seen.get(channel) ?? [];
        // In order, once each, within every epoch.
        const ids = new Set<string>();
        for (let i = 0; i < events.length; i++) {
          assert.ok(!ids.has(events[i]!.id), `duplicate delivery on ${channel}`);
          ids.add(events[i]!.id);
          const prev = events[i - 1];
          if (prev && prev.epoch === events[i]!.epoch)
            assert.equal(events[i]!.offset, prev.offset + 1, `gap or disorder on ${channel}`);
        }
        delivered += ids.size;
        lost += missing(subscriber).length;
      }
      const epochChanges = subscribers.filter((s) => s.breaks > 0).length;
      const recoveredFalse = subscribers.reduce((n, s) => n + s.recoveredFalse, 0);
      console.log(
        `failover: ${acked.length} publishes acked, ${refused} refused (503), ${delivered} deliveries, ${lost} lost; ` +
          `replica promoted ${healthyAt - killedAt} ms after the kill, first publish on the failed shard acked ${recoveredAt ? recoveredAt - killedAt : "never"} ms after; ` +
          `${epochChanges} subscriptions told history_lost (${recoveredFalse} resubscribed with recovered: false); ${CHANNELS.length} channels, ${channelOnKilledShard.size} on the failed shard, run ${((Date.now() - started) / 1000).toFixed(1)} s`,
      );
      assert.equal(lost, 0);
      // The failed shard's channels continue in a new epoch (their newest events may not have
      // reached the promoted replica): their subscribers were told, and recovery said so.
      assert.equal(epochChanges, 2 * channelOnKilledShard.size);
      assert.equal(recoveredFalse, 2 * channelOnKilledShard.size);
      assert.ok(recoveredAt > 0, "publishing on the failed shard's channels resumed");
      assert.ok(acked.some((a) => channelOnKilledShard.has(a.channel) && a.offset > 0));
      // The gateways stayed up and ready.
      for (const gateway of gateways) assert.equal((await fetch(`${gateway.url}/readyz`)).status, 200);
    });
  },
);

/** How many events at the end of `list` arrived after the answer was sent (live events newer than it). */
function countAfter(list: ChannelEvent[], answerEvents: ChannelEvent[]): number {
  const last = answerEvents.at(-1);
  if (!last) return 0;
  let n = 0;
  for (let i = list.length - 1; i >= 0 && list[i]!.epoch === last.epoch && list[i]!.offset > last.offset; i--) n++;
  return n;
}
