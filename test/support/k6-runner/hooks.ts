/**
 * Module resolution hooks of a VU thread (registered with `module.register()`): the k6
 * built-in modules a script imports resolve to the shims of this folder; any other `k6`
 * module fails loudly, so a script cannot depend on a module the runner does not provide
 * (`k6/ws`, `k6/experimental/*`, `k6/browser`...). Script files (.js outside node_modules) load
 * as ES modules, as in k6.
 */
type Next = (specifier: string, context: unknown) => Promise<unknown>;

const SHIMS: Record<string, string> = {
  k6: "./shims/k6.ts",
  "k6/http": "./shims/http.ts",
  "k6/websockets": "./shims/websockets.ts",
  "k6/metrics": "./shims/metrics.ts",
  "k6/timers": "./shims/timers.ts",
  "k6/crypto": "./shims/crypto.ts",
  "k6/encoding": "./shims/encoding.ts",
  "k6/execution": "./shims/execution.ts",
};

export async function resolve(specifier: string, context: unknown, next: Next): Promise<unknown> {
  const shim = SHIMS[specifier];
  // Through `next`, so that tsx's own resolve hook sees the .ts file it must then load.
  if (shim) return next(new URL(shim, import.meta.url).href, context);
  if (specifier === "k6" || specifier.startsWith("k6/")) {
    throw new Error(`the k6 test runner provides ${Object.keys(SHIMS).join(", ")}; not ${specifier}`);
  }
  const resolved = (await next(specifier, context)) as { url: string; format?: string | null };
  // k6 scripts are ES modules wherever they are (no package.json "type" needed).
  if (resolved.url.startsWith("file:") && resolved.url.endsWith(".js") && !resolved.url.includes("/node_modules/"))
    return { ...resolved, format: "module" };
  return resolved;
}
