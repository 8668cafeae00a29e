/**
 * Small statistics helpers shared by the load generator and the runner.
 * @module
 */

/**
 * A log-linear latency histogram of integer microseconds: exact below 2,048 µs, then
 * 1,024 sub-buckets per power of two (≤ 0.1 % error). Fixed size, so recording every
 * delivery costs one array increment and no allocation.
 */
export class Histogram {
  private readonly counts = new Float64Array(2048 + 40 * 1024);
  /** Number of recorded values. */
  count = 0;
  /** Largest recorded value, exact. */
  max = 0;

  /** Records one value in microseconds (negative values count as 0). */
  record(us: number): void {
    const v = us > 0 ? Math.floor(us) : 0;
    this.counts[bucketOf(v)]++;
    this.count++;
    if (v > this.max) this.max = v;
  }

  /** Forgets everything recorded so far (used when the measurement window opens). */
  reset(): void {
    this.counts.fill(0);
    this.count = 0;
    this.max = 0;
  }

  /** The value at quantile `q` (0–1), as the lower bound of its bucket; 0 when empty. */
  quantile(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i];
      if (seen >= rank) return Math.min(valueOf(i), this.max);
    }
    return this.max;
  }

  /** p50/p90/p99/max in microseconds. */
  summary(): LatencySummary {
    return {
      count: this.count,
      p50: this.quantile(0.5),
      p90: this.quantile(0.9),
      p99: this.quantile(0.99),
      max: this.max,
    };
  }
}

/** Latency percentiles in microseconds. */
export interface LatencySummary {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

function bucketOf(v: number): number {
  if (v < 2048) return v;
  const e = Math.min(Math.floor(Math.log2(v)), 50); // 11…
  const idx = 2048 + (e - 11) * 1024 + (Math.floor(v / 2 ** (e - 10)) & 1023);
  return Math.min(idx, 2048 + 40 * 1024 - 1);
}

function valueOf(i: number): number {
  if (i < 2048) return i;
  const e = Math.floor((i - 2048) / 1024) + 11;
  const sub = (i - 2048) % 1024;
  return (1024 + sub) * 2 ** (e - 10);
}

/** Median of the finite numbers in `xs` (NaN when none). */
export function median(xs: readonly number[]): number {
  const v = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/** Smallest and largest finite numbers in `xs` ([NaN, NaN] when none). */
export function minMax(xs: readonly number[]): [number, number] {
  const v = xs.filter(Number.isFinite);
  if (v.length === 0) return [NaN, NaN];
  return [Math.min(...v), Math.max(...v)];
}
