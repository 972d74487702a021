/** Small helpers the test files share. */
import { writeFileSync } from "node:fs";
import { join } from "node:path";

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** from, from + 1, ..., to (empty when to < from). */
export function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(to - from + 1, 0) }, (_, i) => from + i);
}

/** A metric's value from a process's /metrics; `name` may carry the start of its labels (`name{reason="x"`). */
export async function metric(baseUrl: string, name: string): Promise<number> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  const prefixes = name.includes("{") ? [name] : [`${name}{`, `${name} `];
  const line = text.split("\n").find((l) => prefixes.some((p) => l.startsWith(p)));
  return Number(line?.split(" ").at(-1) ?? NaN);
}

/** Waits until a process's /readyz answers `status` (0 while it does not answer at all). */
export async function waitReadyz(baseUrl: string, status: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = -1;
  while (Date.now() < deadline) {
    last = await fetch(`${baseUrl}/readyz`).then(
      (res) => res.status,
      () => 0,
    );
    if (last === status) return;
    await sleep(20);
  }
  throw new Error(`${baseUrl}/readyz did not answer ${status} within ${timeoutMs} ms (last: ${last})`);
}

/**
 * Writes a ROOMCAST_CONFIG file into `dir` with a `chat` namespace (anyone subscribes, tokens
 * with scope chat:write publish); returns its path.
 */
export function writeChatConfig(dir: string): string {
  const configFile = join(dir, "roomcast.yaml");
  writeFileSync(
    configFile,
    [
      "namespaces:",
      "  chat:",
      "    subscribe: { match: any }",
      '    publish: { match: any, scope: "chat:write" }',
      "",
    ].join("\n"),
  );
  return configFile;
}
