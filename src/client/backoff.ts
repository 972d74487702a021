/** Reconnect delays: exponential (1, 2, 4, 8, 16 s by default), capped, with jitter. */
export interface BackoffOptions {
  /** First delay (ms). @default 1000 */
  initialMs?: number;
  /** Cap (ms). @default 16000 */
  maxMs?: number;
  /** Growth per attempt. @default 2 */
  factor?: number;
  /** Fraction of the delay that is random, 0 to 1. @default 0.5 */
  jitter?: number;
}

export function backoffDelay(
  attempt: number,
  options: BackoffOptions = {},
  random: () => number = Math.random,
): number {
  const { initialMs = 1000, maxMs = 16_000, factor = 2, jitter = 0.5 } = options;
  const base = Math.min(maxMs, initialMs * factor ** Math.max(attempt, 0));
  return Math.round(base * (1 - jitter + jitter * random()));
}

/** The `exp` claim of a JWT (seconds), read without verifying it; undefined if unreadable. */
export function tokenExpiry(token: string): number | undefined {
  const payload = token.split(".")[1];
  if (!payload) return undefined;
  try {
    const json = atob(
      payload
        .replace(/-/g, "+")
        .replace(/_/g, "/")
        .padEnd(Math.ceil(payload.length / 4) * 4, "="),
    );
    const exp = (JSON.parse(json) as { exp?: unknown }).exp;
    return typeof exp === "number" ? exp : undefined;
  } catch {
    return undefined;
  }
}
