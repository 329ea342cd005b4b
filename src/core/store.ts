import type { SessionMeta } from "./expiry.js";

/**
 * The store contract. Every store (memory, Redis, your own) implements it and passes the shared
 * conformance suite in `test/conformance/store.ts`.
 *
 * Values are opaque JSON strings, one per session key, so a store can apply a change to one key
 * without touching the others (two parallel requests that change different keys both persist).
 * Ids handed to a store are always well formed; stores never see raw cookie input.
 *
 * Times are epoch milliseconds passed in by the engine (`now`), so expiry is testable with a fake
 * clock and consistent across app instances.
 */
export interface StoredSession {
  /** Session key → JSON text. A null-prototype object: keys like `__proto__` are plain keys. */
  fields: Record<string, string>;
  meta: SessionMeta;
}

/** A change to apply to one record at the end of a request. */
export interface SessionWrite {
  /** Keys to set, with their JSON text. */
  set: Record<string, string>;
  /** Keys to delete. */
  del: readonly string[];
  /** The record's metadata, written with every change. */
  meta: SessionMeta;
}

/**
 * `create` succeeds only when no record has the id; `update` only when one does (a session that
 * another request destroyed, cycled or let expire is never written back to life).
 */
export type WriteMode = "create" | "update";

export interface SessionStore {
  /**
   * Read a record and, in the same operation, renew its idle deadline (`deadlineOf(meta, now)`).
   * Returns `null` when missing or past its deadline.
   */
  load(id: string, now: number): Promise<StoredSession | null>;

  /**
   * Apply `write` under `mode`. Returns `false` when the mode's precondition failed. An update that
   * leaves no keys deletes the record. Every write sets the record's TTL from `deadlineOf(meta, now)`.
   */
  write(id: string, write: SessionWrite, mode: WriteMode, now: number): Promise<boolean>;

  /** Delete a record. Deleting a missing record is not an error. */
  destroy(id: string): Promise<void>;

  /** Atomically read and delete a whole record (the first half of `cycleId`). */
  claim(id: string, now: number): Promise<StoredSession | null>;

  /**
   * Atomically read and delete the given keys of a record, returning only those that existed. Two
   * callers racing for the same key: exactly one gets it (flash messages are shown once).
   */
  take(id: string, keys: readonly string[]): Promise<Record<string, string>>;

  /**
   * Try once to take the per-session lock for `ttlMs`. Returns a token to release it with, or `null`
   * when another holder has it.
   */
  tryLock(id: string, ttlMs: number): Promise<string | null>;

  /** Release the lock if `token` still holds it. */
  unlock(id: string, token: string): Promise<void>;

  /**
   * Resolves once the store can serve its first operation (e.g. its client's first connection).
   * Until then the engine holds operations back, within `operation_timeout_ms`, so the requests
   * that arrive while an app starts do not fail; afterwards it is never consulted again, and an
   * outage fails fast.
   */
  ready?(): Promise<void>;

  /** Release resources (connections the store created itself, timers). */
  close?(): Promise<void>;
}
