import type { Breaker } from "./breaker.js";
import { StoreUnavailableError } from "./errors.js";
import type { StoreErrorKind } from "./events.js";
import type { SessionMeta } from "./expiry.js";

/** What a store holds for one session. */
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
  /**
   * The record's metadata. Always present on `create`. On `update` present only when the request
   * changed the lifetime (`setExpiry`); when absent the store keeps the stored metadata and sets the
   * record's deadline from it (`deadlineOf(storedMeta, now)`), so a parallel request's new lifetime
   * is never undone by a request that only changed a key.
   */
  meta?: SessionMeta;
}

/**
 * `create` succeeds only when no record has the id; `update` only when one does (a session that
 * another request destroyed, cycled or let expire is never written back to life).
 */
export type WriteMode = "create" | "update";

/**
 * Records: what every store (memory, Redis, your own) implements, with {@link LockStore} beside
 * it when the store can serve `sessionLock()`. The conformance suite in
 * `test/conformance/store-suite.ts` checks both.
 *
 * Values are opaque JSON strings, one per session key, so a store can apply a change to one key
 * without touching the others (two parallel requests that change different keys both persist).
 * Ids handed to a store are always well formed; stores never see raw cookie input.
 *
 * Times are epoch milliseconds passed in by the engine (`now`), so expiry is testable with a fake
 * clock and consistent across app instances.
 *
 * ## What a late reply means
 *
 * The engine gives every operation `operation_timeout_ms`. When the reply comes later, the request
 * has already answered 503, but the operation may still have run: its outcome is unknown. Each
 * operation is used so that such a reply costs the user a retry, never a session:
 *
 * - `load`: changes nothing but the idle deadline; a retry is safe.
 * - `write` (create): the record may exist. The engine never hands out that id (no cookie is sent)
 *   and deletes the record when the late reply says it was made.
 * - `write` (update): may have been applied. The same write applied again gives the same record.
 * - `destroy`: idempotent.
 * - `claim`: may have deleted the record. `cycleId` creates the new record first and claims the old
 *   one second; when the claim's reply comes late, the engine writes back what it claimed (a
 *   `create` under the old id) and deletes the new record, so the old cookie keeps working.
 * - `take`: the keys may be gone. When the late reply brings them, the engine writes them back (an
 *   update without metadata): the request answered 503 and showed nothing.
 * - `acquireLock`: the lock may be held with the engine's token. The engine releases it with that
 *   token (best effort), so the session's locked routes do not wait for the lock's TTL.
 * - `releaseLock`: the lock's TTL frees it anyway.
 */
export interface RecordStore {
  /**
   * True when operations run in this process and cannot hang (the memory store): the engine then
   * skips its timeout guard. A store reached over a network says `false`.
   */
  readonly inProcess: boolean;

  /**
   * Read a record and, in the same operation, renew its idle deadline (`deadlineOf(meta, now)`).
   * Returns `null` when missing or past its deadline.
   *
   * Late reply: nothing changed but the idle deadline; the request answers 503 and a retry is safe.
   */
  load(id: string, now: number): Promise<StoredSession | null>;

  /**
   * Apply `write` under `mode`. Returns `false` when the mode's precondition failed. An update that
   * leaves no keys deletes the record. Every write sets the record's TTL from `deadlineOf(meta, now)`
   * with the written metadata, or the stored one when the write carries none.
   *
   * Late reply: a create may have made the record; its id is never handed out, and the engine
   * deletes it when the reply arrives. An update may have been applied; applying the same write
   * again gives the same record, so the 503 costs a retry.
   */
  write(id: string, write: SessionWrite, mode: WriteMode, now: number): Promise<boolean>;

  /** Delete a record. Deleting a missing record is not an error. Late reply: idempotent, retry. */
  destroy(id: string): Promise<void>;

  /**
   * Atomically read and delete a whole record (`cycleId` moves it to a new id).
   *
   * Late reply: the record may be gone. The engine created the new record before claiming, so it
   * writes the late reply's record back under the old id (a `create`) and deletes the new one.
   */
  claim(id: string, now: number): Promise<StoredSession | null>;

  /**
   * Atomically read and delete the given keys of a record, returning only those that existed. Two
   * callers racing for the same key: exactly one gets it (flash messages are shown once).
   *
   * Late reply: the keys may be taken. The request answered 503 and showed nothing, so the engine
   * writes the late reply's keys back.
   */
  take(id: string, keys: readonly string[]): Promise<Record<string, string>>;

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

/** Per-session locks, for `sessionLock()`. Optional: a store without them cannot serve it. */
export interface LockStore {
  /**
   * Take the lock of session `id` for `ttlMs` with `token`, which the engine generated. Returns
   * `false` when another holder has it.
   *
   * Late reply: the lock may be held with `token`; the engine releases it with that token.
   */
  acquireLock(id: string, token: string, ttlMs: number): Promise<boolean>;

