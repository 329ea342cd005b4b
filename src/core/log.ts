/**
 * Logging in pino's shape: `logger.warn(fields, message)`. A pino (or bunyan-style) logger fits as
 * it is; the default writes one readable line per entry to the console. Errors go under `err`, as
 * pino's serializer expects, and keep their `cause`.
 */

/** Structured fields of one entry. */
export type LogFields = Record<string, unknown>;

/** Where coatcheck reports what it recovers from. pino's logger satisfies it. */
export interface Logger {
  warn(fields: LogFields, message: string): void;
  error(fields: LogFields, message: string): void;
}

function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  let text = `${error.name}: ${error.message}`;
  let cause: unknown = error.cause;
  for (let depth = 0; cause !== undefined && depth < 5; depth++) {
    text += ` (cause: ${cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause)})`;
    cause = cause instanceof Error ? cause.cause : undefined;
  }
  return text;
}

function formatValue(value: unknown): string {
  if (value instanceof Error) return JSON.stringify(describeError(value));
  if (typeof value === "string") return /^[\w.:/@-]+$/.test(value) ? value : JSON.stringify(value);
  return JSON.stringify(value) ?? String(value);
}

/** `[coatcheck] message key=value …`, the format of the console default. */
export function formatEntry(fields: LogFields, message: string): string {
  let line = `[coatcheck] ${message}`;
  for (const key of Object.keys(fields)) {
    const value = fields[key];
    if (value !== undefined) line += ` ${key}=${formatValue(value)}`;
  }
  return line;
}

/** The default logger: readable lines on `console.warn` / `console.error`. */
export const consoleLogger: Logger = {
  warn: (fields, message) => console.warn(formatEntry(fields, message)),
  error: (fields, message) => console.error(formatEntry(fields, message)),
};

/**
 * Logs a recurring problem at most once per `windowMs` for each key. The first occurrence is logged
 * at once; the ones within the window are counted, and the next entry after it says how many were
 * left out (`suppressed`). An outage of a minute under load is a handful of lines, not one per
 * request.
 */
export class BurstLimiter {
  readonly #windowMs: number;
  readonly #now: () => number;
  readonly #seen = new Map<string, { until: number; suppressed: number }>();

  constructor(windowMs: number, now: () => number) {
    this.#windowMs = windowMs;
    this.#now = now;
  }

  /**
   * Whether to log an entry for `key` now; when yes, the number of entries left out since the last
   * one (0 for the first).
   */
  admit(key: string): number | null {
    const now = this.#now();
    const seen = this.#seen.get(key);
    if (seen !== undefined && now < seen.until) {
      seen.suppressed++;
      return null;
    }
    const suppressed = seen?.suppressed ?? 0;
    // Bounded: keys are reasons and operation names, but never let a bug grow it without limit.
    if (this.#seen.size >= 256 && seen === undefined) this.#seen.clear();
    this.#seen.set(key, { until: now + this.#windowMs, suppressed: 0 });
    return suppressed;
  }
}
