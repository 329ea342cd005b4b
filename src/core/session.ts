import { randomBytes } from "node:crypto";
import { inspect } from "node:util";
import type { SessionEngine } from "./engine.js";
import { SessionCommittedError, SessionLockTimeoutError, SessionValueError } from "./errors.js";
import { EVENTS, idHash, listening, publish } from "./events.js";
import { clampLifetime, metaProblem, type SessionMeta } from "./expiry.js";
import { inheritsNothing, newFields, OperationTimeoutError, type StoredSession } from "./store.js";
import { byteLength, encodeValue, fieldBytes, measureFields } from "./values.js";

/** @internal Key of {@link Session}'s slot for the pipeline exchange that opened it. */
export const OPENED_BY: unique symbol = Symbol("coatcheck.exchange");

/** Session key holding the CSRF secret; removed on `cycleId` and `destroy` so the secret rotates. */
export const CSRF_SECRET_KEY = "_csrf_token";

/** What this request did with its session, for the response's cache headers. */
export interface SessionUsage {
  loaded: boolean;
  tokenRendered: boolean;
  flashConsumed: boolean;
  rotated: boolean;
}

/** Why a session's views must catch up: its data was dropped, moved to a new id, or read anew. */
export type ViewReset = "destroy" | "cycle" | "lock";

/**
 * @internal A view built on a session (a typed session, the auth session, the flash messages). The
 * session keeps its views and tells them when `destroy()`, `cycleId()` or `lock()` changed what
 * they were built from.
 */
export interface SessionView {
  reset(reason: ViewReset): void | Promise<void>;
}

/** The stored record this session was loaded from: where it came from and what the store had. */
interface Snapshot {
  readonly id: string;
  readonly fields: Readonly<Record<string, string>>;
  readonly meta: SessionMeta;
}

type Phase = "open" | "loaded" | "committed";

/**
 * @internal What the end-of-request table needs from a session, read once at commit. A frozen
 * description: the commit never writes into the session except through {@link settle}.
 */
export interface CommitInput {
  /** The session was loaded, or destroyed unread: there is something to decide. */
  readonly touched: boolean;
  /** The stored record it came from (not after `destroy()`). */
  readonly origin: Snapshot | null;
  /** The live fields: the snapshot with this request's changes applied. */
  readonly fields: Readonly<Record<string, string>>;
  readonly set: Readonly<Record<string, string>>;
  readonly del: readonly string[];
  /** Keys this request changed (set or deleted). */
  readonly changedKeys: ReadonlySet<string>;
  /** The new lifetime asked for by `setExpiry`, or null when unchanged. */
  readonly lifetime: { readonly maxAgeSecs: number | undefined; readonly at: number } | null;
  readonly cycled: boolean;
  /** Id of the record `destroy()` deletes. */
  readonly doomed: string | null;
  /** What that record held, when it had been read (the user index forgets its session). */
  readonly doomedFields: Readonly<Record<string, string>> | null;
  /** Keys `consume` took, and the record they came from: written back there on a 5xx. */
  readonly taken: Readonly<Record<string, string>>;
  readonly takenFrom: string | null;
  readonly lock: { readonly id: string; readonly token: string } | null;
}

/**
 * The one owner of a session's state. Only this module reads or writes it. Made for every request
 * that passes the middleware, used or not: what most requests never need (the change map, the
 * taken keys, an own copy of the fields) is made on first use, and the usage flags are its own
 * fields rather than an object of their own.
 */
