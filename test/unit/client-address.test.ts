/** ROOMCAST_TRUST_PROXY: the client's address behind trusted proxies (X-Forwarded-For, right to left). */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { clientAddress } from "../../src/gateway/client-address.js";

describe("client address", () => {
  it("is the peer when no proxy is trusted, whatever the header says", () => {
    assert.equal(clientAddress("10.0.0.5", "203.0.113.1", 0), "10.0.0.5");
    assert.equal(clientAddress("10.0.0.5", undefined, 1), "10.0.0.5");
  });
  it("behind one proxy: the last address the proxy appended, not the client's own claims", () => {
    assert.equal(clientAddress("10.0.0.5", "203.0.113.1", 1), "203.0.113.1");
    assert.equal(clientAddress("10.0.0.5", "6.6.6.6, 203.0.113.1", 1), "203.0.113.1");
    assert.equal(clientAddress("10.0.0.5", ["6.6.6.6", " 203.0.113.1 "], 1), "203.0.113.1");
  });
  it("behind two proxies: two hops back", () => {
    assert.equal(clientAddress("10.0.0.5", "203.0.113.1, 10.0.0.9", 2), "203.0.113.1");
  });
  it("more trusted hops than the header has: the furthest one there is", () => {
    assert.equal(clientAddress("10.0.0.5", "203.0.113.1", 3), "203.0.113.1");
    assert.equal(clientAddress("10.0.0.5", " , ", 2), "10.0.0.5");
  });
});
