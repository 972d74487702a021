/** roomcast as a library: the gateway, configuration, the publish path, and the protocol types. */
export { createGateway, type Gateway } from "./app/gateway-app.js";
export { loadConfig, ConfigError, type Config } from "./config/load-config.js";
export { mintToken } from "./auth/mint-token.js";
export type * from "./contracts/events.js";
export { ERROR_CODES, RoomcastError, type ErrorBody, type ErrorReason } from "./contracts/error-codes.js";
