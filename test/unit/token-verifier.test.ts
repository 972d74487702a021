/** createTokenVerifier: claims mapping, pinned algorithms, key settings. In-process, no servers. */
import assert from "node:assert/strict";
import { generateKeyPairSync, type KeyObject } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { exportJWK, SignJWT } from "jose";
import { bearerToken, createTokenVerifier, type Principal } from "../../src/auth/token-verifier.js";
import { mintToken } from "../../src/auth/mint-token.js";
import { ConfigError, loadConfig } from "../../src/config/load-config.js";
import { RoomcastError } from "../../src/contracts/error-codes.js";

const SECRET = "unit-test-secret-that-is-long-enough";
const secretKey = new TextEncoder().encode(SECRET);
const nowS = () => Math.floor(Date.now() / 1000);
const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");

function sign(
  claims: Record<string, unknown>,
  alg = "HS256",
  key: KeyObject | Uint8Array = secretKey,
  kid?: string,
): Promise<string> {
  return new SignJWT(claims).setProtectedHeader(kid ? { alg, kid } : { alg }).sign(key);
}

const verifierFor = (env: Record<string, string>) => createTokenVerifier(loadConfig({ env }));

/** Asserts a 4401 unauthorized refusal, optionally with an exact message. */
async function rejects401(promise: Promise<unknown>, message?: string): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof RoomcastError, String(err));
    assert.equal(err.code, 4401);
    assert.equal(err.reason, "unauthorized");
    if (message !== undefined) assert.equal(err.message, message);
    return true;
  });
}

describe("createTokenVerifier (HS256)", () => {
  const verify = verifierFor({ ROOMCAST_JWT_SECRET: SECRET });
  const exp = nowS() + 3600;

  it("maps sub, exp, a space-separated scope string, envs and tenant", async () => {
    const principal = await verify(
      await sign({ sub: "alice", exp, scope: "env:read  jobs:read publish ", envs: ["e1", "e2"], tenant: "acme" }),
    );
    assert.deepEqual(principal, {
      sub: "alice",
      exp,
      scopes: new Set(["env:read", "jobs:read", "publish"]),
      envs: ["e1", "e2"],
      tenant: "acme",
    } satisfies Principal);
  });

  it("verifies a token once and remembers it until its exp, then refuses it", async () => {
    const shortExp = nowS() + 2;
    const token = await sign({ sub: "again", exp: shortExp });
    const first = await verify(token);
    assert.equal(await verify(token), first, "the second verification is the remembered principal");
    // A different token (another signature) is verified on its own.
    await rejects401(verify(`${token.slice(0, -2)}xx`));
    await new Promise((r) => setTimeout(r, (shortExp - Date.now() / 1000) * 1000 + 50));
    await rejects401(verify(token), "token expired");
  });

  it("accepts scope as an array of strings, ignoring non-strings", async () => {
    const principal = await verify(await sign({ sub: "alice", exp, scope: ["env:read", 7, "admin", null] }));
    assert.deepEqual([...principal.scopes].sort(), ["admin", "env:read"]);
  });

  it('keeps envs ["*"] and drops non-string envs', async () => {
    assert.deepEqual((await verify(await sign({ sub: "a", exp, envs: ["*"] }))).envs, ["*"]);
    assert.deepEqual((await verify(await sign({ sub: "a", exp, envs: ["e1", 2, { id: "e3" }] }))).envs, ["e1"]);
  });

  it("defaults missing or malformed optional claims to nothing", async () => {
    const principal = await verify(await sign({ sub: "bob", exp, scope: 42, envs: "e1", tenant: 5 }));
    assert.deepEqual(principal, {
      sub: "bob",
      exp,
      scopes: new Set(),
      envs: [],
      tenant: undefined,
    } satisfies Principal);
    const bare = await verify(await sign({ sub: "bob", exp }));
    assert.equal(bare.scopes.size, 0);
    assert.deepEqual(bare.envs, []);
    assert.equal(bare.tenant, undefined);
  });

  it("verifies tokens minted by mintToken (roomcast token)", async () => {
    const principal = await verify(
      await mintToken({
        secret: SECRET,
        sub: "carol",
        envs: ["e9"],
        scope: ["env:read", "jobs:read"],
        tenant: "t",
        ttlS: 60,
      }),
    );
    assert.equal(principal.sub, "carol");
    assert.deepEqual([...principal.scopes], ["env:read", "jobs:read"]);
    assert.deepEqual(principal.envs, ["e9"]);
    assert.equal(principal.tenant, "t");
    assert.ok(principal.exp > nowS() + 50 && principal.exp <= nowS() + 60);
  });

  it("refuses missing sub, empty sub, missing exp", async () => {
    await rejects401(verify(await sign({ exp })));
    await rejects401(verify(await sign({ sub: "", exp })));
    await rejects401(verify(await sign({ sub: 5, exp })));
    await rejects401(verify(await sign({ sub: "alice" })));
  });

  it("refuses expired tokens with the message token expired", async () => {
    await rejects401(verify(await sign({ sub: "alice", exp: nowS() - 5 })), "token expired");
  });

  it("refuses bad signatures, malformed tokens, alg none and unpinned algorithms", async () => {
    const claims = { sub: "alice", exp };
    await rejects401(
      verify(await mintToken({ secret: "another-secret-entirely-long-enough", sub: "alice" })),
      "invalid token",
    );
    await rejects401(verify("not-a-jwt"), "invalid token");
    await rejects401(verify(""));
    await rejects401(verify(`${b64url({ alg: "none" })}.${b64url(claims)}.`));
    await rejects401(verify(await sign(claims, "HS512")), "token algorithm not allowed");
    await rejects401(verify(await sign(claims, "HS384")), "token algorithm not allowed");
    await rejects401(
      verify(await sign(claims, "RS256", generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey)),
      "token algorithm not allowed",
    );
  });

  it("checks issuer and audience when configured", async () => {
    const strict = verifierFor({
      ROOMCAST_JWT_SECRET: SECRET,
      ROOMCAST_JWT_ISSUER: "https://idp",
      ROOMCAST_JWT_AUDIENCE: "roomcast",
    });
    assert.equal((await strict(await sign({ sub: "a", exp, iss: "https://idp", aud: "roomcast" }))).sub, "a");
    await rejects401(strict(await sign({ sub: "a", exp, iss: "https://other", aud: "roomcast" })));
    await rejects401(strict(await sign({ sub: "a", exp, iss: "https://idp", aud: "other" })));
    await rejects401(strict(await sign({ sub: "a", exp })));
  });
});

