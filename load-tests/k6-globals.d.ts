// Globals of k6's runtime that @types/k6 does not declare (it declares __ENV, __VU, __ITER
// and open). The scripts import their timers from k6/timers; k6 also has them as globals.
declare global {
  const console: {
    log(...args: unknown[]): void;
    info(...args: unknown[]): void;
    warn(...args: unknown[]): void;
    error(...args: unknown[]): void;
    debug(...args: unknown[]): void;
  };
  function setTimeout(fn: (...args: unknown[]) => void, delay?: number, ...args: unknown[]): number;
  function clearTimeout(id?: number): void;
  function setInterval(fn: (...args: unknown[]) => void, delay?: number, ...args: unknown[]): number;
  function clearInterval(id?: number): void;
}

export {};
