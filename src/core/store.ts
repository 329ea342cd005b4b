import type { Breaker } from "./breaker.js";
import { DeadlineQueue } from "./deadlines.js";
import { IndexUnsupportedError, StoreUnavailableError } from "./errors.js";
import type { StoreErrorKind } from "./events.js";
import type { SessionMeta } from "./expiry.js";

/**
 * The prototype of every record {@link newFields} makes: empty, frozen, with a null prototype of
 * its own, so a record inherits nothing (`__proto__`, `constructor` and `toString` are plain keys).
 */
class FieldRecord {}
Reflect.deleteProperty(FieldRecord.prototype, "constructor");
Object.setPrototypeOf(FieldRecord.prototype, null);
Object.freeze(FieldRecord.prototype);

/**
 * A new, empty record of session fields (key → JSON text) that inherits nothing. Unlike
 * `Object.create(null)`, which V8 keeps as a hash table, it is a fast object whose keys are read
 * and listed several times faster: stores build their loads with it.
 */
export function newFields(): Record<string, string> {
  return new FieldRecord() as Record<string, string>;
}

/**
 * True when `record` inherits nothing: its prototype is `null` or the one {@link newFields} gives.
 * Any other key lookup on it could find a property of `Object.prototype`.
 */
export function inheritsNothing(record: object): boolean {
  const proto: unknown = Object.getPrototypeOf(record);
  return proto === null || proto === FieldRecord.prototype;
}

/** What a store holds for one session. */
export interface StoredSession {
  /**
   * Session key → JSON text, in an object that inherits nothing (see {@link inheritsNothing}):
   * made by {@link newFields} or `Object.create(null)`, so keys like `__proto__` are plain keys.
   */
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
  /**
   * On `update`: the metadata the request loaded, given so that a store can pick a cheaper path
   * for the common case (the Redis store updates a record without an idle timeout with a shorter
   * script). Only a hint: another request may have changed the record since, so a store that uses
   * it checks it against what it holds and otherwise applies the write as if it were absent.
   */
  loaded?: SessionMeta;
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
   * True when every `load` returns new objects, whose `fields` inherit nothing ({@link newFields}
   * or `Object.create(null)`), that nothing else keeps: the engine then uses them as they are
   * instead of copying the fields. Leave it unset for a store that caches, reuses or later changes
   * what it returns.
   */
  readonly loadsFresh?: boolean;

  /**
   * Read a record and, in the same operation, renew its idle deadline (`deadlineOf(meta, now)`).
   * Returns `null` when missing or past its deadline.
   *
   * Late reply: nothing changed but the idle deadline; the request answers 503 and a retry is safe.
   */
  load(id: string, now: number): Promise<StoredSession | null>;

