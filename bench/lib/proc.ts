/** Process accounting for the benchmarks: CPU seconds and resident memory from /proc (Linux). */
import { readFileSync } from "node:fs";

const TICKS_PER_SECOND = 100; // USER_HZ

/** User + system CPU seconds a process has used so far (0 once it is gone). */
export function cpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return 0;
  }
}

export function rssBytes(pid: number): number {
  try {
    const line = readFileSync(`/proc/${pid}/status`, "utf8")
      .split("\n")
      .find((l) => l.startsWith("VmRSS:"))!;
    return Number(line.split(/\s+/)[1]) * 1024;
  } catch {
    return 0;
  }
}

/** CPU seconds of several processes between start() and stop(). */
export function cpuMeter(pids: () => readonly number[]): { stop(): number[] } {
  const list = [...pids()];
  const before = list.map(cpuSeconds);
  return { stop: () => list.map((pid, i) => cpuSeconds(pid) - before[i]!) };
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Wall-clock milliseconds with sub-millisecond resolution, comparable across processes of one machine. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}
