/**
 * @internal Timeouts for many operations that share one limit, on one timer.
 *
 * A `setTimeout` per store operation (armed, then cleared when the reply comes) costs more CPU than
 * a Redis read itself. With one limit for every operation, deadlines expire in the order the
 * operations started, so a queue and one timer for its head are enough: starting an operation
 * appends an entry, finishing it marks the entry settled, and the timer, when it fires, expires
 * what is due and re-arms for the next entry still running.
 */

/** One operation's deadline, from {@link DeadlineQueue.add}. */
export interface Deadline {
  /** The operation finished: its deadline never fires. */
  settle(): void;
}

interface Entry extends Deadline {
  readonly at: number;
  readonly expire: () => void;
  settled: boolean;
}

function settle(this: Entry): void {
  this.settled = true;
}

export class DeadlineQueue {
  readonly #limitMs: number;
  readonly #clock: () => number;
  #entries: Entry[] = [];
  #head = 0;
  #timer: ReturnType<typeof setTimeout> | null = null;

  /** `limitMs`: how long each operation may run; `clock`: monotonic milliseconds. */
  constructor(limitMs: number, clock: () => number = () => performance.now()) {
    this.#limitMs = limitMs;
    this.#clock = clock;
  }

  /** Operations still counted (running, or settled behind one that is running). */
  get size(): number {
    return this.#entries.length - this.#head;
  }

  /** Start the clock of one operation: `expire` runs once the limit passes, unless settled first. */
  add(expire: () => void): Deadline {
    this.#dropSettled();
    const entry: Entry = { at: this.#clock() + this.#limitMs, expire, settled: false, settle };
    this.#entries.push(entry);
    if (this.#timer === null) this.#arm(this.#limitMs);
    return entry;
  }

  #arm(delayMs: number): void {
    this.#timer = setTimeout(() => this.#fire(), Math.max(1, Math.ceil(delayMs)));
    // A pending deadline alone must not keep the process alive; the operation it guards does.
    this.#timer.unref?.();
  }

  #fire(): void {
    this.#timer = null;
    const now = this.#clock();
    let thrown: { error: unknown } | null = null;
    for (;;) {
      this.#dropSettled();
      const entry = this.#entries[this.#head];
      if (entry === undefined) break;
      if (entry.at > now) {
        this.#arm(entry.at - now);
        break;
      }
      this.#head++;
      entry.settled = true;
      // One failing callback must not keep the others (or the next timer) from running.
      try {
        entry.expire();
      } catch (error) {
        thrown ??= { error };
      }
    }
    if (thrown !== null) throw thrown.error;
  }

  /** Forget settled entries at the head; compact the array once most of it is behind the head. */
  #dropSettled(): void {
    const entries = this.#entries;
    while (this.#head < entries.length && (entries[this.#head] as Entry).settled) this.#head++;
    if (this.#head === entries.length) {
      entries.length = 0;
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > entries.length) {
      this.#entries = entries.slice(this.#head);
      this.#head = 0;
    }
  }
}
