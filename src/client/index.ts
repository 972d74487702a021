/** roomcast/client: the SDK, and the shared protocol types. */
export {
  createClient,
  RoomcastClient,
  type ClientEvents,
  type EventHandler,
  type RoomcastClientOptions,
  type SubscribeOptions,
} from "./roomcast-client.js";
export { backoffDelay, tokenExpiry, type BackoffOptions } from "./backoff.js";
export type * from "../contracts/events.js";
export { ERROR_CODES, type ErrorBody, type ErrorReason } from "../contracts/error-codes.js";
