/**
 * Recovery after a replica is killed: N clients, all on replica A, each subscribed to one of
 * N/50 channels, while a publisher posts through replica B at a steady rate. A is SIGKILLed
 * 3 s in; every client reconnects to B (after 100 to 1000 ms, like a careful client), and
 * resubscribes with `since` where the system has positions (roomcast, Centrifugo) or plainly
 * (the stock baselines, which lose what was published meanwhile). Reported: the time until
 * every client has resubscribed, subscriptions recovered, and events lost (must be 0) or
 * repeated, counted per channel against the publisher's sequence.
 */
import { nowMs, sleep } from "../lib/proc.js";
import type { SystemKey } from "../systems/systems.js";
import { clientSpecs, until, withSystem, type Profile, type ScenarioResult } from "./harness.js";

export async function recovery(key: SystemKey, profile: Profile): Promise<ScenarioResult> {
  const n = profile === "full" ? 5000 : 1000;
  const channels = Math.max(1, Math.floor(n / 50));
  const rate = 500;
  const seconds = profile === "full" ? 15 : 10;
  return withSystem(key, { replicas: 2, loadgens: 2 }, async ({ system, clients, publisher, meter }) => {
    const [a, b] = system.replicas as [(typeof system.replicas)[0], (typeof system.replicas)[0]];
    const names = Array.from({ length: channels }, (_, i) => system.channel(i));
    const specs = await clientSpecs(system, n, (i) => [names[i % channels]!]);
    const connected = await clients.connect(
      {
        protocol: system.protocol,
        urls: [a.url, b.url],
        allOnFirst: true,
        concurrency: 64,
        sampleEvery: 0,
        track: true,
      },
      specs,
    );
    const cpu = meter();
    const publishing = publisher.publish({
      kind: system.protocol,
      urls: [b.url],
      headers: system.publishHeaders,
      channels: names,
      count: rate * seconds,
      rate,
      concurrency: 32,
    });
    await sleep(3000);
    const killedAt = nowMs();
    await a.kill(true); // a crash, even when profiled (A then writes no profile)
    // When half and 99% were back, too: a slow tail (a few clients retrying) shows there.
    let halfAt: number | undefined;
    let p99At: number | undefined;
    const all = await until(
      async () => {
        const back = (await clients.stats()).clientsResubscribed;
        const seconds = (nowMs() - killedAt) / 1000;
        if (back >= 0.5 * connected.connected) halfAt ??= seconds;
        if (back >= 0.99 * connected.connected) p99At ??= seconds;
        return back >= connected.connected;
      },
      60_000,
      100,
    );
    const published = await publishing;
    await sleep(2000);
    // Every channel got the same number of events (round robin), offsets (seq) 1..n.
    const stats = await clients.stats(published.errors === 0 ? (rate * seconds) / channels : undefined);
    const used = cpu.stop();
    return {
      scenario: "recovery after a replica kill",
      system: key,
      figures: {
        clients: connected.connected,
        resubscribed: stats.clientsResubscribed,
        reconnect_attempts: stats.reconnects,
        seconds_until_half_resubscribed: halfAt ?? NaN,
        seconds_until_99pct_resubscribed: p99At ?? NaN,
        seconds_until_all_resubscribed: all ? (stats.lastResubscribedAt - killedAt) / 1000 : NaN,
        recovered_subscriptions: stats.recovered,
        not_recovered_subscriptions: stats.notRecovered,
        events_lost: stats.lost,
        events_repeated: stats.duplicates,
        deliveries: stats.deliveries,
      },
      cpu: used,
      notes: [
        ...(all ? [] : ["not every client resubscribed within 60 s"]),
        ...(published.errors
          ? [`${published.errors} publishes failed: lost counted up to the highest offset seen`]
          : []),
        ...stats.errors.slice(0, 3),
      ],
    };
  });
}