class State implements SessionUsage {
  phase: Phase = "open";
  /** Well-formed id from the request cookie, or null. */
  readonly incomingId: string | null;
  snapshot: Snapshot | null = null;
  /** Live view: key → JSON text, changes applied. Null prototype. */
  fields: Readonly<Record<string, string>> = NO_FIELDS;
  /**
   * `fields` is not this session's own object (the snapshot's, or the shared empty one): copy it
   * before the first change (most requests make none).
   */
  sharesSnapshot = true;
  /**
   * UTF-8 bytes of the live view's keys and values; `NaN` while not counted (a loaded record is
   * counted at its first insert; changes before that leave it `NaN`).
   */
  bytes = 0;
  /** Keys changed in this request: JSON text, or null for a removal; null before the first. */
  changes: Map<string, string | null> | null = null;
  lifetime: { maxAgeSecs: number | undefined; at: number } | null = null;
  cycled = false;
  doomed: string | null = null;
  doomedFields: Readonly<Record<string, string>> | null = null;
  /** Keys `consume` took from the store; null before the first. */
  taken: Record<string, string> | null = null;
  takenFrom: string | null = null;
  wantLock = false;
  lock: { id: string; token: string } | null = null;
  committedId: string | null = null;
  loaded = false;
  tokenRendered = false;
  flashConsumed = false;
  rotated = false;
  /** Views registered by typed, auth and flash helpers; made on the first (most requests have none). */
  views: Map<unknown, SessionView> | null = null;

  constructor(incomingId: string | null) {
    this.incomingId = incomingId;
  }
}

let stateOfSession: (session: Session) => State;
let engineOfSession: (session: Session) => SessionEngine;

/**
 * Internal: the engine a session belongs to, so helpers built on a session (typed sessions, auth,
 * flash) use its clock, logger and configuration. Not part of the public API.
 */
export function engineOf(session: Session): SessionEngine {
  return engineOfSession(session);
}

/** Internal: what this request did with its session (the response's cache headers, htmx). */
export function usageOf(session: Session): SessionUsage {
  const { loaded, tokenRendered, flashConsumed, rotated } = stateOfSession(session);
  return { loaded, tokenRendered, flashConsumed, rotated };
}

/** Internal, for the pipeline: {@link usageOf} without the copy; read it, never change it. */
export function usageNow(session: Session): Readonly<SessionUsage> {
  return stateOfSession(session);
}

/** Internal: the view registered under `key`, or the one `create` makes and registers. */
export function viewOf<V extends SessionView>(session: Session, key: unknown, create: () => V): V {
  const s = stateOfSession(session);
  s.views ??= new Map();
  const views = s.views;
  let view = views.get(key) as V | undefined;
  if (view === undefined) {
    view = create();
    views.set(key, view);
  }
  return view;
}

/** Internal: forget the view under `key` if it is still `view` (a failed read is not kept). */
export function dropView(session: Session, key: unknown, view: SessionView): void {
  const views = stateOfSession(session).views;
  if (views?.get(key) === view) views.delete(key);
}

/**
 * Internal, for `CsrfToken`: the secret's JSON text in the loaded session, made with `make` on the
 * first render of the request. Synchronous, so templates can render tokens inline.
 */
export function renderSecret(
  session: Session,
  read: (text: string) => boolean,
  make: () => string,
): string {
  const s = stateOfSession(session);
  s.tokenRendered = true;
  const stored = s.fields[CSRF_SECRET_KEY];
  if (stored !== undefined && read(stored)) return stored;
  if (s.phase === "committed") throw new SessionCommittedError("csrfToken");
  const text = make();
  setField(s, CSRF_SECRET_KEY, text);
  return text;
}

/**
 * Internal, for the pipeline: nobody has used the session yet (no read, destroy or lock asked). If
 * it is sealed now, the commit has nothing to do and the response needs no header.
 */
export function isIdle(session: Session): boolean {
  const s = stateOfSession(session);
  return s.phase === "open" && s.doomed === null && !s.wantLock && s.lock === null;
}

/**
 * Internal, for the commit: seal the session (later changes throw {@link SessionCommittedError})
 * and describe what the request did. A second commit of the same session finds nothing to do.
 */
