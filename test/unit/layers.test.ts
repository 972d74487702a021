/**
 * The layers of src/ (eslint-layers.js, docs/architecture.md) hold: the lint rule refuses an
 * import that runs back up or sideways, allows one that runs down, and src/ has none today.
 */
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { ESLint } from "eslint";
import { forbiddenFor, ISOLATED, LAYERS } from "../../eslint-layers.js";

const root = fileURLToPath(new URL("../../", import.meta.url));
const eslint = new ESLint({ cwd: root });

async function importErrors(file: string, from: string): Promise<string[]> {
  const [result] = await eslint.lintText(`import "${from}";\n`, { filePath: `${root}${file}` });
  return result!.messages.filter((m) => m.ruleId === "no-restricted-imports").map((m) => m.message);
}

describe("src/ layers", () => {
  it("refuses imports up or sideways, allows them down", async () => {
    assert.match(
      (await importErrors("src/channels/example.ts", "../gateway/types.js"))[0] ?? "",
      /src\/channels\/ may not import src\/gateway\//,
    );
    assert.equal(
      (await importErrors("src/gateway/handlers/example.ts", "../../http/http-app.js")).length,
      1,
      "gateway and http are siblings",
    );
    assert.equal((await importErrors("src/config/example.ts", "../cluster/redis-clients.js")).length, 1);
    assert.equal(
      (await importErrors("src/client/example.ts", "../channels/channel-keys.js")).length,
      1,
      "the SDK speaks only the contracts",
    );
    assert.deepEqual(await importErrors("src/gateway/handlers/example.ts", "../../channels/channel-keys.js"), []);
    assert.deepEqual(await importErrors("src/app/example.ts", "../gateway/socket-server.js"), []);
    assert.deepEqual(await importErrors("src/client/example.ts", "../contracts/events.js"), []);
  });

  it("puts every folder of src/ in a layer, and contracts below everything", () => {
    const folders = readdirSync(`${root}src`, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name);
    const placed = [...LAYERS.flat(), ...Object.keys(ISOLATED)];
    assert.deepEqual([...folders].sort(), [...placed].sort(), "a new folder needs its place in eslint-layers.js");
    assert.deepEqual(
      [...forbiddenFor("contracts")].sort(),
      placed.filter((f) => f !== "contracts").sort(),
      "contracts import no other folder",
    );
  });

  it("has no violation in src/ today", async () => {
    const results = await eslint.lintFiles(["src/**/*.ts"]);
    const violations = results.flatMap((r) =>
      r.messages.filter((m) => m.ruleId === "no-restricted-imports").map((m) => `${r.filePath}: ${m.message}`),
    );
    assert.deepEqual(violations, []);
  });
});
