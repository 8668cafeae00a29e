/**
 * Per-connection frame rate limiting: a token bucket, plus the rule that a
 * connection rate-limited without pause for too long is closed.
 *
 * @module
 */

/** Limits of a {@linkcode RateLimiter}. */
export interface RateLimitOptions {
  /** Frames per second, sustained. */
  rate: number;
  /** Frames accepted at once after a quiet spell. */
  burst: number;
  /** Seconds of continuous abuse after which the connection is closed. */
  abuseSeconds: number;
}

/** What to do with one incoming frame. */
export type RateDecision = "accept" | "drop" | "close";

/** A token bucket for one connection. Time is passed in, so tests need no clock. */
export class RateLimiter {
  readonly #options: RateLimitOptions;
  #tokens: number;
  #updatedAt: number;
  /** When the current run of dropped frames began; undefined when not abusing. */
  #abuseSince: number | undefined;
  #lastDropAt = 0;

  constructor(options: RateLimitOptions, now: number) {
    this.#options = options;
    this.#tokens = options.burst;
    this.#updatedAt = now;
  }

  /** Takes one token for a frame arriving at `now` (milliseconds). */
  take(now: number): RateDecision {
    const { rate, burst, abuseSeconds } = this.#options;
    this.#tokens = Math.min(burst, this.#tokens + ((now - this.#updatedAt) / 1000) * rate);
    this.#updatedAt = now;
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      // A full second without drops ends the abuse run: a client that slowed down is forgiven.
      if (this.#abuseSince !== undefined && now - this.#lastDropAt >= 1000) {
        this.#abuseSince = undefined;
      }
      return "accept";
    }
    if (this.#abuseSince === undefined || now - this.#lastDropAt >= 1000) this.#abuseSince = now;
    this.#lastDropAt = now;
    return now - this.#abuseSince >= abuseSeconds * 1000 ? "close" : "drop";
  }
}
