import type { Logger } from "pino";
import type { TokenVerifier } from "../auth/token-verifier.js";
import type { ChannelRegistry } from "../channels/channel-registry.js";
import type { ChannelStore } from "../channels/channel-store.js";
import type { ChannelFeed } from "../channels/channel-feed.js";
import type { Config } from "../config/load-config.js";
import type { Admission } from "./admission.js";
import type { GatewayMetrics } from "../metrics/metrics.js";
import type { Delivery } from "./delivery.js";
import type { PresenceTracker } from "./presence-tracker.js";
import type { PresenceStore } from "../channels/presence.js";
import type { TokenExpiry } from "./token-expiry.js";

/** What request handlers and middleware share on one replica. */
export interface GatewayContext {
  config: Config;
  registry: ChannelRegistry;
  store: ChannelStore;
  delivery: Delivery;
  /** Who is on the channels of presence namespaces: this replica's connections, and the cluster-wide reads. */
  presence: PresenceTracker;
  presenceStore: PresenceStore;
  feed: ChannelFeed;
  admission: Admission;
  metrics: GatewayMetrics;
  verifyToken: TokenVerifier;
  /** Closes connections whose token expired unrefreshed. */
  expiry: TokenExpiry;
  /** Whether Redis answers: an unexpected failure while it does not is `unavailable`, not `internal`. */
  isRedisUp: () => boolean;
  log: Logger;
}
