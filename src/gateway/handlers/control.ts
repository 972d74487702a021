import { RoomcastError } from "../../contracts/error-codes.js";
import type { ControlOk } from "../../contracts/events.js";
import { controlSchema, parseOrThrow } from "../../contracts/schemas.js";
import type { GatewayContext } from "../context.js";
import type { RequestScope } from "../request-router.js";
import type { RoomcastSocket } from "../types.js";

/** pause stops delivery; resume replays what was missed from history, then goes live. */
export async function control(ctx: GatewayContext, socket: RoomcastSocket, payload: unknown, request: RequestScope): Promise<ControlOk> {
  const req = parseOrThrow(controlSchema, payload);
  const sub = socket.data.subscriptions.get(req.channel);
  if (!sub) throw new RoomcastError("bad_request", `channel: not subscribed to ${req.channel}`, { field: "channel" });
  switch (req.action) {
    case "pause":
      // Also while syncing (a resume or subscribe still reading history): the sync stops at its end.
      sub.state = "paused";
      return { channel: req.channel, action: req.action, paused: true };
    case "resume": {
      if (sub.state === "paused") {
        sub.state = "syncing";
        request.afterAnswer(() => void ctx.delivery.resync(socket, sub));
      }
      return { channel: req.channel, action: req.action, paused: false };
    }
    case "filter":
      throw new RoomcastError("bad_request", "filter: not supported on this channel yet", { field: "filter" });
  }
}
