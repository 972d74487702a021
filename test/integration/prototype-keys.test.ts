/**
 * Names from clients that are keys of Object.prototype (`constructor`, `__proto__`,
 * `toString`, `hasOwnProperty`...) are ordinary unknown names everywhere a name is looked up
 * (docs/protocol.md, "Channels and authorization"): as a namespace, a stream, a job id, over
 * the socket and over HTTP. A well-formed name of an unknown namespace or stream is `4404
 * not_found`; a name the channel pattern refuses is `4400 bad_request`; never 4500, never
 * published. Every key of Object.prototype is walked.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { CHANNEL_NAME } from "../../src/contracts/channel-name.js";
import { connect, httpGet, httpPublish, request, token, type TestSocket } from "../support/clients.js";
import { LIMITS_OFF, startCluster, type TestCluster } from "../support/cluster.js";

const PROTOTYPE_KEYS = Object.getOwnPropertyNames(Object.prototype);

interface ErrorBody {
  code: number;
  reason: string;
}

/** What a channel name built from a prototype key must be answered. */
function expected(channel: string): { code: number; status: number } {
  return CHANNEL_NAME.test(channel) ? { code: 4404, status: 404 } : { code: 4400, status: 400 };
}

describe("Object.prototype keys as names", () => {
  let cluster: TestCluster;
  let socket: TestSocket;
  let publisher: string;
  let reader: string;

  before(async () => {
    // Hundreds of refused requests in a row: the rate limits are not what this is about.
    cluster = await startCluster({ replicas: 1, env: LIMITS_OFF });
    // A token that would be allowed anywhere a real namespace let it.
    const claims = { sub: "proto", envs: ["*"], scope: "env:read jobs:read publish admin" };
    socket = await connect(cluster.gateways[0]!.url, { token: await token(claims) });
    publisher = await token(claims);
    reader = await token(claims);
  });
  after(async () => {
    socket?.close();
    await cluster?.close();
  });

  it(`walks ${PROTOTYPE_KEYS.length} keys as namespace, stream and job id, on the socket and over HTTP`, async () => {
    assert.ok(
      PROTOTYPE_KEYS.includes("constructor") &&
        PROTOTYPE_KEYS.includes("__proto__") &&
        PROTOTYPE_KEYS.includes("toString"),
    );
    const url = cluster.gateways[0]!.url;
    const checked: string[] = [];
    for (const key of PROTOTYPE_KEYS) {
      for (const channel of [`${key}:x`, `${key.toLowerCase()}:x`, `env:dev:${key}`]) {
        const want = expected(channel);
        for (const event of ["subscribe", "publish"]) {
          const answer = await request<{ ok: boolean; error?: ErrorBody }>(
            socket,
            event,
            event === "subscribe" ? { channel } : { channel, type: "n", data: 1 },
          );
          assert.equal(answer.ok, false, `${event} ${channel}: ${JSON.stringify(answer)}`);
          assert.equal(answer.error!.code, want.code, `${event} ${channel}: ${JSON.stringify(answer.error)}`);
        }
        const published = await httpPublish(url, publisher, channel, { type: "n", data: 1 });
        assert.equal(published.status, want.status, `POST events ${channel}: ${JSON.stringify(published.body)}`);
        assert.equal((published.body.error as ErrorBody).code, want.code);
        const history = await httpGet(`${url}/v1/channels/${encodeURIComponent(channel)}/history`, reader);
        assert.equal(history.status, want.status, `GET history ${channel}: ${JSON.stringify(history.body)}`);
        checked.push(channel);
      }
      // A job id that is a prototype key: no such job.
      const job = `job:${key}`;
      if (CHANNEL_NAME.test(job)) {
        const answer = await request<{ ok: boolean; error?: ErrorBody }>(socket, "subscribe", { channel: job });
        assert.equal(answer.error?.code, 4404, `subscribe ${job}: ${JSON.stringify(answer)}`);
        const published = await httpPublish(url, publisher, job, { type: "n", data: 1 });
        assert.equal(published.status, 404, `POST events ${job}: ${JSON.stringify(published.body)}`);
        const jobView = await httpGet(`${url}/v1/jobs/${encodeURIComponent(key)}`, reader);
        assert.ok([400, 404].includes(jobView.status), `GET /v1/jobs/${key}: ${jobView.status}`);
      }
    }
    // The same in one batch: each event answered on its own, none published.
    const events = checked.map((channel) => ({ channel, type: "n", data: 1 }));
    const res = await fetch(`${url}/v1/publish`, {
      method: "POST",
      headers: { authorization: `Bearer ${publisher}`, "content-type": "application/json" },
      body: JSON.stringify({ events }),
    });
    const body = (await res.json()) as { results: { error?: ErrorBody }[] };
    assert.equal(res.status, 202);
    body.results.forEach((result, i) =>
      assert.equal(result.error?.code, expected(checked[i]!).code, `batch ${checked[i]}: ${JSON.stringify(result)}`),
    );
    // And the replica still serves everyone.
    const fine = await request<{ ok: boolean }>(socket, "subscribe", { channel: "user:proto" });
    assert.equal(fine.ok, true);
    assert.match(
      cluster.gateways[0]!.output(),
      /^(?![\s\S]*request failed)/,
      "no request failed with an internal error",
    );
  });
});
