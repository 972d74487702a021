/**
 * Verifies JWTs with pinned algorithms (docs/protocol.md, "Connecting"): HS256 with a shared
 * secret, or RS256/ES256/EdDSA with a public key file or a JWKS file. `alg: none` and any
 * algorithm the key does not pin are refused.
 */
import { createPublicKey, createSecretKey, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import {
  createLocalJWKSet,
  importSPKI,
  jwtVerify,
  type CryptoKey,
  type JSONWebKeySet,
  type JWTPayload,
  type JWTVerifyGetKey,
} from "jose";
import { verifyHs256 } from "./hs256.js";
import { ConfigError, type Config } from "../config/load-config.js";
import { RoomcastError } from "../contracts/error-codes.js";

/** Who a verified token speaks for. */
export interface Principal {
  sub: string;
  scopes: ReadonlySet<string>;
  /** Environment ids, or "*" for all. */
  envs: readonly string[];
  tenant: string | undefined;
  /** Expiry, seconds since epoch. */
  exp: number;
  /** What presence shows of the user: the token's `name` and `avatar` claims, when it has them. */
  info?: PresenceInfo;
}

export interface PresenceInfo {
  name?: string;
  avatar?: string;
}

/** Longest `name` and `avatar` claims shown by presence (longer ones are left out, not cut). */
const MAX_INFO_CHARS = { name: 200, avatar: 2048 } as const;

function presenceInfo(payload: Record<string, unknown>): PresenceInfo | undefined {
  let info: PresenceInfo | undefined;
  for (const key of ["name", "avatar"] as const) {
    const value = payload[key];
    if (typeof value === "string" && value !== "" && value.length <= MAX_INFO_CHARS[key]) (info ??= {})[key] = value;
  }
  return info;
}

export type TokenVerifier = (token: string) => Promise<Principal>;

function algorithmsForKey(key: KeyObject): string[] {
  switch (key.asymmetricKeyType) {
    case "rsa":
      return ["RS256"];
    case "ec":
      if (key.asymmetricKeyDetails?.namedCurve !== "prime256v1") {
        throw new ConfigError(
          `invalid setting ROOMCAST_JWT_PUBLIC_KEY_FILE: EC keys must be P-256 for ES256 (found ${key.asymmetricKeyDetails?.namedCurve ?? "unknown curve"})`,
        );
      }
      return ["ES256"];
    case "ed25519":
      return ["EdDSA"];
    default:
      throw new ConfigError(
        `invalid setting ROOMCAST_JWT_PUBLIC_KEY_FILE: unsupported key type ${key.asymmetricKeyType ?? "unknown"} (RSA, EC P-256 or Ed25519)`,
      );
  }
}

function algorithmsForJwks(jwks: JSONWebKeySet): string[] {
  const algs = new Set<string>();
  for (const jwk of jwks.keys) {
    if (jwk.alg) algs.add(jwk.alg);
    else if (jwk.kty === "RSA") algs.add("RS256");
    else if (jwk.kty === "EC") algs.add("ES256");
    else if (jwk.kty === "OKP") algs.add("EdDSA");
  }
  const allowed = ["RS256", "ES256", "EdDSA"];
  const bad = [...algs].filter((a) => !allowed.includes(a));
  if (bad.length > 0 || algs.size === 0)
    throw new ConfigError(
      `invalid setting ROOMCAST_JWKS_FILE: keys must be RS256, ES256 or EdDSA${bad.length ? ` (found ${bad.join(", ")})` : ""}`,
    );
  return [...algs];
}

function readKeyFile(setting: string, path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigError(
      `invalid setting ${setting}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? "error"})`,
    );
  }
}

/**
 * Tokens of a deployment carry a handful of distinct scope and envs claims: each connection's
 * principal shares one frozen Set or array per distinct value instead of holding its own.
 */
const INTERNED_MAX = 10_000;
const internedScopes = new Map<string, ReadonlySet<string>>();
const internedEnvs = new Map<string, readonly string[]>();

function interned<T>(cache: Map<string, T>, key: string, make: () => T): T {
  let value = cache.get(key);
  if (value === undefined) {
    if (cache.size >= INTERNED_MAX) cache.clear();
    cache.set(key, (value = make()));
  }
  return value;
}

function toPrincipal(payload: JWTPayload | Record<string, unknown>, maxLifetimeS: number): Principal {
  const { sub, exp, iat } = payload;
  if (typeof sub !== "string" || sub === "") throw new RoomcastError("unauthorized", "token has no sub claim");
  if (typeof exp !== "number") throw new RoomcastError("unauthorized", "token has no exp claim");
  // A token that never expires (exp 1e300) is a stolen token forever: lifetimes are bounded.
  const now = Date.now() / 1000;
  const issued = typeof iat === "number" ? Math.min(iat, now) : now;
  if (maxLifetimeS > 0 && exp - issued > maxLifetimeS)
    throw new RoomcastError("unauthorized", `token lifetime over the limit of ${maxLifetimeS} s`);
  const rawScope = payload.scope;
  const scopeList =
    typeof rawScope === "string"
      ? rawScope.split(" ").filter(Boolean)
      : Array.isArray(rawScope)
        ? rawScope.filter((s): s is string => typeof s === "string")
        : [];
  const scopes = interned(
    internedScopes,
    scopeList.join(" "),
    () => Object.freeze(new Set(scopeList)) as ReadonlySet<string>,
  );
  const rawEnvs = payload.envs;
  const envList = Array.isArray(rawEnvs) ? rawEnvs.filter((e): e is string => typeof e === "string") : [];
  const envs = interned(internedEnvs, JSON.stringify(envList), () => Object.freeze(envList));
  const tenant = typeof payload.tenant === "string" ? payload.tenant : undefined;
  const info = presenceInfo(payload);
  return info ? { sub, exp, scopes, envs, tenant, info } : { sub, exp, scopes, envs, tenant };
}

