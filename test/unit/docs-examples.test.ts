/**
 * The code in docs/protocol.md marked `<!-- example: path[#region] -->` is the code the tests
 * run: each block must equal that file (or its `example:<region>` ... `end example` part).
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";

const root = new URL("../../", import.meta.url);

function region(path: string, name: string | undefined): string {
  const text = readFileSync(new URL(path, root), "utf8");
  if (!name) return text.replace(/\n+$/, "");
  const lines = text.split("\n");
  const start = lines.findIndex((l) => /^\s*(\/\/|#) example:/.test(l) && l.trim().endsWith(`example:${name}`));
  const end = lines.findIndex((l, i) => i > start && /^\s*(\/\/|#) end example/.test(l));
  assert.ok(start >= 0 && end > start, `no example:${name} region in ${path}`);
  const block = lines.slice(start + 1, end);
  const indent = Math.min(...block.filter((l) => l.trim()).map((l) => l.length - l.trimStart().length));
  return block.map((l) => l.slice(indent)).join("\n");
}

describe("docs/protocol.md examples", () => {
  it("match the files the tests run", () => {
    const doc = readFileSync(new URL("docs/protocol.md", root), "utf8");
    const examples = [...doc.matchAll(/<!-- example: ([^#\s]+)(?:#(\S+))? -->\n```\w*\n([\s\S]*?)\n```/g)];
    assert.ok(examples.length >= 2, "examples found");
    for (const [, path, name, code] of examples)
      assert.equal(code, region(path!, name), `${path}${name ? `#${name}` : ""} differs from docs/protocol.md`);
  });
});
