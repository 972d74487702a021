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

describe("Redis Cluster failover under load", { skip: TOPOLOGY !== "cluster" ? "runs with ROOMCAST_TEST_REDIS=cluster" : false }, () => {
  let redis: RedisClusterHandle;
  let gateways: GatewayProcess[] = [];
  const sockets: TestSocket[] = [];

  before(async () => {
    redis = await startRedisCluster({ masters: 3, replicas: 1, nodeTimeoutMs: 1000 });
    gateways = [await startGateway({ redisUrl: redis.url }), await startGateway({ redisUrl: redis.url })];
  });
  after(async () => {
    for (const s of sockets) s.close();
    await Promise.all(gateways.map((g) => g.kill()));
    await redis?.stop();
  });

  it("delivers or refuses every event while a master fails over, and loses none", async () => {
    // One subscriber per channel on each replica (user channels: the sub is the user).
    const subscribers: { channel: string; seen: Map<string, ChannelEvent[]> }[] = [];
    for (const gateway of gateways) {
      for (const channel of CHANNELS) {
        const socket = await connect(gateway.url, { token: await token({ sub: channel.slice(5) }) });
        sockets.push(socket);
        subscribers.push({ channel, seen: recordEvents(socket) });
        const answer = await request(socket, "subscribe", { channel });
        assert.equal(answer.ok, true, JSON.stringify(answer));
      }
    }
    const publisher = await token({ sub: "backend", scope: "publish" });
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
          acked.push({ channel, offset: res.body.offset as number, epoch: res.body.epoch as string, id: res.body.id as string });
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
    for (const channel of CHANNELS) if (redis.masterFor(`rc:{${channel}}:meta`) === victimPort) channelOnKilledShard.add(channel);
    await redis.nodes.find((node) => node.port === victimPort)!.kill();
    killedAt = Date.now();
    await redis.waitFailover(victimPort);
    const healthyAt = Date.now();
    deadline.at = Date.now() + PUBLISH_MS_AFTER;
    await Promise.all(workers);
    const recoveredAt = firstAckAfterKill;

    // Every acked event reached every subscriber of its channel, or the subscriber saw that
    // channel move to a new epoch after it (the announced break a client reloads on).
    const received = (events: ChannelEvent[] | undefined) => new Set((events ?? []).map((e) => e.id));
    const settled = ({ channel, seen }: (typeof subscribers)[number]) => {
      const events = seen.get(channel) ?? [];
      const ids = received(events);
      return acked.filter((a) => a.channel === channel).every((a) => ids.has(a.id) || laterEpochSeen(events, a));
    };
    await waitUntil(() => subscribers.every(settled), 15_000, "subscribers to catch up").catch(() => undefined);
    let lost = 0;
    let delivered = 0;
    for (const { channel, seen } of subscribers) {
      const events = seen.get(channel) ?? [];
      // In order, once each, within every epoch.
      const ids = new Set<string>();
      for (let i = 0; i < events.length; i++) {
        assert.ok(!ids.has(events[i]!.id), `duplicate delivery on ${channel}`);
        ids.add(events[i]!.id);
        const prev = events[i - 1];
        if (prev && prev.epoch === events[i]!.epoch) assert.equal(events[i]!.offset, prev.offset + 1, `gap or disorder on ${channel}`);
      }
      for (const a of acked.filter((x) => x.channel === channel)) {
        if (ids.has(a.id)) delivered++;
        else if (!laterEpochSeen(events, a)) lost++;
      }
    }
    const epochChanges = subscribers.filter(({ channel, seen }) => new Set((seen.get(channel) ?? []).map((e) => e.epoch)).size > 1).length;
    console.log(
      `failover: ${acked.length} publishes acked, ${refused} refused (503), ${delivered} deliveries, ${lost} lost; ` +
        `replica promoted ${healthyAt - killedAt} ms after the kill, first publish on the failed shard acked ${recoveredAt ? recoveredAt - killedAt : "never"} ms after; ` +
        `${epochChanges} subscriptions saw a new epoch; ${CHANNELS.length} channels, ${channelOnKilledShard.size} on the failed shard, run ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
    assert.equal(lost, 0);
    // The failed shard's channels continue in a new epoch (their newest events may not have
    // reached the promoted replica), and their subscribers were shown it.
    assert.equal(epochChanges, 2 * channelOnKilledShard.size);
    assert.ok(recoveredAt > 0, "publishing on the failed shard's channels resumed");
    assert.ok(acked.some((a) => channelOnKilledShard.has(a.channel) && a.offset > 0));
    // The gateways stayed up and ready.
    for (const gateway of gateways) assert.equal((await fetch(`${gateway.url}/readyz`)).status, 200);
  });
});

/** Whether the subscriber got an event of a newer epoch of the channel after this one was published. */
function laterEpochSeen(events: ChannelEvent[], acked: Acked): boolean {
  const at = events.findIndex((e) => e.epoch === acked.epoch);
  return events.some((e, i) => e.epoch !== acked.epoch && (at < 0 || i > at));
}