export function seal(session: Session): CommitInput | null {
  const s = stateOfSession(session);
  if (s.phase === "committed") return null;
  const touched = s.phase === "loaded" || s.doomed !== null;
  s.phase = "committed";
  if (!touched && s.lock === null) return UNTOUCHED;
  // Most requests only read: their commit input shares the empty set, list and key set.
  let set = UNTOUCHED.set;
  let del = UNTOUCHED.del;
  let changedKeys = UNTOUCHED.changedKeys;
  const changes = s.changes;
  if (changes !== null && changes.size > 0) {
    const setNow = newFields();
    const delNow: string[] = [];
    for (const [key, text] of changes) {
      if (text === null) delNow.push(key);
      else setNow[key] = text;
    }
    set = setNow;
    del = delNow;
    changedKeys = new Set(changes.keys());
  }
  return {
    touched,
    origin: s.snapshot,
    fields: s.fields,
    set,
    del,
    changedKeys,
    lifetime: s.lifetime,
    cycled: s.cycled,
    doomed: s.doomed,
    doomedFields: s.doomedFields,
    taken: s.taken ?? UNTOUCHED.taken,
    takenFrom: s.takenFrom,
    lock: s.lock,
  };
}

const UNTOUCHED: CommitInput = Object.freeze({
  touched: false,
  origin: null,
  fields: Object.freeze(newFields()),
  set: Object.freeze(newFields()),
  del: Object.freeze([]) as readonly string[],
  changedKeys: new Set<string>(),
  lifetime: null,
  cycled: false,
  doomed: null,
  doomedFields: null,
  taken: Object.freeze(newFields()),
  takenFrom: null,
  lock: null,
});

/** Internal, for the commit: the id the session now lives under. */
export function settle(session: Session, id: string | null): void {
  stateOfSession(session).committedId = id;
}

/** What `load()` returns once there is nothing to load: one settled promise for every call. */
const LOADED: Promise<void> = Promise.resolve();

/** The fields of a session with none yet, shared: {@link ownFields} copies it before a change. */
const NO_FIELDS: Readonly<Record<string, string>> = Object.freeze(newFields());

function checkKey(key: unknown): asserts key is string {
  if (typeof key !== "string" || key.length === 0 || key.length > 256) {
    throw new TypeError(
      "coatcheck: a session key must be a non-empty string of at most 256 characters",
    );
  }
}

/** The live view, made the session's own before a change. */
function ownFields(s: State): Record<string, string> {
  if (s.sharesSnapshot) {
    s.fields = Object.assign(newFields(), s.fields);
    s.sharesSnapshot = false;
  }
  return s.fields as Record<string, string>;
}

function changesOf(s: State): Map<string, string | null> {
  s.changes ??= new Map();
  return s.changes;
}

function setField(s: State, key: string, text: string): void {
  const fields = ownFields(s);
  const old = fields[key];
  fields[key] = text;
  // Not counted yet (NaN): the first insert counts the fields as they are then.
  if (!Number.isNaN(s.bytes))
    s.bytes += byteLength(text) - (old === undefined ? -byteLength(key) : byteLength(old));
  changesOf(s).set(key, text);
}

function dropField(s: State, key: string, record: boolean): void {
  const old = s.fields[key];
  if (old === undefined) return;
  if (!Number.isNaN(s.bytes)) s.bytes -= byteLength(key) + byteLength(old);
  delete ownFields(s)[key];
  if (record) changesOf(s).set(key, null);
}

/**
 * One request's view of a session. Nothing is read from the store until a method needs it, and
 * only what changed is written back at the end of the request (see the decision table in
 * `lifecycle.ts`). Values are copied in (serialised on `insert`) and out (parsed on `get`), so
 * mutating an object after inserting it, or after getting it, changes nothing until `insert`.
 *
 * Every change must happen before the response is sent: a change after the request was committed
 * throws {@link SessionCommittedError}. `util.inspect` and `console.log` never show the id.
 */
export class Session {
  readonly #state: State;
  readonly #engine: SessionEngine;
  #loading: Promise<void> | null = null;
  /**
   * @internal The request pipeline's exchange that opened this session (see `exchangeOf`). A
   * declared slot: a property added after construction costs every request an allocation.
   */
  [OPENED_BY]: unknown = undefined;

  static {
    stateOfSession = (session) => session.#state;
    engineOfSession = (session) => session.#engine;
  }

