/**
 * `roomcast worker`: one BullMQ worker, with /healthz, /readyz and /metrics on PORT. On
 * SIGTERM it takes no new jobs, lets running ones finish within ROOMCAST_DRAIN_S, requeues
 * the rest (another worker runs them) and exits 0. A worker that cannot start (bad settings,
 * a processor module that does not load, Redis unreachable) exits 1 with one line.
 */
import type { Config } from "../config/load-config.js";
import { createWorkerHttp } from "../http/worker-http.js";
import { createJobWorker } from "./worker-app.js";
import { createLogger } from "../logging/logger.js";
import { exitOnSignals } from "./shutdown-signals.js";

export async function runWorker(config: Config): Promise<void> {
  const log = createLogger({ level: config.logLevel, pretty: config.logPretty, base: { node: config.nodeId } });
  const worker = await createJobWorker(config, log.child({ module: "worker" }));
  const http = createWorkerHttp({ nodeId: config.nodeId, isReady: worker.isReady, registry: worker.metrics.registry });
  const url = await http.listen({ port: config.port, host: config.host });
  log.info(
    { url, queue: config.queueName, concurrency: config.workerConcurrency, processors: worker.processors },
    "worker ready",
  );
  process.send?.({ type: "roomcast:ready", url });
  worker.closing.add("finish in flight", "metrics server", () => http.close());
  exitOnSignals(log, config, "finishing running jobs", () => worker.close());
}
