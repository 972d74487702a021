/**
 * HS256 JWT verification on node:crypto's HMAC: synchronous and about a tenth of the CPU of
 * jose's WebCrypto path (a key import and a thread-pool job per token), which dominated the
 * cost of a handshake. It applies jose's rules: three base64url parts, a JSON header whose
 * `alg` is exactly HS256 with no `crit` and no `b64: false`, a constant-time signature
 * comparison, a JSON object payload, and the registered claims (`exp` and `sub` required; `exp`
 * and `nbf` against the clock, `iat` a number, `iss` and `aud` when configured).
 */
import { createHmac, timingSafeEqual, type KeyObject } from "node:crypto";

/** Thrown like jose's errors: `code` tells an expired token from an invalid one. */
export class JwtError extends Error {
  constructor(
    readonly code:
      | "ERR_JWT_EXPIRED"
      | "ERR_JOSE_ALG_NOT_ALLOWED"
      | "ERR_JWT_INVALID"
      | "ERR_JWS_SIGNATURE_VERIFICATION_FAILED"
      | "ERR_JWT_CLAIM_VALIDATION_FAILED",
    message: string,
  ) {
    super(message);
  }
}

const BASE64URL = /^[A-Za-z0-9_-]*$/;

function decodeJson(part: string, what: string): unknown {
  if (part === "" || !BASE64URL.test(part)) throw new JwtError("ERR_JWT_INVALID", `${what} is not base64url`);
  try {
    return JSON.parse(Buffer.from(part, "base64url").toString("utf8"));
  } catch {
    throw new JwtError("ERR_JWT_INVALID", `${what} is not JSON`);
  }
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

export interface Hs256Options {
  issuer?: string | undefined;
  audience?: string | undefined;
  /** Seconds since epoch (for tests). */
  now?: number;
}

export function verifyHs256(token: string, key: KeyObject, options: Hs256Options = {}): Record<string, unknown> {
  const parts = token.split(".");
  if (parts.length !== 3) throw new JwtError("ERR_JWT_INVALID", "not a compact JWS");
  const [headerPart, payloadPart, signaturePart] = parts as [string, string, string];
  const header = decodeJson(headerPart, "header");
  if (!isObject(header)) throw new JwtError("ERR_JWT_INVALID", "header is not an object");
  if (header.alg !== "HS256") throw new JwtError("ERR_JOSE_ALG_NOT_ALLOWED", "algorithm not allowed");
  if (header.crit !== undefined || header.b64 !== undefined)
    throw new JwtError("ERR_JWT_INVALID", "unsupported header parameters");
  if (!BASE64URL.test(signaturePart)) throw new JwtError("ERR_JWT_INVALID", "signature is not base64url");
  const signature = Buffer.from(signaturePart, "base64url");
  const expected = createHmac("sha256", key).update(`${headerPart}.${payloadPart}`).digest();
  if (signature.length !== expected.length || !timingSafeEqual(signature, expected)) {
    throw new JwtError("ERR_JWS_SIGNATURE_VERIFICATION_FAILED", "signature verification failed");
  }
  const payload = decodeJson(payloadPart, "payload");
  if (!isObject(payload)) throw new JwtError("ERR_JWT_INVALID", "payload is not an object");
  const now = options.now ?? Math.floor(Date.now() / 1000);
  for (const claim of ["sub", "exp"]) {
    if (payload[claim] === undefined)
      throw new JwtError("ERR_JWT_CLAIM_VALIDATION_FAILED", `missing required "${claim}" claim`);
  }
  for (const claim of ["exp", "nbf", "iat"]) {
    const value = payload[claim];
    if (value !== undefined && (typeof value !== "number" || !Number.isFinite(value)))
      throw new JwtError("ERR_JWT_INVALID", `"${claim}" claim must be a number`);
  }
  if ((payload.nbf as number | undefined) !== undefined && (payload.nbf as number) > now)
    throw new JwtError("ERR_JWT_CLAIM_VALIDATION_FAILED", '"nbf" claim timestamp check failed');
  if ((payload.exp as number) <= now) throw new JwtError("ERR_JWT_EXPIRED", '"exp" claim timestamp check failed');
  if (options.issuer !== undefined && payload.iss !== options.issuer)
    throw new JwtError("ERR_JWT_CLAIM_VALIDATION_FAILED", 'unexpected "iss" claim value');
  if (options.audience !== undefined) {
    const aud = payload.aud;
    const ok =
      typeof aud === "string" ? aud === options.audience : Array.isArray(aud) && aud.includes(options.audience);
    if (!ok) throw new JwtError("ERR_JWT_CLAIM_VALIDATION_FAILED", 'unexpected "aud" claim value');
  }
  return payload;
}