  /** @internal Created by {@link SessionEngine.open}. */
  constructor(engine: SessionEngine, incomingId: string | null) {
    this.#engine = engine;
    this.#state = new State(incomingId);
  }

  /**
   * The session id as the client will know it after this request: the stored id, or `null` for a
   * session that has not been saved yet (ids of new and cycled sessions are assigned at commit).
   */
  get id(): string | null {
    const s = this.#state;
    return s.committedId ?? (s.cycled ? null : (s.snapshot?.id ?? null));
  }

  /** Read a value; `undefined` when absent. Each call returns a fresh copy. */
  get<T = unknown>(key: string): Promise<T | undefined> {
    try {
      checkKey(key);
    } catch (error) {
      return Promise.reject(error);
    }
    // Not async: the first read of a request would suspend it, at the cost of an allocation.
    if (this.#state.phase === "open") {
      const loading = this.load();
      // An in-process store may have answered in this turn (see `#readNow`).
      if (this.#state.phase === "open") return loading.then(() => this.#value<T>(key));
    }
    return Promise.resolve(this.#value<T>(key));
  }

  /** The value under `key` in the loaded session, parsed; `undefined` when absent or unreadable. */
  #value<T>(key: string): T | undefined {
    const text = this.#state.fields[key];
    if (text === undefined) return undefined;
    try {
      return JSON.parse(text) as T;
    } catch (cause) {
      this.#engine.logger.warn(
        { err: cause },
        `session key "${key}" holds invalid JSON; treated as absent`,
      );
      return undefined;
    }
  }

