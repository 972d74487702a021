/** The `k6/encoding` module: b64encode and b64decode in Go's four base64 variants. */
import { Buffer } from "node:buffer";
import { base64, toArrayBuffer, toBuffer } from "./bytes.js";

type Variant = "std" | "rawstd" | "url" | "rawurl";

export function b64encode(input: string | ArrayBuffer, encoding: Variant = "std"): string {
  return base64(toBuffer(input), encoding);
}

export function b64decode(input: string, encoding: Variant = "std", format?: "s"): ArrayBuffer | string {
  const url = encoding === "url" || encoding === "rawurl";
  const text = String(input);
  const valid = url ? /^[A-Za-z0-9_-]*={0,2}$/ : /^[A-Za-z0-9+/]*={0,2}$/;
  if (!valid.test(text)) throw new Error(`b64decode: not ${encoding} base64: ${text.slice(0, 40)}`);
  const bytes = Buffer.from(text, url ? "base64url" : "base64");
  return format === "s" ? bytes.toString("utf8") : toArrayBuffer(bytes);
}

export default { b64encode, b64decode };
