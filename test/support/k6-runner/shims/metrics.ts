/** The `k6/metrics` module: custom metrics whose samples (with tags) go to the runner. */
import { runtime } from "../runtime.js";
import type { MetricType } from "../protocol.js";

class Metric {
  readonly name: string;
  readonly #type: MetricType;

  constructor(name: string, isTime: boolean, type: MetricType) {
    this.name = name;
    this.#type = type;
    runtime.define(name, type, type === "trend" && isTime);
  }

  add(value: number | boolean, tags?: Record<string, unknown>): boolean {
    const n = typeof value === "boolean" ? (value ? 1 : 0) : Number(value);
    runtime.add(this.name, this.#type === "rate" ? (n !== 0 ? 1 : 0) : n, tags);
    return true;
  }
}

export class Counter extends Metric {
  constructor(name: string, isTime = false) {
    super(name, isTime, "counter");
  }
}

export class Gauge extends Metric {
  constructor(name: string, isTime = false) {
    super(name, isTime, "gauge");
  }
}

export class Rate extends Metric {
  constructor(name: string, isTime = false) {
    super(name, isTime, "rate");
  }
}

export class Trend extends Metric {
  constructor(name: string, isTime = false) {
    super(name, isTime, "trend");
  }
}

export default { Counter, Gauge, Rate, Trend };
