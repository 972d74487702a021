/**
 * k6's threshold grammar, to report the thresholds of a script that k6 would refuse. It
 * follows k6's parser (lib/thresholds_parser.go, metrics.ParseMetricName): a key is a metric
 * name with an optional tag selector `name{tag:value,...}`; an expression is
 * `<aggregation> <operator> <number>`, the aggregation one of count, rate, value, avg, min,
 * max, med or p(N) with 0 <= N <= 100, the operator one of <=, <, >=, >, ===, ==, !=; and the
 * aggregation must suit the metric's type (Counter: count, rate; Gauge: value; Rate: rate;
 * Trend: avg, min, max, med, p(N)). It never judges whether a threshold passes.
 */
import type { MetricType } from "./protocol.js";

/** k6's built-in metrics, which thresholds may name even if the script never makes them. */
export const BUILTIN_METRICS: Record<string, MetricType> = {
  checks: "rate",
  data_received: "counter",
  data_sent: "counter",
  dropped_iterations: "counter",
  iterations: "counter",
  iteration_duration: "trend",
  group_duration: "trend",
  vus: "gauge",
  vus_max: "gauge",
  http_reqs: "counter",
  http_req_failed: "rate",
  http_req_duration: "trend",
  http_req_blocked: "trend",
  http_req_connecting: "trend",
  http_req_tls_handshaking: "trend",
  http_req_sending: "trend",
  http_req_waiting: "trend",
  http_req_receiving: "trend",
  ws_connecting: "trend",
  ws_session_duration: "trend",
  ws_ping: "trend",
  ws_sessions: "counter",
  ws_msgs_sent: "counter",
  ws_msgs_received: "counter",
};

const OPERATORS = ["<=", "<", ">=", ">", "===", "==", "!="] as const;
export type Operator = (typeof OPERATORS)[number];
type Aggregation = "count" | "rate" | "value" | "avg" | "min" | "max" | "med" | "p";

const SUPPORTED: Record<MetricType, readonly Aggregation[]> = {
  counter: ["count", "rate"],
  gauge: ["value"],
  rate: ["rate"],
  trend: ["avg", "min", "max", "med", "p"],
};

export interface ThresholdExpression {
  aggregation: Aggregation;
  /** For p(N). */
  percentile?: number;
  operator: Operator;
  value: number;
}

export interface ParsedThreshold extends ThresholdExpression {
  key: string;
  metric: string;
  tags: Record<string, string>;
  expression: string;
  abortOnFail: boolean;
}

export interface InvalidThreshold {
  key: string;
  expression: string;
  reason: string;
}

// Go's strconv.ParseFloat, for what thresholds are written with.
const NUMBER = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

export function parseThresholdExpression(input: string): ThresholdExpression {
  let split: [string, Operator, string] | undefined;
  for (const op of OPERATORS) {
    const at = input.indexOf(op);
    if (at >= 0) {
      split = [input.slice(0, at).trim(), op, input.slice(at + op.length).trim()];
      break;
    }
  }
  if (!split)
    throw new Error(`malformed threshold expression ${JSON.stringify(input)}: no operator (${OPERATORS.join(" ")})`);
  const [method, operator, rawValue] = split;
  if (!NUMBER.test(rawValue))
    throw new Error(
      `malformed threshold expression ${JSON.stringify(input)}: ${JSON.stringify(rawValue)} is not a number`,
    );
  const value = Number(rawValue);
  if (["count", "rate", "value", "avg", "min", "max", "med"].includes(method))
    return { aggregation: method as Aggregation, operator, value };
  if (method.startsWith("p(") && method.endsWith(")")) {
    const inner = method.slice(2, -1);
    if (!NUMBER.test(inner))
      throw new Error(
        `malformed threshold expression ${JSON.stringify(input)}: percentile ${JSON.stringify(inner)} is not a number`,
      );
    const percentile = Number(inner);
    if (percentile < 0 || percentile > 100)
      throw new Error(
        `malformed threshold expression ${JSON.stringify(input)}: percentile ${percentile} is not between 0 and 100`,
      );
    return { aggregation: "p", percentile, operator, value };
  }
  throw new Error(
    `malformed threshold expression ${JSON.stringify(input)}: unknown aggregation method ${JSON.stringify(method)}`,
  );
}