  /**
   * Optional, for a store with `inProcess: true`: the same as `load`, answered at once instead of
   * through a promise. The engine then reads such a store in the same turn, which saves every
   * request that reads its session a few promises. A store over a network leaves it out. It is
   * used only where `load` is defined on the same object (class) as `loadNow`: a subclass that
   * overrides `load` alone is read through that `load`.
   */
  loadNow?(id: string, now: number): StoredSession | null;

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

/** One signed-in session in its user's index (see {@link UserIndexStore}). */
export interface IndexEntry {
  /**
   * The session's reference: `sha256(id)` in base64url, which is what the Redis and PostgreSQL
   * stores key records by. It finds the record, but no cookie can be made from it.
   */
  ref: string;
  /** A random value naming the session to its user; the same across id changes. */
  handle: string;
  /** When the user signed in on this device, epoch ms. */
  createdAt: number;
  /** When the entry was last written (sign-in, id change, lifetime change), epoch ms. */
  updatedAt: number;
  /**
   * When the entry lapses, epoch ms: never earlier than its session's own deadline, so an entry
   * outlives its record, not the other way round. A store drops entries past it.
   */
  deadline: number;
  /** What the app recorded at sign-in, bounded in length; `null` when nothing. */
  userAgent: string | null;
  address: string | null;
}

/** Which entries {@link UserIndexStore.indexRemove} removes. */
export type IndexSelection =
  | { refs: readonly string[] }
  | { handles: readonly string[] }
  /** Every entry but the one with this handle (`null`: every entry). */
  | { allExcept: string | null };

/**
 * The per-user session index: optional. A store with it serves `listSessions()`, the revocation
 * calls and `max_sessions_per_user`; without it those throw {@link IndexUnsupportedError} and
 * sign-in still works. The memory, Redis and PostgreSQL stores have it.
 *
 * Each operation is atomic on one user's index (on Redis: one key of its own). The engine changes
 * an index only on sign-in, sign-out, destroy, id changes, lifetime changes, revocation and
 * listing, never on a plain read. Races are settled by the order of operations: a revocation
 * removes the entry first, then deletes the record; an id change moves the entry with
 * `replaces` (refused once the entry is gone) and the session counts as revoked when refused.
 * Sessions are named by their {@link IndexEntry.ref}, never by their id, so the index holds nothing
 * a cookie can be made from.
 */
export interface UserIndexStore {
  /**
   * Add `entry` under `userId`, dropping entries past their deadline and any entry with the same
   * ref or handle. With `replaces` (a ref), only when an entry has it (it is replaced): returns
   * `0` and changes nothing when none does (the session was revoked meanwhile). Otherwise returns
   * how many entries `userId` has afterwards (this one included, those past their deadline not),
   * which lets the engine skip the listing `max_sessions_per_user` needs while a user is under
   * the limit: `limit` is that limit (0 = none), and a store for which counting is a scan may
   * stop counting at `limit + 1` (at 1 when `limit` is 0). Its cost should not grow with the
   * user's entries: the engine calls it on every sign-in and id change. `id` is the session's
   * id, for a store that keys records by it in process (memory); a store reached over a network
   * must not keep it.
   */
  indexPut(
    userId: string,
    entry: IndexEntry,
    id: string,
    replaces: string | null,
    now: number,
    limit: number,
  ): Promise<number>;

  /**
   * Remove the selected entries of `userId` and return them (entries past their deadline
   * excluded). With `destroy` (a revocation), then delete their records too: entries first, so a
   * concurrent id change of one of them finds its entry gone and gives up.
   */
  indexRemove(
    userId: string,
    selection: IndexSelection,
    now: number,
    destroy: boolean,
  ): Promise<IndexEntry[]>;

  /** The entries of `userId` that are not past their deadline, in no particular order. */
  indexList(userId: string, now: number): Promise<IndexEntry[]>;

