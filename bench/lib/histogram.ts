/**
 * A latency histogram cheap enough for load generators: log-linear buckets (about 1% wide)
 * from 1 µs to 100 s, mergeable across processes, with percentiles and the max.
 */
const SUB_BUCKETS = 100;
const DECADES = 8; // 1 µs .. 100 s

export interface HistogramData {
  counts: number[];
  count: number;
  max: number;
  sum: number;
}

export function emptyHistogram(): HistogramData {
  return { counts: new Array<number>(SUB_BUCKETS * DECADES).fill(0), count: 0, max: 0, sum: 0 };
}

/** Records a latency in milliseconds. */
export function record(h: HistogramData, ms: number): void {
  const micros = Math.max(1, ms * 1000);
  const decade = Math.min(DECADES - 1, Math.floor(Math.log10(micros)));
  const base = 10 ** decade;
  const sub = Math.min(SUB_BUCKETS - 1, Math.floor(((micros - base) / (9 * base)) * SUB_BUCKETS));
  h.counts[decade * SUB_BUCKETS + sub]! += 1;
  h.count++;
  h.sum += ms;
  if (ms > h.max) h.max = ms;
}

export function merge(into: HistogramData, from: HistogramData): HistogramData {
  from.counts.forEach((n, i) => (into.counts[i]! += n));
  into.count += from.count;
  into.sum += from.sum;
  into.max = Math.max(into.max, from.max);
  return into;
}

/** The q-quantile (0..1) in milliseconds (the upper edge of its bucket). */
export function quantile(h: HistogramData, q: number): number {
  if (h.count === 0) return NaN;
  const rank = Math.ceil(q * h.count);
  let seen = 0;
  for (let i = 0; i < h.counts.length; i++) {
    seen += h.counts[i]!;
    if (seen >= rank) {
      const decade = Math.floor(i / SUB_BUCKETS);
      const base = 10 ** decade;
      const upper = base + ((i % SUB_BUCKETS) + 1) * ((9 * base) / SUB_BUCKETS);
      return Math.min(upper / 1000, h.max);
    }
  }
  return h.max;
}
