/** The `k6/crypto` module: hashes, HMAC and random bytes over node:crypto. */
import {
  createHash as nodeHash,
  createHmac as nodeHmac,
  randomBytes as nodeRandomBytes,
  type Hash,
  type Hmac,
} from "node:crypto";
import { base64, toArrayBuffer, toBuffer } from "./bytes.js";

type Input = string | ArrayBuffer;
type OutputEncoding = "hex" | "base64" | "base64url" | "base64rawurl" | "binary";

const ALGORITHMS: Record<string, string> = {
  md5: "md5",
  sha1: "sha1",
  sha256: "sha256",
  sha384: "sha384",
  sha512: "sha512",
  sha512_224: "sha512-224",
  sha512_256: "sha512-256",
  ripemd160: "ripemd160",
};

function algorithm(name: string): string {
  const node = ALGORITHMS[name];
  if (!node) throw new Error(`k6/crypto: the test runner does not provide the ${name} algorithm`);
  return node;
}

function output(digest: Buffer, encoding: OutputEncoding): string | ArrayBuffer {
  switch (encoding) {
    case "hex":
      return digest.toString("hex");
    case "base64":
      return base64(digest, "std");
    case "base64url":
      return base64(digest, "url");
    case "base64rawurl":
      return base64(digest, "rawurl");
    case "binary":
      return toArrayBuffer(digest);
    default:
      throw new Error(`k6/crypto: unknown output encoding ${String(encoding)}`);
  }
}

class Hasher {
  readonly #inner: Hash | Hmac;
  constructor(inner: Hash | Hmac) {
    this.#inner = inner;
  }
  update(input: Input): void {
    this.#inner.update(toBuffer(input));
  }
  digest(encoding: OutputEncoding): string | ArrayBuffer {
    return output(this.#inner.digest(), encoding);
  }
}

export function hmac(alg: string, secret: Input, input: Input, encoding: OutputEncoding): string | ArrayBuffer {
  return output(nodeHmac(algorithm(alg), toBuffer(secret)).update(toBuffer(input)).digest(), encoding);
}

function hash(alg: string) {
  return (input: Input, encoding: OutputEncoding) =>
    output(nodeHash(algorithm(alg)).update(toBuffer(input)).digest(), encoding);
}

export const md5 = hash("md5");
export const sha1 = hash("sha1");
export const sha256 = hash("sha256");
export const sha384 = hash("sha384");
export const sha512 = hash("sha512");
export const sha512_224 = hash("sha512_224");
export const sha512_256 = hash("sha512_256");
export const ripemd160 = hash("ripemd160");

export function createHash(alg: string): Hasher {
  return new Hasher(nodeHash(algorithm(alg)));
}

export function createHMAC(alg: string, secret: Input): Hasher {
  return new Hasher(nodeHmac(algorithm(alg), toBuffer(secret)));
}

export function randomBytes(size: number): ArrayBuffer {
  return toArrayBuffer(nodeRandomBytes(size));
}

export default {
  hmac,
  md5,
  sha1,
  sha256,
  sha384,
  sha512,
  sha512_224,
  sha512_256,
  ripemd160,
  createHash,
  createHMAC,
  randomBytes,
};
