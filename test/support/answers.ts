/** Assertions on request answers (`{ ok: true, ... }` or `{ ok: false, error }`), shared by the tests. */
import assert from "node:assert/strict";

export interface ErrorBody {
  code: number;
  reason: string;
  message: string;
  [detail: string]: unknown;
}
export type Answer = { ok: true; [k: string]: unknown } | { ok: false; error: ErrorBody };

export function okAnswer(answer: Answer): Record<string, unknown> {
  assert.equal(answer.ok, true, `expected ok, got ${JSON.stringify(answer)}`);
  return answer;
}

/**
 * Asserts a refusal with the exact code and reason and a client-safe message; returns its
 * error. `expect` is either the exact detail keys besides code, reason and message, or the
 * `field` a 4400 names (a string or a pattern).
 */
export function refusedWith(
  answer: Answer,
  code: number,
  reason: string,
  expect?: readonly string[] | string | RegExp,
): ErrorBody {
  assert.equal(answer.ok, false, `expected a refusal, got ${JSON.stringify(answer).slice(0, 300)}`);
  assert.deepEqual(Object.keys(answer).sort(), ["error", "ok"]);
  const { error } = answer as { ok: false; error: ErrorBody };
  assert.equal(error.code, code, JSON.stringify(error));
  assert.equal(error.reason, reason, JSON.stringify(error));
  assert.equal(typeof error.message, "string");
  assert.ok(error.message.length > 0);
  assert.doesNotMatch(error.message, /at .*\.js:\d+|node_modules/, "the message leaks internals");
  if (Array.isArray(expect)) {
    assert.deepEqual(Object.keys(error).sort(), ["code", "message", "reason", ...expect].sort(), JSON.stringify(error));
  } else if (expect !== undefined) {
    const field = String(error.field);
    if (typeof expect === "string") assert.equal(field, expect, `field: ${JSON.stringify(error)}`);
    else assert.match(field, expect as RegExp, `field: ${JSON.stringify(error)}`);
  }
  return error;
}
