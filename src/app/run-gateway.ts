/**
 * `roomcast gateway`: starts one replica and stops it cleanly on SIGTERM/SIGINT. A replica
 * that cannot start (bad settings, Redis unreachable) exits 1 with one line saying why.
 */
import type { Config } from "../config/load-config.js";
import { createGateway, type Gateway } from "./gateway-app.js";
import { createLogger } from "../logging/logger.js";
import { exitOnSignals } from "./shutdown-signals.js";

export async function runGateway(config: Config): Promise<Gateway> {
  const log = createLogger({ level: config.logLevel, pretty: config.logPretty, base: { node: config.nodeId } });
  const gateway = await createGateway(config, log);
  // Behind `roomcast start`'s sticky load balancer instead of listening itself.
  if (config.stickyWorker) {
    const { setupWorker } = await import("@socket.io/sticky");
    setupWorker(gateway.io);
    process.send?.({ type: "roomcast:ready" });
    log.info("gateway ready behind the local load balancer");
  } else {
    const url = await gateway.listen();
    log.info({ url }, "gateway listening");
  }
  // The drain takes up to ROOMCAST_DRAIN_S; past that and a margin, give up.
  exitOnSignals(log, config, "draining clients", () => gateway.close());
  return gateway;
}