  /**
   * Release the lock if `token` still holds it. Idempotent: releasing twice, or late, is harmless.
   * Late reply: the lock's TTL frees it anyway.
   */
  releaseLock(id: string, token: string): Promise<void>;
}

/** What the engine takes: records, and locks when the store has them. */
export type SessionStore = RecordStore & Partial<LockStore>;

/** Every store operation, by name. */
export type StoreOperations = Required<
  Pick<RecordStore, "load" | "write" | "destroy" | "claim" | "take">
> &
  LockStore;

/**
 * @internal A store operation that did not answer in time. `late` settles with the operation's own
 * result whenever it arrives, so a caller can undo or complete what it did (see "What a late reply
 * means" above).
 */
export class OperationTimeoutError extends StoreUnavailableError {
  readonly late: Promise<unknown>;
  constructor(limitMs: number, late: Promise<unknown>) {
    super(`operation timed out after ${limitMs} ms (outcome unknown)`);
    late.catch(() => {});
    this.late = late;
  }
}

/** How {@link guardStore} reports failures. */
export interface GuardSettings {
  /** Ms each operation may take; `null` for stores that are in process. */
  timeoutMs: number | null;
  /** Held back until it settles (the store's first connection), then never again. */
  warming: () => Promise<void> | null;
  /**
   * Called once per failure with the error that the caller gets and the operation's name; `kind`
   * says whether it failed, timed out or was refused by the open breaker.
   */
  report: (error: StoreUnavailableError, operation: string, kind: StoreErrorKind) => void;
  /** Refuses operations at once while the store stalls; none for in-process stores. */
  breaker?: Breaker | null;
}

/** The breaker refused the operation: the store stalled recently and has not answered a probe yet. */
export class BreakerOpenError extends StoreUnavailableError {
  /** Milliseconds until the breaker lets a probe through. */
  readonly retryAfterMs: number;
  constructor(retryAfterMs: number) {
    super(
      `the store timed out repeatedly; requests are refused at once for ${Math.ceil(retryAfterMs)} ms before it is tried again`,
    );
    this.retryAfterMs = retryAfterMs;
  }
}

function unavailable(cause: unknown): StoreUnavailableError {
  if (cause instanceof StoreUnavailableError) return cause;
  const message = cause instanceof Error ? cause.message : String(cause);
  return new StoreUnavailableError(message, { cause });
}

/**
 * @internal The one timeout guard: wraps every operation of `store` so that a failure becomes a
 * {@link StoreUnavailableError} (503) and an operation slower than the limit an
 * {@link OperationTimeoutError}. Lock operations of a store without locks throw a plain `Error`.
 */
export function guardStore(store: SessionStore, options: GuardSettings): StoreOperations {
  const breaker = options.breaker ?? null;
  const fail = (cause: unknown, operation: string): StoreUnavailableError => {
    const error = unavailable(cause);
    const kind: StoreErrorKind =
      error instanceof BreakerOpenError
        ? "breaker-open"
        : error instanceof OperationTimeoutError
          ? "timeout"
          : "error";
    options.report(error, operation, kind);
    return error;
  };
  const run = async <T>(name: string, operation: () => Promise<T>): Promise<T> => {
    const limit = options.timeoutMs;
    const refusal = breaker?.admit() ?? null;
    if (refusal !== null) throw fail(new BreakerOpenError(refusal.retryAfterMs), name);
    const warming = options.warming();
    const pending = warming ? warming.then(operation) : Promise.resolve().then(operation);
    if (limit === null) {
      try {
        return await pending;
      } catch (cause) {
        throw fail(cause, name);
      }
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new OperationTimeoutError(limit, pending)), limit);
    });
    try {
      const result = await Promise.race([pending, timeout]);
      breaker?.succeeded();
      return result;
    } catch (cause) {
      // A late failure of the abandoned operation must not become an unhandled rejection.
      pending.catch(() => {});
      // Only a stall opens the breaker: an error reply shows the store is answering.
      if (cause instanceof OperationTimeoutError) breaker?.timedOut();
      else breaker?.succeeded();
      throw fail(cause, name);
    } finally {
      clearTimeout(timer);
    }
  };
  const locks = (): LockStore => {
    if (typeof store.acquireLock !== "function" || typeof store.releaseLock !== "function") {
      throw new Error(
        "coatcheck: this session store has no locks (acquireLock/releaseLock), so sessionLock() cannot be used with it",
      );
    }
    return store as LockStore;
  };
  return {
    load: (id, now) => run("load", () => store.load(id, now)),
    write: (id, write, mode, now) => run("write", () => store.write(id, write, mode, now)),
    destroy: (id) => run("destroy", () => store.destroy(id)),
    claim: (id, now) => run("claim", () => store.claim(id, now)),
    take: (id, keys) => run("take", () => store.take(id, keys)),
    acquireLock: (id, token, ttlMs) => {
      const lockStore = locks();
      return run("acquireLock", () => lockStore.acquireLock(id, token, ttlMs));
    },
    releaseLock: (id, token) => {
      const lockStore = locks();
      return run("releaseLock", () => lockStore.releaseLock(id, token));
    },
  };
}
