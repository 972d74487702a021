const v8 = require("node:v8"); // eslint-disable-line @typescript-eslint/no-require-imports -- a CommonJS preload

// Preloaded (--require) into the Node servers the benchmarks start with --expose-gc: on the
// IPC message { bench: "memory" } it collects garbage twice and answers the process's memory,
// so that every Node server is measured the same way, after a full GC.
// { bench: "heap-snapshot", path } writes a V8 heap snapshot there (bench/tools/heap-diff.ts).
process.on("message", (message) => {
  if (message && message.bench === "heap-snapshot") {
    global.gc?.();
    v8.writeHeapSnapshot(message.path);
    process.send?.({ bench: "heap-snapshot", path: message.path });
    return;
  }
  if (!message || message.bench !== "memory") return;
  global.gc?.();
  global.gc?.();
  const usage = process.memoryUsage();
  process.send?.({ bench: "memory", rss: usage.rss, heapUsed: usage.heapUsed });
});