/** Verified tokens kept, at most (a few hundred KB, not a cost per connection). */
const VERIFIED_MAX = 1000;

/**
 * Remembers the tokens it verified, until they expire: a backend's token on every publish, and
 * a client's on every reconnect (a replica's clients coming back at once), are verified once.
 * Only successes are kept; a token's claims cannot change (its signature covers them).
 */
function remembering(verify: TokenVerifier): TokenVerifier {
  const verified = new Map<string, Principal>();
  return async (token) => {
    const known = verified.get(token);
    if (known !== undefined) {
      if (known.exp > Date.now() / 1000) return known;
      verified.delete(token);
    }
    const principal = await verify(token);
    if (verified.size >= VERIFIED_MAX) verified.clear();
    verified.set(token, principal);
    return principal;
  };
}

/** Reads the key settings once; the returned function verifies a token or throws 4401. */
export function createTokenVerifier(config: Config): TokenVerifier {
  return remembering(createVerifier(config));
}

function createVerifier(config: Config): TokenVerifier {
  let key: KeyObject | JWTVerifyGetKey | Promise<CryptoKey>;
  let algorithms: string[];
  if (config.jwtSecret) {
    // HS256 on node:crypto (hs256.ts): the hot path of every handshake.
    const secret = createSecretKey(Buffer.from(config.jwtSecret, "utf8"));
    const claims = { issuer: config.jwtIssuer, audience: config.jwtAudience };
    return async (token: string) => {
      try {
        return toPrincipal(verifyHs256(token, secret, claims), config.maxTokenLifetimeS);
      } catch (err) {
        throw unauthorized(err);
      }
    };
  } else if (config.jwtPublicKeyFile) {
    const pem = readKeyFile("ROOMCAST_JWT_PUBLIC_KEY_FILE", config.jwtPublicKeyFile);
    let publicKey: KeyObject;
    try {
      publicKey = createPublicKey(pem);
    } catch {
      throw new ConfigError(
        `invalid setting ROOMCAST_JWT_PUBLIC_KEY_FILE: ${config.jwtPublicKeyFile} holds no PEM public key`,
      );
    }
    algorithms = algorithmsForKey(publicKey);
    // Imported once as a CryptoKey: jose would import a KeyObject again for every token.
    key = importSPKI(publicKey.export({ type: "spki", format: "pem" }).toString(), algorithms[0]!);
    key.catch(() => undefined);
  } else if (config.jwksFile) {
    let jwks: JSONWebKeySet;
    try {
      jwks = JSON.parse(readKeyFile("ROOMCAST_JWKS_FILE", config.jwksFile)) as JSONWebKeySet;
      if (!Array.isArray(jwks.keys)) throw new Error("no keys");
    } catch (err) {
      if (err instanceof ConfigError) throw err;
      throw new ConfigError(`invalid setting ROOMCAST_JWKS_FILE: ${config.jwksFile} is not a JWKS ({"keys": [...]})`);
    }
    algorithms = algorithmsForJwks(jwks);
    key = createLocalJWKSet(jwks);
  } else {
    throw new ConfigError(
      "missing setting ROOMCAST_JWT_SECRET: set it, ROOMCAST_JWT_PUBLIC_KEY_FILE or ROOMCAST_JWKS_FILE",
    );
  }
  const options = {
    algorithms,
    requiredClaims: ["sub", "exp"],
    ...(config.jwtIssuer ? { issuer: config.jwtIssuer } : {}),
    ...(config.jwtAudience ? { audience: config.jwtAudience } : {}),
  };
  return async (token: string) => {
    try {
      const { payload } =
        typeof key === "function" ? await jwtVerify(token, key, options) : await jwtVerify(token, await key, options);
      return toPrincipal(payload, config.maxTokenLifetimeS);
    } catch (err) {
      throw unauthorized(err);
    }
  };
}

/** Any verification failure as the client's 4401, telling an expired token or a wrong algorithm apart. */
function unauthorized(err: unknown): RoomcastError {
  if (err instanceof RoomcastError) return err;
  const code = (err as { code?: string }).code;
  const message =
    code === "ERR_JWT_EXPIRED"
      ? "token expired"
      : code === "ERR_JOSE_ALG_NOT_ALLOWED"
        ? "token algorithm not allowed"
        : "invalid token";
  return new RoomcastError("unauthorized", message);
}

/** Extracts a token from `Authorization: Bearer <jwt>`. */
export function bearerToken(header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  const match = value ? /^Bearer\s+(\S+)\s*$/i.exec(value) : null;
  return match?.[1];
}
