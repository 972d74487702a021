/** The README's configuration table stays true to the settings the code reads. */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { SETTINGS } from "../../src/config/settings.js";

describe("README", () => {
  it("documents every setting with its default", () => {
    const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
    for (const spec of Object.values(SETTINGS)) {
      // Set by roomcast start for its own processes: not a user's setting.
      if ("internal" in spec) continue;
      const row = readme.split("\n").find((line) => line.startsWith(`| \`${spec.env}\` |`));
      assert.ok(row, `README has no row for ${spec.env}`);
      if ("default" in spec && !Array.isArray(spec.default))
        assert.ok(
          row.includes(`\`${String(spec.default)}\``),
          `README's default for ${spec.env} is not ${String(spec.default)}`,
        );
    }
  });
});
