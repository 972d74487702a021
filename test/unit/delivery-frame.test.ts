/** A broadcast is framed once for all its sockets: ws must keep exporting Sender.frame. */
import assert from "node:assert/strict";
import { it } from "node:test";
import { FRAMES_ONCE } from "../../src/gateway/wire.js";

it("ws's Sender.frame is there, so each event is framed once per replica, not once per subscriber", () => {
  assert.equal(FRAMES_ONCE, true);
});
