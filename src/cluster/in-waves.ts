/**
 * A replica's bulk Redis work: cut into batches (chunks), and run (lease renewals) in waves of at most `budget` units, each
 * wave after the one before. Sent all at once, thousands of renewals reach Redis together,
 * and a client's request queued behind them waits for all of them: in waves, it gets in
 * between two.
 */
/** The items in slices of at most `size`, in order (the batches of one kind of call). */
export function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

export interface WeightedCall {
  /** Entries the call touches. */
  weight: number;
  run: () => Promise<unknown>;
}

export async function inWaves(
  calls: readonly WeightedCall[],
  budget: number,
): Promise<PromiseSettledResult<unknown>[]> {
  const results: PromiseSettledResult<unknown>[] = [];
  for (let start = 0; start < calls.length;) {
    let end = start;
    let weight = 0;
    while (end < calls.length && (end === start || weight + calls[end]!.weight <= budget))
      weight += calls[end++]!.weight;
    results.push(...(await Promise.allSettled(calls.slice(start, end).map((call) => call.run()))));
    start = end;
  }
  return results;
}
