/**
 * SIGTERM and SIGINT for `roomcast gateway` and `roomcast worker`: run the process's graceful
 * close once, exit 0 when it is done, 1 if it fails or takes longer than the drain and a margin.
 */
import type { Logger } from "pino";
import type { Config } from "../config/load-config.js";

const MARGIN_S = 15;

export function exitOnSignals(
  log: Logger,
  { drainS, supervised }: Pick<Config, "drainS" | "supervised">,
  what: string,
  close: () => Promise<unknown>,
): void {
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal, drainS }, `shutting down: ${what}`);
    const force = setTimeout(() => process.exit(1), (drainS + MARGIN_S) * 1000);
    force.unref();
    close()
      .then(() => process.exit(0))
      .catch((err: unknown) => {
        log.error({ err }, "shutdown failed");
        process.exit(1);
      });
  };
  process.once("SIGTERM", () => stop("SIGTERM"));
  if (supervised) {
    // Under `roomcast start`, a Ctrl-C reaches every process of the terminal's group at once;
    // the launcher stops its children itself, in order (the demo job first, Redis last).
    process.on("SIGINT", () => undefined);
    // And if the launcher goes without a word (SIGKILL), its children go too.
    process.once("disconnect", () => stop("launcher disconnected"));
  } else process.once("SIGINT", () => stop("SIGINT"));
}