/** `name` or `name{tag:value,other:"quoted"}`. */
export function parseMetricKey(key: string): { name: string; tags: Record<string, string> } {
  const open = key.indexOf("{");
  const close = key.lastIndexOf("}");
  if (open === -1 && close === -1) return { name: key, tags: {} };
  if (open === -1 || close === -1 || close < open || close !== key.length - 1)
    throw new Error(`malformed metric name expression ${JSON.stringify(key)}`);
  const tags: Record<string, string> = {};
  for (const part of key.slice(open + 1, close).split(",")) {
    const colon = part.indexOf(":");
    const value = colon === -1 ? "" : part.slice(colon + 1).trim();
    if (colon === -1 || value === "")
      throw new Error(
        `malformed metric name expression ${JSON.stringify(key)}: tag ${JSON.stringify(part)} is not key:value`,
      );
    tags[part.slice(0, colon).trim()] = value.replace(/^["']+|["']+$/g, "");
  }
  return { name: key.slice(0, open), tags };
}

/** Parses every threshold of `options.thresholds`, checked against the metrics' types. */
export function validateThresholds(
  thresholds: unknown,
  metrics: ReadonlyMap<string, MetricType>,
): { valid: ParsedThreshold[]; invalid: InvalidThreshold[] } {
  const valid: ParsedThreshold[] = [];
  const invalid: InvalidThreshold[] = [];
  if (thresholds === undefined || thresholds === null) return { valid, invalid };
  if (typeof thresholds !== "object" || Array.isArray(thresholds)) {
    invalid.push({
      key: "",
      expression: "",
      reason: "options.thresholds must be an object of metric name to an array of thresholds",
    });
    return { valid, invalid };
  }
  for (const [key, list] of Object.entries(thresholds as Record<string, unknown>)) {
    let name: string;
    let tags: Record<string, string>;
    try {
      ({ name, tags } = parseMetricKey(key));
    } catch (err) {
      invalid.push({ key, expression: "", reason: (err as Error).message });
      continue;
    }
    const type = metrics.get(name) ?? BUILTIN_METRICS[name];
    if (!type) {
      invalid.push({
        key,
        expression: "",
        reason: `no metric name ${JSON.stringify(name)} found (metrics are created in the init context)`,
      });
      continue;
    }
    if (!Array.isArray(list)) {
      invalid.push({ key, expression: "", reason: "thresholds of a metric must be an array" });
      continue;
    }
    for (const entry of list as unknown[]) {
      const expression =
        typeof entry === "string"
          ? entry
          : typeof entry === "object" &&
              entry !== null &&
              typeof (entry as { threshold?: unknown }).threshold === "string"
            ? (entry as { threshold: string }).threshold
            : undefined;
      if (expression === undefined) {
        invalid.push({
          key,
          expression: JSON.stringify(entry),
          reason: "a threshold is a string or { threshold, abortOnFail?, delayAbortEval? }",
        });
        continue;
      }
      try {
        const parsed = parseThresholdExpression(expression);
        if (!SUPPORTED[type].includes(parsed.aggregation)) {
          throw new Error(
            `aggregation method ${parsed.aggregation === "p" ? `p(${parsed.percentile})` : parsed.aggregation} cannot apply to the ${type} metric ${name} (supported: ${SUPPORTED[type].map((a) => (a === "p" ? "p(N)" : a)).join(", ")})`,
          );
        }
        const abortOnFail = typeof entry === "object" && Boolean((entry as { abortOnFail?: unknown }).abortOnFail);
        valid.push({ key, metric: name, tags, expression, abortOnFail, ...parsed });
      } catch (err) {
        invalid.push({ key, expression, reason: (err as Error).message });
      }
    }
  }
  return { valid, invalid };
}
