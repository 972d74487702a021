/**
 * A running job's output, batched at the source (docs/protocol.md, "Channels and authorization"): log lines are
 * numbered and go out every 100 ms or 100 lines (or 64 KiB), whichever comes first; progress
 * is conflated (only the newest value goes out, with the next batch). Publishes run one at a
 * time in order; one that fails (Redis away) is retried with the lines kept, so nothing is
 * lost or reordered, until the deadline. State changes go through the same chain (`send`),
 * after the lines logged before them.
 */
import type { LogLevel, LogLine, LogStream } from "../contracts/jobs.js";

export const BATCH_MS = 100;
export const BATCH_LINES = 100;
export const BATCH_BYTES = 64 * 1024;
/** A longer line is cut (its text ends with an ellipsis). */
export const MAX_LINE_CHARS = 8192;
const RETRY_FIRST_MS = 100;
const RETRY_MAX_MS = 2000;

export interface OutputSink {
  lines(lines: LogLine[]): Promise<void>;
  progress(progress: number): Promise<void>;
  /** A publish failed and will be retried. */
  retrying?(err: unknown): void;
}

export interface LogOptions {
  stream?: LogStream;
  level?: LogLevel;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class JobOutput {
  private buffer: LogLine[] = [];
  private bufferedChars = 0;
  private pendingProgress: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private chain: Promise<void> = Promise.resolve();
  private failure: unknown;
  /** A flush for a full batch is queued: more lines join it rather than queue another. */
  private eager = false;

  constructor(
    private readonly sink: OutputSink,
    /** The last line number published so far (a later attempt goes on from there). */
    private lastLine: number,
    private readonly retryDeadlineMs = 30_000,
  ) {}

  get linesWritten(): number {
    return this.lastLine;
  }

  /** Adds one line per line of `text`. */
  log(text: string, options: LogOptions = {}): void {
    const ts = Date.now();
    const stream = options.stream ?? "stdout";
    for (const raw of String(text).split(/\r?\n/)) {
      const line: LogLine = {
        n: ++this.lastLine,
        stream,
        text: raw.length > MAX_LINE_CHARS ? `${raw.slice(0, MAX_LINE_CHARS - 1)}…` : raw,
        ts,
      };
      if (options.level) line.level = options.level;
      this.buffer.push(line);
      this.bufferedChars += line.text.length;
    }
    if (this.buffer.length < BATCH_LINES && this.bufferedChars < BATCH_BYTES) this.schedule();
    else if (!this.eager) {
      this.eager = true;
      void this.flush()
        .catch(() => undefined)
        .finally(() => (this.eager = false));
    }
  }

  /** 0 to 100; only the newest value between two batches goes out. */
  progress(value: number): void {
    const clamped = Math.min(100, Math.max(0, Number.isFinite(value) ? value : 0));
    // At most 2 decimals: a computed ratio (66 / 500 * 100) otherwise goes out as 13.200000000000001.
    this.pendingProgress = Math.round(clamped * 100) / 100;
    this.schedule();
  }

  private schedule(): void {
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      void this.flush().catch(() => undefined);
    }, BATCH_MS);
  }

  /** Publishes everything buffered; resolves when it is out (rejects once a publish gave up). */
  flush(): Promise<void> {
    return this.send(undefined);
  }

  /** Flushes, then runs `publish` (a state change), in the same order as everything else. */
  send(publish: (() => Promise<void>) | undefined): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.chain = this.chain.then(async () => {
      await this.drain();
      if (publish) await this.withRetry(publish);
    });
    return this.chain;
  }

  private async drain(): Promise<void> {
    if (this.failure) throw this.failure;
    while (this.buffer.length > 0) {
      const take = this.batchSize();
      const batch = this.buffer.slice(0, take);
      await this.withRetry(() => this.sink.lines(batch));
      this.buffer = this.buffer.slice(take);
      for (const line of batch) this.bufferedChars -= line.text.length;
    }
    if (this.pendingProgress !== undefined) {
      const progress = this.pendingProgress;
      this.pendingProgress = undefined;
      await this.withRetry(() => this.sink.progress(progress));
    }
  }

  /** Lines of the next batch: at most BATCH_LINES and (beyond one line) BATCH_BYTES. */
  private batchSize(): number {
    let chars = 0;
    let n = 0;
    while (n < this.buffer.length && n < BATCH_LINES) {
      chars += this.buffer[n]!.text.length;
      if (n > 0 && chars > BATCH_BYTES) break;
      n++;
    }
    return n;
  }

  private async withRetry(publish: () => Promise<void>): Promise<void> {
    const deadline = Date.now() + this.retryDeadlineMs;
    for (let wait = RETRY_FIRST_MS; ; wait = Math.min(wait * 2, RETRY_MAX_MS)) {
      try {
        await publish();
        return;
      } catch (err) {
        if (Date.now() + wait > deadline) {
          this.failure = err;
          throw err;
        }
        this.sink.retrying?.(err);
        await sleep(wait);
      }
    }
  }

  /** Stops the timer (the job ended; call flush first to send what is left). */
  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
