/** The HS256 fast path follows jose's rules: the same tokens pass and fail, with the same error codes. */
import assert from "node:assert/strict";
import { createHmac, createSecretKey } from "node:crypto";
import { describe, it } from "node:test";
import { jwtVerify } from "jose";
import { JwtError, verifyHs256 } from "../../src/auth/hs256.js";

const SECRET = "a-secret-that-is-long-enough-for-hs256-signing";
const key = createSecretKey(Buffer.from(SECRET));
const b64 = (value: unknown) =>
  Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString("base64url");
const NOW = Math.floor(Date.now() / 1000);

function sign(header: unknown, payload: unknown, secret = SECRET): string {
  const head = `${b64(header)}.${b64(payload)}`;
  return `${head}.${createHmac("sha256", secret).update(head).digest("base64url")}`;
}

const good = { sub: "u", exp: NOW + 60 };

/** Both verifiers on one token: undefined when it passes, else the error code. */
async function both(
  token: string,
  options: { issuer?: string; audience?: string } = {},
): Promise<[string | undefined, string | undefined]> {
  let mine: string | undefined;
  let jose: string | undefined;
  try {
    verifyHs256(token, key, options);
  } catch (err) {
    assert.ok(err instanceof JwtError);
    mine = err.code;
  }
  try {
    await jwtVerify(token, key, { algorithms: ["HS256"], requiredClaims: ["sub", "exp"], ...options });
  } catch (err) {
    jose = (err as { code: string }).code;
  }
  return [mine, jose];
}

describe("HS256 verification", () => {
  it("accepts what jose accepts, and returns the payload", async () => {
    const token = sign(
      { alg: "HS256", typ: "JWT" },
      { ...good, scope: "a b", aud: ["x", "y"], iss: "me", iat: NOW, nbf: NOW - 1 },
    );
    assert.deepEqual(await both(token, { issuer: "me", audience: "y" }), [undefined, undefined]);
    assert.equal(verifyHs256(token, key).sub, "u");
  });

  const cases: [string, string, { issuer?: string; audience?: string }?][] = [
    ["alg none", `${b64({ alg: "none" })}.${b64(good)}.`],
    ["alg HS512", sign({ alg: "HS512" }, good)],
    ["alg RS256 (key confusion)", sign({ alg: "RS256" }, good)],
    ["crit header", sign({ alg: "HS256", crit: ["exp"], exp: 1 }, good)],
    ["b64 false", sign({ alg: "HS256", b64: false, crit: ["b64"] }, good)],
    ["wrong secret", sign({ alg: "HS256" }, good, "another-secret-that-is-long-enough-too")],
    ["tampered payload", sign({ alg: "HS256" }, good).replace(/\.[^.]+\./, `.${b64({ ...good, sub: "admin" })}.`)],
    ["truncated signature", sign({ alg: "HS256" }, good).slice(0, -4)],
    ["two parts", `${b64({ alg: "HS256" })}.${b64(good)}`],
    ["four parts", `${sign({ alg: "HS256" }, good)}.x`],
    ["header not JSON", `${b64("nope")}.${b64(good)}.sig`],
    ["header an array", sign(["HS256"], good)],
    ["payload an array", sign({ alg: "HS256" }, [good])],
    ["payload not JSON", sign({ alg: "HS256" }, "not json")],
    ["non-base64url characters", sign({ alg: "HS256" }, good).replace(".", ".+")],
    ["expired", sign({ alg: "HS256" }, { sub: "u", exp: NOW - 1 })],
    ["expiring now", sign({ alg: "HS256" }, { sub: "u", exp: NOW })],
    ["exp a string", sign({ alg: "HS256" }, { sub: "u", exp: String(NOW + 60) })],
    ["no exp", sign({ alg: "HS256" }, { sub: "u" })],
    ["no sub", sign({ alg: "HS256" }, { exp: NOW + 60 })],
    ["nbf in the future", sign({ alg: "HS256" }, { ...good, nbf: NOW + 30 })],
    ["iat a string", sign({ alg: "HS256" }, { ...good, iat: "yesterday" })],
    ["wrong issuer", sign({ alg: "HS256" }, { ...good, iss: "them" }), { issuer: "me" }],
    ["no issuer", sign({ alg: "HS256" }, good), { issuer: "me" }],
    ["wrong audience", sign({ alg: "HS256" }, { ...good, aud: ["x"] }), { audience: "y" }],
  ];
  for (const [name, token, options] of cases) {
    it(`refuses ${name}, as jose does`, async () => {
      const [mine, jose] = await both(token, options);
      assert.ok(mine, "refused");
      assert.ok(jose, "jose refuses it too");
      // Expiry and algorithm are told apart (the client's message says so); the rest is "invalid".
      for (const code of ["ERR_JWT_EXPIRED", "ERR_JOSE_ALG_NOT_ALLOWED"])
        assert.equal(mine === code, jose === code, `${name}: mine ${mine}, jose ${jose}`);
    });
  }
});
