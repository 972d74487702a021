/**
 * The `k6/timers` module (also installed as the VU's global timers): a pending timeout or
 * interval keeps the iteration alive until it fired or was cleared.
 */
import {
  setTimeout as nodeSetTimeout,
  clearTimeout as nodeClearTimeout,
  setInterval as nodeSetInterval,
  clearInterval as nodeClearInterval,
} from "node:timers";
import { runtime } from "../runtime.js";

let nextId = 1;
const live = new Map<number, { stop(): void }>();

export function setTimeout(fn: (...args: unknown[]) => void, delay = 0, ...args: unknown[]): number {
  if (typeof fn !== "function") throw new TypeError("setTimeout needs a function");
  const id = nextId++;
  const generation = runtime.generation;
  const stop = () => {
    nodeClearTimeout(timer);
    live.delete(id);
    handle.release();
  };
  const handle = runtime.open({ description: `setTimeout(${delay} ms)`, cancel: () => stop() });
  const timer = nodeSetTimeout(
    () => {
      stop();
      runtime.callback(generation, fn, ...args);
    },
    Math.max(0, Number(delay) || 0),
  );
  live.set(id, { stop });
  return id;
}

export function clearTimeout(id: number | undefined): void {
  if (id !== undefined) live.get(Number(id))?.stop();
}

export function setInterval(fn: (...args: unknown[]) => void, delay = 0, ...args: unknown[]): number {
  if (typeof fn !== "function") throw new TypeError("setInterval needs a function");
  const id = nextId++;
  const generation = runtime.generation;
  const stop = () => {
    nodeClearInterval(timer);
    live.delete(id);
    handle.release();
  };
  const handle = runtime.open({ description: `setInterval(${delay} ms)`, cancel: () => stop() });
  const timer = nodeSetInterval(() => runtime.callback(generation, fn, ...args), Math.max(1, Number(delay) || 0));
  live.set(id, { stop });
  return id;
}

export const clearInterval = clearTimeout;

export default { setTimeout, clearTimeout, setInterval, clearInterval };