describe("createTokenVerifier (public keys and JWKS)", () => {
  let dir: string;
  const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const ed = generateKeyPairSync("ed25519");
  const claims = { sub: "alice", exp: nowS() + 3600, scope: ["env:read"], envs: ["*"] };
  const pem = (key: KeyObject) => key.export({ type: "spki", format: "pem" }) as string;
  const write = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "roomcast-unit-verifier-"));
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  for (const [alg, pair] of [
    ["RS256", rsa],
    ["ES256", ec],
    ["EdDSA", ed],
  ] as const) {
    it(`pins ${alg} for a ${pair.publicKey.asymmetricKeyType} public key file`, async () => {
      const verify = verifierFor({ ROOMCAST_JWT_PUBLIC_KEY_FILE: write(`${alg}.pem`, pem(pair.publicKey)) });
      const principal = await verify(await sign(claims, alg, pair.privateKey));
      assert.equal(principal.sub, "alice");
      assert.deepEqual([...principal.scopes], ["env:read"]);
      assert.deepEqual(principal.envs, ["*"]);
      await rejects401(verify(await sign(claims)), "token algorithm not allowed");
      await rejects401(verify(`${b64url({ alg: "none" })}.${b64url(claims)}.`));
      // HS256 signed with the public key's PEM as the secret (algorithm confusion).
      await rejects401(verify(await sign(claims, "HS256", new TextEncoder().encode(pem(pair.publicKey)))));
    });
  }

  it("uses the keys of a JWKS file, chosen by kid", async () => {
    const other = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const jwks = {
      keys: [
        { ...(await exportJWK(rsa.publicKey)), kid: "r" },
        { ...(await exportJWK(ed.publicKey)), kid: "e", alg: "EdDSA" },
      ],
    };
    const verify = verifierFor({ ROOMCAST_JWKS_FILE: write("jwks.json", JSON.stringify(jwks)) });
    assert.equal((await verify(await sign(claims, "RS256", rsa.privateKey, "r"))).sub, "alice");
    assert.equal((await verify(await sign(claims, "EdDSA", ed.privateKey, "e"))).sub, "alice");
    await rejects401(verify(await sign(claims, "RS256", other.privateKey, "r")));
    await rejects401(verify(await sign(claims, "ES256", ec.privateKey)), "token algorithm not allowed");
    await rejects401(verify(await sign(claims)), "token algorithm not allowed");
  });

  it("refuses unusable key settings with a ConfigError naming the setting", () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{}, /^missing setting ROOMCAST_JWT_SECRET/],
      [
        { ROOMCAST_JWT_PUBLIC_KEY_FILE: join(dir, "missing.pem") },
        /^invalid setting ROOMCAST_JWT_PUBLIC_KEY_FILE: cannot read .*ENOENT/,
      ],
      [
        { ROOMCAST_JWT_PUBLIC_KEY_FILE: write("garbage.pem", "garbage") },
        /^invalid setting ROOMCAST_JWT_PUBLIC_KEY_FILE: /,
      ],
      [{ ROOMCAST_JWKS_FILE: join(dir, "missing.json") }, /^invalid setting ROOMCAST_JWKS_FILE: cannot read/],
      [{ ROOMCAST_JWKS_FILE: write("not-jwks.json", '{"x":1}') }, /^invalid setting ROOMCAST_JWKS_FILE: /],
      [{ ROOMCAST_JWKS_FILE: write("empty-jwks.json", '{"keys":[]}') }, /^invalid setting ROOMCAST_JWKS_FILE: /],
      [
        {
          ROOMCAST_JWKS_FILE: write(
            "hs-jwks.json",
            JSON.stringify({ keys: [{ kty: "oct", k: "c2VjcmV0", alg: "HS256" }] }),
          ),
        },
        /^invalid setting ROOMCAST_JWKS_FILE: .*HS256/,
      ],
    ];
    for (const [env, message] of cases) {
      assert.throws(
        () => verifierFor(env),
        (err: unknown) => {
          assert.ok(err instanceof ConfigError, `${JSON.stringify(env)}: ${String(err)}`);
          assert.match(err.message, message);
          return true;
        },
      );
    }
  });
});

describe("bearerToken", () => {
  it("extracts the token of Authorization: Bearer", () => {
    assert.equal(bearerToken("Bearer abc.def.ghi"), "abc.def.ghi");
    assert.equal(bearerToken("bearer   abc "), "abc");
    assert.equal(bearerToken(["Bearer one", "Bearer two"]), "one");
    assert.equal(bearerToken("Basic dXNlcjpwYXNz"), undefined);
    assert.equal(bearerToken("Bearer"), undefined);
    assert.equal(bearerToken("Bearer a b"), undefined);
    assert.equal(bearerToken(undefined), undefined);
  });
});
