/** Byte helpers shared by the k6/crypto and k6/encoding shims. */
import { Buffer } from "node:buffer";

/** A string as its UTF-8 bytes, an ArrayBuffer (or view) as is. */
export function toBuffer(input: string | ArrayBuffer | ArrayBufferView): Buffer {
  if (typeof input === "string") return Buffer.from(input, "utf8");
  if (ArrayBuffer.isView(input)) return Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  return Buffer.from(new Uint8Array(input));
}

export function toArrayBuffer(buffer: Buffer): ArrayBuffer {
  const copy = new ArrayBuffer(buffer.byteLength);
  new Uint8Array(copy).set(buffer);
  return copy;
}

/** Go's base64 variants: std and url with padding, rawstd and rawurl without. */
export function base64(buffer: Buffer, variant: "std" | "rawstd" | "url" | "rawurl"): string {
  const std = buffer.toString("base64");
  switch (variant) {
    case "std":
      return std;
    case "rawstd":
      return std.replace(/=+$/, "");
    case "url":
      return std.replace(/\+/g, "-").replace(/\//g, "_");
    case "rawurl":
      return buffer.toString("base64url");
    default:
      throw new Error(`unknown base64 variant ${String(variant)}`);
  }
}
