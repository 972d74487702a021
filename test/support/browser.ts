/**
 * Debian's Chromium for the browser tests, driven by playwright-core. In CI .ci/run installs
 * it, and a missing browser is a failure there, not a skip.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import type { Browser } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";

/** Why a browser test skips here (no Chromium, outside CI), or false. */
export const browserSkip: string | false =
  !existsSync(CHROMIUM) && !process.env.CI ? `no ${CHROMIUM} here (apt-get install chromium)` : false;

/** Headless Chromium without background traffic; `extraArgs` for what a test needs besides. */
export async function launchChromium(extraArgs: readonly string[] = []): Promise<Browser> {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium`);
  const { chromium } = await import("playwright-core");
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--no-first-run",
      ...extraArgs,
    ],
  });
}
