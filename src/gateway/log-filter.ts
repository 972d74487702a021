/**
 * Log filters (docs/protocol.md, "Requests", `filter`): a subscription with a filter gets the lines
 * of `log` events narrowed to one stream, a lowest level and a substring. Events are never
 * dropped, so offsets stay contiguous: a batch with no matching line arrives with
 * `lines: []`, and `filtered` counts the lines removed. Other event types pass unchanged.
 */
import type { ChannelEvent } from "../contracts/events.js";
import { LOG_LEVELS, type LogLine } from "../contracts/jobs.js";
import type { LogFilter } from "../contracts/schemas.js";

export interface CompiledFilter {
  filter: LogFilter;
  keep(line: LogLine): boolean;
}

const INFO = LOG_LEVELS.indexOf("info");

/** undefined for no filter (absent or `{}`). */
export function compileFilter(filter: LogFilter | undefined): CompiledFilter | undefined {
  if (!filter || (filter.stream === undefined && filter.level === undefined && filter.contains === undefined))
    return undefined;
  const { stream, level, contains } = filter;
  const lowest = level === undefined ? -1 : LOG_LEVELS.indexOf(level);
  const needle = contains?.toLowerCase();
  return {
    filter,
    keep(line) {
      if (stream !== undefined && line.stream !== stream) return false;
      if (lowest >= 0) {
        const at = line.level === undefined ? INFO : LOG_LEVELS.indexOf(line.level);
        if (at < lowest) return false;
      }
      return needle === undefined || (typeof line.text === "string" && line.text.toLowerCase().includes(needle));
    },
  };
}

interface LogData {
  lines: LogLine[];
  filtered?: number;
}

function isLogData(data: unknown): data is LogData {
  return typeof data === "object" && data !== null && Array.isArray((data as LogData).lines);
}

/** The event as this filter lets it through (the same object when nothing changes). */
export function filterEvent(event: ChannelEvent, filter: CompiledFilter | undefined): ChannelEvent {
  if (!filter || event.type !== "log" || !isLogData(event.data)) return event;
  const lines = event.data.lines.filter((line) => filter.keep(line));
  if (lines.length === event.data.lines.length) return event;
  const filtered = (event.data.filtered ?? 0) + event.data.lines.length - lines.length;
  return { ...event, data: { ...event.data, lines, filtered } };
}
