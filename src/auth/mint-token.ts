/** Mints HS256 tokens for development, tests and `roomcast token`. */
import { SignJWT } from "jose";

export interface MintOptions {
  secret: string;
  sub: string;
  envs?: readonly string[];
  scope?: string | readonly string[];
  tenant?: string;
  /** Lifetime in seconds. */
  ttlS?: number;
  extra?: Record<string, unknown>;
}

export async function mintToken({
  secret,
  sub,
  envs,
  scope,
  tenant,
  ttlS = 3600,
  extra = {},
}: MintOptions): Promise<string> {
  const claims: Record<string, unknown> = { ...extra };
  if (envs) claims.envs = [...envs];
  if (scope !== undefined) claims.scope = typeof scope === "string" ? scope : scope.join(" ");
  if (tenant) claims.tenant = tenant;
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT(claims)
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(sub)
    .setIssuedAt(now)
    .setExpirationTime(now + ttlS)
    .sign(new TextEncoder().encode(secret));
}

/** `1h`, `30m`, `45s`, `2d` or plain seconds. */
export function parseDuration(text: string): number {
  const match = /^(\d+)\s*([smhd]?)$/.exec(text.trim());
  if (!match) throw new Error(`not a duration: ${text} (use 30s, 15m, 1h, 7d)`);
  const unit = { "": 1, s: 1, m: 60, h: 3600, d: 86400 }[match[2] as "" | "s" | "m" | "h" | "d"];
  return Number(match[1]) * unit;
}
