import type { Logger } from "pino";
import type { JobQueues } from "./job-queue.js";

const WEBHOOK_QUEUE_RETRY_MS = 1000;

/**
 * Queues the delivery of channels' webhook changes: the channels noted in one turn of the event
 * loop go in one call. While the queue cannot be reached (Redis away) they are tried again every
 * second; the changes wait in their streams meanwhile.
 */
export function webhookNotifier(queues: JobQueues, log: Logger): (channel: string) => void {
  const channels = new Set<string>();
  const flush = () => {
    const batch = [...channels];
    channels.clear();
    queues.deliverWebhooks(batch).catch((err: unknown) => {
      log.warn({ err: (err as Error).message, channels: batch.length }, "could not queue webhooks; retrying");
      setTimeout(() => batch.forEach(notify), WEBHOOK_QUEUE_RETRY_MS).unref();
    });
  };
  const notify = (channel: string) => {
    if (channels.size === 0) setImmediate(flush);
    channels.add(channel);
  };
  return notify;
}
