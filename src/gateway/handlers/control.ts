import { RoomcastError } from "../../contracts/error-codes.js";
import type { ControlOk } from "../../contracts/events.js";
import { controlSchema, parseOrThrow } from "../../contracts/schemas.js";
import type { GatewayContext } from "../context.js";
import { compileFilter } from "../log-filter.js";
import type { RequestScope } from "../request-router.js";
import type { RoomcastSocket } from "../types.js";

/**
 * pause stops delivery; resume replays what was missed from history, then goes live; filter
 * narrows the lines of log events from the next delivery on (`{}` clears it).
 */
export async function control(
  ctx: GatewayContext,
  socket: RoomcastSocket,
  payload: unknown,
  request: RequestScope,
): Promise<ControlOk> {
  const req = parseOrThrow(controlSchema, payload);
  const sub = socket.data.subscriptions.get(req.channel);
  if (!sub) throw new RoomcastError("bad_request", `channel: not subscribed to ${req.channel}`, { field: "channel" });
  switch (req.action) {
    case "pause":
      // Also while syncing (a resume or subscribe still reading history): the sync stops at its end.
      sub.pause();
      break;
    case "resume":
      if (sub.resume()) request.afterAnswer(() => void ctx.delivery.resync(socket, sub));
      break;
    case "filter":
      if (!req.filter)
        throw new RoomcastError("bad_request", "filter: is required for action filter ({} clears it)", {
          field: "filter",
        });
      sub.filter = compileFilter(req.filter);
      break;
  }
  const answer: ControlOk = { channel: req.channel, action: req.action, paused: sub.state === "paused" };
  if (sub.filter) answer.filter = sub.filter.filter;
  return answer;
}