  /**
   * For each ref (of an entry in some user's index), its record's current deadline and metadata,
   * read WITHOUT renewing anything, or `null` when the record is gone or past its deadline.
   */
  peek(
    refs: readonly string[],
    now: number,
  ): Promise<Array<{ deadline: number; meta: SessionMeta } | null>>;
}

/** What the engine takes: records, and locks and a user index when the store has them. */
export type SessionStore = RecordStore & Partial<LockStore> & Partial<UserIndexStore>;

/** True when `store` keeps a per-user index. */
export function hasUserIndex(store: SessionStore): store is SessionStore & UserIndexStore {
  return (
    typeof store.indexPut === "function" &&
    typeof store.indexRemove === "function" &&
    typeof store.indexList === "function" &&
    typeof store.peek === "function"
  );
}

/** Every store operation, by name. */
export type StoreOperations = Required<
  Pick<RecordStore, "load" | "write" | "destroy" | "claim" | "take">
> &
  LockStore &
  UserIndexStore & {
    /**
     * `load` answered at once, for an in-process store with `loadNow`: the record, `null` when
     * missing, or `undefined` when it cannot answer now (no `loadNow`, or the store is still
     * warming up): then call `load`. A failure throws the {@link StoreUnavailableError}.
     */
    loadNow(id: string, now: number): StoredSession | null | undefined;
  };

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

/** Reject with `error()`; if making it throws (a failing logger or subscriber), with that throw. */
function rejectWith(reject: (reason: unknown) => void, error: () => unknown): void {
  let reason: unknown;
  try {
    reason = error();
  } catch (thrown) {
    reason = thrown;
  }
  reject(reason);
}

/**
 * `store.loadNow` when the store may be read through it: in process, and `loadNow` defined on the
 * same object as `load`. A subclass, spy or wrapper that replaces `load` alone is read through
 * its `load`, so what it adds (counting, failures, logging) is never bypassed.
 */
function syncLoad(store: RecordStore): ((id: string, now: number) => StoredSession | null) | null {
  if (!store.inProcess || typeof store.loadNow !== "function") return null;
  const owner = (name: string): object | null => {
    let at: object | null = store;
    while (at !== null && !Object.hasOwn(at, name)) at = Object.getPrototypeOf(at) as object | null;
    return at;
  };
  return owner("load") === owner("loadNow") ? store.loadNow.bind(store) : null;
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
  const limit = options.timeoutMs;
  // One timer for every operation's deadline (see deadlines.ts), not one per operation.
  const deadlines = limit === null ? null : new DeadlineQueue(limit);
  const run = <T>(name: string, operation: () => Promise<T>): Promise<T> => {
    const refusal = breaker?.admit() ?? null;
    if (refusal !== null)
      return new Promise<T>((_, reject) =>
        rejectWith(reject, () => fail(new BreakerOpenError(refusal.retryAfterMs), name)),
      );
    const warming = options.warming();
    if (deadlines === null || limit === null) {
      // An in-process store (no deadline): its operation starts at once, and a throw is a failure.
      let started: Promise<T>;
      try {
        started = warming ? warming.then(operation) : operation();
      } catch (cause) {
        started = Promise.reject(cause);
      }
      return started.catch((cause: unknown) => {
        throw fail(cause, name);
      });
    }
    const pending = warming ? warming.then(operation) : Promise.resolve().then(operation);
    return new Promise<T>((resolve, reject) => {
      let done = false;
      const deadline = deadlines.add(() => {
        if (done) return;
        done = true;
        // A late failure of the abandoned operation must not become an unhandled rejection.
        pending.catch(() => {});
        breaker?.timedOut();
        rejectWith(reject, () => fail(new OperationTimeoutError(limit, pending), name));
      });
      pending.then(
        (result) => {
          if (done) return;
          done = true;
          deadline.settle();
          breaker?.succeeded();
          resolve(result);
        },
        (cause: unknown) => {
          if (done) return;
          done = true;
          deadline.settle();
          // Only a stall opens the breaker: an error reply shows the store is answering.
          if (cause instanceof OperationTimeoutError) breaker?.timedOut();
          else breaker?.succeeded();
          rejectWith(reject, () => fail(cause, name));
        },
      );
    });
  };
  const locks = (): LockStore => {
    if (typeof store.acquireLock !== "function" || typeof store.releaseLock !== "function") {
      throw new Error(
        "coatcheck: this session store has no locks (acquireLock/releaseLock), so sessionLock() cannot be used with it",
      );
    }
    return store as LockStore;
  };
  // A store without an index is a programming error, not an outage: thrown as it is, never a 503.
  const onIndex = <T>(name: string, operation: (s: UserIndexStore) => Promise<T>): Promise<T> => {
    if (!hasUserIndex(store)) return Promise.reject(new IndexUnsupportedError());
    return run(name, () => operation(store));
  };
  // Only for a store nothing guards (in process: no deadline, no breaker), as the engine builds it.
  const loadNow = deadlines === null && breaker === null ? syncLoad(store) : null;
  return {
    load: (id, now) => run("load", () => store.load(id, now)),
    loadNow: (id, now) => {
      if (loadNow === null || options.warming() !== null) return undefined;
      // As `run`: a throw becomes the store's failure.
      try {
        return loadNow(id, now);
      } catch (cause) {
        throw fail(cause, "load");
      }
    },
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
    indexPut: (userId, entry, id, replaces, now, limit) =>
      onIndex("indexPut", (s) => s.indexPut(userId, entry, id, replaces, now, limit)),
    indexRemove: (userId, selection, now, destroy) =>
      onIndex("indexRemove", (s) => s.indexRemove(userId, selection, now, destroy)),
    indexList: (userId, now) => onIndex("indexList", (s) => s.indexList(userId, now)),
    peek: (refs, now) => onIndex("peek", (s) => s.peek(refs, now)),
  };
}
