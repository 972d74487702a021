/** pino, JSON by default, pretty for local runs; tokens and secrets are redacted. */
import { pino, type Logger } from "pino";

export const REDACT = [
  "token",
  "*.token",
  "auth.token",
  "headers.authorization",
  "req.headers.authorization",
  "headers.cookie",
  "req.headers.cookie",
  "jwtSecret",
  "*.jwtSecret",
  "adminPasswordHash",
  "*.adminPasswordHash",
];

export function createLogger(options: {
  level: string;
  pretty: boolean;
  name?: string;
  base?: Record<string, unknown>;
}): Logger {
  return pino({
    name: options.name ?? "roomcast",
    level: options.level,
    base: options.base ?? {},
    redact: { paths: REDACT, censor: "[redacted]" },
    ...(options.pretty
      ? { transport: { target: "pino-pretty", options: { colorize: true, ignore: "pid,hostname" } } }
      : {}),
  });
}
