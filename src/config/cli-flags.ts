/**
 * Command-line flags: each takes a value (`--name value` or `--name=value`; the last one
 * given wins). Every setting is a flag under its variable's kebab-case name (`--redis-url`),
 * ROOMCAST_ ones also without the prefix (`--history-size`); commands add flags of their own.
 */
import { SETTINGS } from "./settings.js";

/** The flags of a setting's variable: `--redis-url`; `--roomcast-history-size` and `--history-size`. */
export function settingFlags(env: string): string[] {
  const names = ["--" + env.toLowerCase().replace(/_/g, "-")];
  if (env.startsWith("ROOMCAST_")) names.push("--" + env.slice(9).toLowerCase().replace(/_/g, "-"));
  return names;
}

/** Every setting's flags, ROOMCAST_CONFIG's (`--config`) too. */
export function allSettingFlags(): string[] {
  return [...Object.values(SETTINGS).map((s) => s.env), "ROOMCAST_CONFIG"].flatMap(settingFlags);
}

/** The value of the last of `names` given in argv. */
export function flagValue(argv: readonly string[], names: readonly string[]): string | undefined {
  let value: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    for (const name of names) {
      if (arg === name && i + 1 < argv.length) value = argv[i + 1];
      else if (arg.startsWith(name + "=")) value = arg.slice(name.length + 1);
    }
  }
  return value;
}

const HELP = new Set(["--help", "-h"]);

/**
 * Walks argv as flags and their values: `help` when --help or -h stands where a flag can (not
 * as another flag's value), else the first problem (an unknown flag, a flag without its value)
 * as one line. Words where a flag could be are left to the command.
 */
export function checkFlags(
  argv: readonly string[],
  known: ReadonlySet<string>,
): { help: true } | { problem: string } | { ok: true } {
  let problem: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (HELP.has(arg)) return { help: true };
    if (!arg.startsWith("-")) continue;
    const name = arg.includes("=") ? arg.slice(0, arg.indexOf("=")) : arg;
    if (!known.has(name)) problem ??= `unknown flag ${name}`;
    else if (name === arg) {
      if (i + 1 >= argv.length) problem ??= `flag ${name} needs a value`;
      i++; // its value, whatever it looks like
    }
  }
  return problem ? { problem } : { ok: true };
}
