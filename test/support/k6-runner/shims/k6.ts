/** The `k6` module: check, fail, sleep, group, randomSeed. */
import { runtime } from "../runtime.js";

const sleeper = new Int32Array(new SharedArrayBuffer(4));

type Checker = ((value: unknown) => unknown) | unknown;

/** Records one pass or fail per check name (the `checks` Rate, tagged `check`). */
export function check(value: unknown, sets: Record<string, Checker>, tags?: Record<string, unknown>): boolean {
  let all = true;
  for (const [name, checker] of Object.entries(sets)) {
    // k6 calls function checks and takes other values for their truthiness; an exception in a check propagates.
    const ok = Boolean(typeof checker === "function" ? (checker as (v: unknown) => unknown)(value) : checker);
    runtime.builtin("checks", "rate", false, ok ? 1 : 0, { ...tags, check: name });
    if (!ok) all = false;
  }
  return all;
}

export function fail(message?: string): never {
  throw new Error(message ?? "");
}

/** Blocks the VU (its event loop too), as k6's sleep does. */
export function sleep(seconds: number): void {
  if (seconds > 0) Atomics.wait(sleeper, 0, 0, seconds * 1000);
}

export function group<T>(name: string, fn: () => T): T {
  const outer = runtime.group;
  runtime.group = `${outer}::${name}`;
  try {
    return fn();
  } finally {
    runtime.group = outer;
  }
}

/** Seeds Math.random (mulberry32), as k6's randomSeed makes it reproducible. */
export function randomSeed(seed: number): void {
  let a = seed | 0;
  Math.random = () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export default { check, fail, sleep, group, randomSeed };
