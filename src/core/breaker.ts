/**
 * A circuit breaker in front of the store.
 *
 * A store that refuses connections fails fast by itself; a store that stalls (a frozen process, a
 * full network buffer, a paused client) makes every operation wait the whole operation timeout.
 * Under load those waits pile up: each request holds a socket and memory for a second, and the
 * answers that do come are all late. After `threshold` consecutive timeouts the breaker opens: for
 * `openMs` every operation is refused at once (the request answers 503 with `Retry-After`). Then it
 * lets exactly one probe through; the probe's success closes it, its failure opens it again for a
 * longer back-off (doubling, up to `maxOpenMs`).
 *
 * Only timeouts count. An error reply (connection refused, READONLY, a script error) already comes
 * back fast, so there is nothing to short-circuit, and counting it would turn a single bad command
 * into an outage for everyone.
 */

/** Settings of {@link Breaker}; see the README's "Running in production". */
export interface BreakerOptions {
  /** Consecutive timeouts that open the breaker. 0 disables it. */
  threshold: number;
  /** First back-off, ms. */
  openMs: number;
  /** Longest back-off, ms. */
  maxOpenMs: number;
}

/** `closed`: all pass; `open`: all refused; `probing`: one operation is out to test the store. */
export type BreakerState = "closed" | "open" | "probing";

/** Why an operation was refused, for the 503's `Retry-After`. */
export interface BreakerRefusal {
  /** Milliseconds until the breaker lets a probe through. */
  retryAfterMs: number;
}

export class Breaker {
  readonly #options: BreakerOptions;
  readonly #now: () => number;
  #state: BreakerState = "closed";
  #timeouts = 0;
  #openUntil = 0;
  #backoff: number;

  /** @param now Monotonic clock in ms. */
  constructor(options: BreakerOptions, now: () => number) {
    this.#options = options;
    this.#now = now;
    this.#backoff = options.openMs;
  }

  get state(): BreakerState {
    return this.#state;
  }

  /**
   * Ask before an operation. `null`: go ahead, then report with {@link succeeded} or
   * {@link timedOut}. Otherwise the operation must not run.
   */
  admit(): BreakerRefusal | null {
    if (this.#state === "closed") return null;
    if (this.#state === "probing") return { retryAfterMs: this.#backoff };
    const left = this.#openUntil - this.#now();
    if (left > 0) return { retryAfterMs: left };
    this.#state = "probing";
    return null;
  }

  /** The operation got an answer (an error reply counts: the store is responsive). */
  succeeded(): void {
    this.#timeouts = 0;
    this.#backoff = this.#options.openMs;
    this.#state = "closed";
  }

  /** The operation timed out. */
  timedOut(): void {
    if (this.#options.threshold <= 0) return;
    if (this.#state === "probing") {
      this.#backoff = Math.min(this.#backoff * 2, this.#options.maxOpenMs);
      this.#open();
      return;
    }
    this.#timeouts++;
    if (this.#state === "closed" && this.#timeouts >= this.#options.threshold) this.#open();
  }

  #open(): void {
    this.#state = "open";
    this.#openUntil = this.#now() + this.#backoff;
  }
}