  /**
   * Store a JSON value under `key`. Marks the key changed only when the value differs.
   *
   * @throws SessionValueError naming the key for a value JSON cannot bring back unchanged (`Map`,
   * `Set`, `Date`, `NaN`, `Infinity`, `undefined` inside an object or array, a class instance) or one
   * over `max_value_bytes`, `max_session_bytes` or `max_depth`.
   */
  async insert(key: string, value: unknown): Promise<void> {
    checkKey(key);
    this.#writable("insert");
    const text = encodeValue(key, value, this.#engine.config);
    if (this.#state.phase === "open") await this.load();
    this.#writable("insert");
    const s = this.#state;
    const old = s.fields[key];
    if (old === text) return;
    if (Number.isNaN(s.bytes)) s.bytes = fieldBytes(s.fields);
    const bytes =
      s.bytes + byteLength(text) - (old === undefined ? -byteLength(key) : byteLength(old));
    const limit = this.#engine.config.maxSessionBytes;
    if (bytes > limit) {
      throw new SessionValueError(
        key,
        `would make the session ${bytes} bytes, over max_session_bytes (${limit})`,
      );
    }
    setField(s, key, text);
  }

  /** Remove `key`. */
  async remove(key: string): Promise<void> {
    checkKey(key);
    this.#writable("remove");
    if (this.#state.phase === "open") await this.load();
    this.#writable("remove");
    dropField(this.#state, key, true);
  }

  /** True when the session holds no keys. */
  async isEmpty(): Promise<boolean> {
    if (this.#state.phase === "open") await this.load();
    for (const _ in this.#state.fields) return false;
    return true;
  }

  /** The keys the session holds. */
  async keys(): Promise<string[]> {
    if (this.#state.phase === "open") await this.load();
    return Object.keys(this.#state.fields);
  }

  /**
   * Give the session a new id, keeping its data; the old id stops working at once. Call it after
   * login (session fixation). The CSRF secret rotates with it.
   */
  async cycleId(): Promise<void> {
    this.#writable("cycleId");
    if (this.#state.phase === "open") await this.load();
    this.#writable("cycleId");
    const s = this.#state;
    if (s.snapshot !== null) s.cycled = true;
    s.rotated = true;
    dropField(s, CSRF_SECRET_KEY, true);
    await this.#resetViews("cycle");
  }

  /**
   * Delete the session: the record goes, the cookie is cleared. Later inserts start a new session,
   * and every typed, auth and flash view of it in this request starts from empty.
   */
  async destroy(): Promise<void> {
    this.#writable("destroy");
    const s = this.#state;
    if (s.wantLock && s.phase === "open") await this.load();
    this.#writable("destroy");
    const old = s.snapshot?.id ?? (s.phase === "open" ? s.incomingId : null);
    if (old !== null) {
      s.doomed = old;
      s.doomedFields = s.snapshot?.fields ?? null;
    }
    s.phase = "loaded";
    s.snapshot = null;
    s.fields = NO_FIELDS;
    s.sharesSnapshot = true;
    s.bytes = 0;
    s.changes = null;
    s.lifetime = null;
    s.cycled = false;
    s.rotated = true;
    await this.#resetViews("destroy");
  }

  /**
   * Override this session's lifetime (remember-me): `seconds` from now, at most 400 days; the cookie
   * gets the same Max-Age. `null` returns to the configured `expiry_secs`.
   */
  async setExpiry(seconds: number | null): Promise<void> {
    this.#writable("setExpiry");
    const maxAge = seconds === null ? undefined : clampLifetime(seconds);
    if (seconds !== null && maxAge === undefined) {
      throw new RangeError("coatcheck: setExpiry takes a positive number of seconds, or null");
    }
    if (this.#state.phase === "open") await this.load();
    this.#writable("setExpiry");
    this.#state.lifetime = { maxAgeSecs: maxAge, at: this.#engine.now() };
  }

  /**
   * Atomically take every key that starts with `prefix`: each one is returned to exactly one request
   * even when parallel requests race for it (flash messages). Results are sorted by key. If the
   * response turns out to be a 5xx, the taken keys are put back.
   */
  async consume(prefix: string): Promise<Array<{ key: string; value: unknown }>> {
    this.#writable("consume");
    if (this.#state.phase === "open") await this.load();
    this.#writable("consume");
    const s = this.#state;
    s.flashConsumed = true;
    const origin = s.snapshot;
    const prefixed = Object.keys(s.fields).filter((key) => key.startsWith(prefix));
    // Keys written in this very request are ours already; a stored copy they overwrote goes too.
    const ours = prefixed.filter((key) => typeof s.changes?.get(key) === "string");
    const fromStore = origin === null ? [] : prefixed.filter((key) => key in origin.fields);
    const got =
      fromStore.length > 0 && origin !== null
        ? await this.#take(origin.id, fromStore)
        : newFields();
    // Only now, after the store answered: a failed take leaves the session as it was.
    const out: Array<{ key: string; text: string }> = [];
    for (const key of ours) {
      const changes = changesOf(s);
      out.push({ key, text: changes.get(key) as string });
      changes.delete(key);
    }
    for (const key of prefixed) dropField(s, key, false);
    if (origin !== null && fromStore.length > 0) s.takenFrom = origin.id;
    for (const key of fromStore) {
      const text = got[key];
      if (text === undefined) continue;
      s.taken ??= newFields();
      s.taken[key] = text;
      if (!ours.includes(key)) out.push({ key, text });
    }
    out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const values: Array<{ key: string; value: unknown }> = [];
    for (const { key, text } of out) {
      try {
        values.push({ key, value: JSON.parse(text) });
      } catch {
        this.#engine.logger.warn({}, `session key "${key}" holds invalid JSON; dropped`);
      }
    }
    return values;
  }

  /**
   * Serialise this request with every other locked request on the same session (across processes on
   * Redis): for read-modify-write routes such as a cart. The lock is held until the end of the
   * request, after the save, and waits at most `lock_timeout_ms` (then 503). Call it before changing
   * anything; if the session was already read (e.g. by the CSRF check), it is read again under the
   * lock so the handler (and every view of the session) sees what the previous holder saved.
   * Adapters expose it as a route-level middleware (`sessionLock()`).
   */
  async lock(): Promise<void> {
    this.#writable("lock");
    const s = this.#state;
    if (s.lock !== null) return;
    if (
      (s.changes !== null && s.changes.size > 0) ||
      s.cycled ||
      s.doomed !== null ||
      s.lifetime !== null
    ) {
      throw new Error("coatcheck: lock() must be called before the session is changed");
    }
    if (s.phase === "open") {
      s.wantLock = true; // taken by the first load, before the read
      return;
    }
    // A session that is not stored yet has an id nobody else knows: nothing to serialise.
    if (s.snapshot === null) return;
    await this.#lock(s.snapshot.id);
    s.phase = "open";
    s.snapshot = null;
    s.fields = NO_FIELDS;
    s.sharesSnapshot = true;
    s.bytes = 0;
    if (this.#state.phase === "open") await this.load();
    await this.#resetViews("lock");
  }

  /** Load the record if not loaded yet. Every accessor calls it; call it yourself to load eagerly. */
  load(): Promise<void> {
    const s = this.#state;
    if (s.phase !== "open") return LOADED;
    if (this.#loading !== null) return this.#loading;
    const id = s.incomingId;
    if (id === null) {
      // No cookie: nothing to read, the session starts empty now.
      this.#arrive(null, null, 0);
      return LOADED;
    }
    // Chained, not awaited: a read is on every request's path, and each suspended async function
    // costs it an allocation.
    const locking = s.wantLock && s.lock === null;
    // An in-process store answers in this turn: settled (or failed, leaving the session open).
    const settled = locking ? undefined : this.#readNow(id);
    if (settled !== undefined) return settled;
    const loading = locking
      ? this.#lock(id).then(
          () => this.#read(id),
          (error: unknown) => this.#forget(error),
        )
      : this.#read(id);
    this.#loading = loading;
    return loading;
  }

  /** Never the id: a session printed into a log must not hand out the cookie. */
  [inspect.custom](): string {
    const s = this.#state;
    return `Session { id: ${s.snapshot || s.committedId ? "[redacted]" : "null"}, phase: ${s.phase} }`;
  }

  /** `JSON.stringify(session)` shows no id either. */
  toJSON(): { id: string | null; phase: string } {
    const s = this.#state;
    return { id: s.snapshot || s.committedId ? "[redacted]" : null, phase: s.phase };
  }

  /** Read record `id` from the store; a failed read leaves the session open, to be tried again. */
  #read(id: string): Promise<void> {
    const now = this.#engine.now();
    return this.#engine.guarded.load(id, now).then(
      (record) => this.#found(id, record, now),
      (error: unknown) => this.#forget(error),
    );
  }

  /**
   * Read record `id` from an in-process store in this turn: the settled load, or `undefined` when
   * the store answers only through {@link Session.load}'s promise. A failure leaves the session
   * open, as `#read` does.
   */
  #readNow(id: string): Promise<void> | undefined {
    const now = this.#engine.now();
    try {
      const record = this.#engine.guarded.loadNow(id, now);
      if (record === undefined) return undefined;
      this.#found(id, record, now);
    } catch (error) {
      return Promise.reject(error);
    }
    return LOADED;
  }

  /** The store answered `record` for `id` (read at `now`): take it if it can be served. */
  #found(id: string, record: StoredSession | null, now: number): void {
    const bytes = record === null ? null : this.#usable(id, record.meta, record.fields, now);
    this.#arrive(id, bytes === null ? null : record, bytes ?? 0);
  }

  /** A load failed: the next access tries again. */
  #forget(error: unknown): never {
    this.#loading = null;
    throw error;
  }

  /** The load is done: `record` (of `bytes` bytes) from the store under `id`, or none. */
  #arrive(id: string | null, record: StoredSession | null, bytes: number): void {
    const s = this.#state;
    this.#loading = null;
    if (id !== null) {
      if (record !== null) {
        // Copy once: the store may hand out its own objects, and the view must inherit nothing;
        // a store whose loads are fresh objects that inherit nothing is taken at its word.
        // The live view shares the snapshot's object until the first change.
        const fields =
          this.#engine.store.loadsFresh === true && inheritsNothing(record.fields)
            ? record.fields
            : Object.assign(newFields(), record.fields);
        s.snapshot = { id, fields, meta: record.meta };
        s.fields = fields;
        s.sharesSnapshot = true;
        s.bytes = bytes;
      }
      const found = s.snapshot !== null;
      // Checked first: the message closures cost an allocation per read even when nobody listens.
      if (listening(EVENTS.loaded)) publish(EVENTS.loaded, () => ({ session: idHash(id), found }));
      // A well-formed id the store does not know: expired, revoked, or guessed.
      if (!found && listening(EVENTS.cookieRejected))
        publish(EVENTS.cookieRejected, () => ({ reason: "unknown" }));
    }
    if (s.phase === "open") s.phase = "loaded";
    s.loaded = true;
  }

  /**
   * The record's size when it can be served (`NaN`: not counted yet, see `measureFields`), else
   * `null`: expired, or corrupt (impossible metadata, over a read limit), which is logged once and
   * deleted.
   */
  #usable(
    id: string,
    meta: SessionMeta,
    fields: Record<string, string>,
    now: number,
  ): number | null {
    if (meta.absoluteAt !== 0 && meta.absoluteAt <= now) return null;
    const measured = measureFields(fields, this.#engine.config);
    const problem = metaProblem(meta, now) ?? measured.problem;
    if (problem === null) return measured.bytes;
    this.#engine.logger.warn(
      {},
      `a stored session is corrupt (${problem}); it was deleted and the request starts a new session`,
    );
    this.#engine.guarded.destroy(id).catch(() => {
      // Logged by the guard; the next read finds it again.
    });
    return null;
  }

  /** `take`, and when its reply comes too late to show the keys, put them back. */
  async #take(id: string, keys: readonly string[]): Promise<Record<string, string>> {
    const store = this.#engine.guarded;
    try {
      return await store.take(id, keys);
    } catch (error) {
      if (error instanceof OperationTimeoutError) {
        const now = this.#engine.now();
        error.late
          .then(async (late) => {
            const taken = late as Record<string, string>;
            for (const _ in taken) {
              await store.write(id, { set: taken, del: [] }, "update", now);
              return;
            }
          })
          .catch(() => {
            // Logged by the guard.
          });
      }
      throw error;
    }
  }

  async #lock(id: string): Promise<void> {
    const s = this.#state;
    const engine = this.#engine;
    const started = engine.monotonic();
    const limit = engine.config.lockTimeoutMs;
    const ttl = limit + engine.config.operationTimeoutMs * 4 + 30_000;
    // The engine makes the token, so a lock taken by a late reply can still be released with it.
    const token = randomBytes(16).toString("base64url");
    const release = () => engine.guarded.releaseLock(id, token).catch(() => {});
    let pause = 2;
    for (;;) {
      let held: boolean;
      try {
        held = await engine.guarded.acquireLock(id, token, ttl);
      } catch (error) {
        if (error instanceof OperationTimeoutError) {
          release();
          error.late.then(
            (late) => {
              if (late === true) release();
            },
            () => {},
          );
        }
        throw error;
      }
      const waited = engine.monotonic() - started;
      if (held) {
        s.lock = { id, token };
        if (pause > 2) publish(EVENTS.lockWait, () => ({ session: idHash(id), waitedMs: waited }));
        return;
      }
      if (waited >= limit) {
        publish(EVENTS.lockTimeout, () => ({ session: idHash(id), waitedMs: waited }));
        throw new SessionLockTimeoutError(Math.round(waited));
      }
      await new Promise((r) => setTimeout(r, Math.min(pause, limit - waited)));
      pause = Math.min(pause * 2, 50);
    }
  }

  async #resetViews(reason: ViewReset): Promise<void> {
    const views = this.#state.views;
    if (views === null) return;
    for (const view of [...views.values()]) await view.reset(reason);
  }

  #writable(operation: string): void {
    if (this.#state.phase === "committed") throw new SessionCommittedError(operation);
  }
}
