import type { SessionEngine } from "./engine.js";
import { SessionLockTimeoutError } from "./errors.js";
import { clampLifetime, newMeta, type SessionMeta } from "./expiry.js";

/** Session key holding the CSRF secret; removed on `cycleId` and `destroy` so the secret rotates. */
export const CSRF_SECRET_KEY = "_csrf_token";

/** Request-scoped state that the end-of-request decision table reads. Internal. */
export interface SessionState {
  /** Well-formed id from the request cookie, or null. */
  incomingId: string | null;
  /** True once the record was looked up (or the session was reset by destroy). */
  loaded: boolean;
  /** Id of the stored record this session came from, or null for a new session. */
  originId: string | null;
  /** Live view: key → JSON text, changes applied. Null prototype. */
  fields: Record<string, string>;
  /** Keys changed in this request: JSON text, or null for a removal. */
  changes: Map<string, string | null>;
  meta: SessionMeta | null;
  metaChanged: boolean;
  /** Lifetime override requested for a session that has no metadata yet. */
  pendingMaxAge: number | undefined;
  /** The origin must move to a new id. */
  cycled: boolean;
  /** Ids to delete at the end of the request (destroy). */
  doomed: string | null;
  /** Keys taken from the store by `consume`, restored if the response is a 5xx. */
  taken: Record<string, string>;
  wantLock: boolean;
  lockToken: string | null;
  /** Id the lock was taken for. */
  lockedId: string | null;
  /** The id the session was committed under, once known. */
  committedId: string | null;
}

const STATE = Symbol("coatcheck.session.state");

/** Internal accessor for the decision table. Not part of the public API. */
export function stateOf(session: Session): SessionState {
  return session[STATE];
}

let engineOfSession: (session: Session) => SessionEngine;

/**
 * Internal: the engine a session belongs to, so helpers built on a session (typed sessions, auth,
 * flash) use its clock and logger. Not part of the public API.
 */
export function engineOf(session: Session): SessionEngine {
  return engineOfSession(session);
}

function emptyFields(): Record<string, string> {
  return Object.create(null) as Record<string, string>;
}

function checkKey(key: unknown): asserts key is string {
  if (typeof key !== "string" || key.length === 0 || key.length > 256) {
    throw new TypeError(
      "coatcheck: a session key must be a non-empty string of at most 256 characters",
    );
  }
}

/**
 * One request's view of a session. Nothing is read from the store until a method needs it, and
 * only what changed is written back at the end of the request (see the decision table in
 * `lifecycle.ts`). Values are copied in (serialised on `insert`) and out (parsed on `get`), so
 * mutating an object after inserting it, or after getting it, changes nothing until `insert`.
 */
export class Session {
  /** @internal */
  readonly [STATE]: SessionState;
  readonly #engine: SessionEngine;
  #loading: Promise<void> | null = null;

  static {
    engineOfSession = (session) => session.#engine;
  }

  /** @internal Created by {@link SessionEngine.open}. */
  constructor(engine: SessionEngine, incomingId: string | null) {
    this.#engine = engine;
    this[STATE] = {
      incomingId,
      loaded: false,
      originId: null,
      fields: emptyFields(),
      changes: new Map(),
      meta: null,
      metaChanged: false,
      pendingMaxAge: undefined,
      cycled: false,
      doomed: null,
      taken: emptyFields(),
      wantLock: false,
      lockToken: null,
      lockedId: null,
      committedId: null,
    };
  }

  /**
   * The session id as the client will know it after this request: the stored id, or `null` for a
   * session that has not been saved yet (ids of new and cycled sessions are assigned at commit).
   */
  get id(): string | null {
    const s = this[STATE];
    return s.committedId ?? (s.cycled ? null : s.originId);
  }

  /** Read a value; `undefined` when absent. Each call returns a fresh copy. */
  async get<T = unknown>(key: string): Promise<T | undefined> {
    checkKey(key);
    await this.load();
    const text = this[STATE].fields[key];
    if (text === undefined) return undefined;
    try {
      return JSON.parse(text) as T;
    } catch (cause) {
      this.#engine.logger.warn(
        `[coatcheck] session key "${key}" holds invalid JSON; treated as absent`,
        cause,
      );
      return undefined;
    }
  }

  /** Store a JSON-serialisable value under `key`. Marks the key changed only when the value differs. */
  async insert(key: string, value: unknown): Promise<void> {
    checkKey(key);
    const text = JSON.stringify(value);
    if (text === undefined)
      throw new TypeError(`coatcheck: session value for "${key}" is not JSON-serialisable`);
    await this.load();
    const s = this[STATE];
    if (s.fields[key] === text) return;
    s.fields[key] = text;
    s.changes.set(key, text);
  }

  /** Remove `key`. */
  async remove(key: string): Promise<void> {
    checkKey(key);
    await this.load();
    this.#drop(key);
  }

  /** True when the session holds no keys. */
  async isEmpty(): Promise<boolean> {
    await this.load();
    for (const _ in this[STATE].fields) return false;
    return true;
  }

  /** The keys the session holds. */
  async keys(): Promise<string[]> {
    await this.load();
    return Object.keys(this[STATE].fields);
  }

  /**
   * Give the session a new id, keeping its data; the old id stops working at once. Call it after
   * login (session fixation). The CSRF secret rotates with it.
   */
  async cycleId(): Promise<void> {
    await this.load();
    const s = this[STATE];
    if (s.originId !== null) s.cycled = true;
    this.#drop(CSRF_SECRET_KEY);
    noteUsage(this, "rotated");
  }

  /** Delete the session: the record goes, the cookie is cleared. Later inserts start a new session. */
  async destroy(): Promise<void> {
    const s = this[STATE];
    if (s.wantLock && !s.loaded) await this.load();
    const old = s.originId ?? (s.loaded ? null : s.incomingId);
    if (old !== null) s.doomed = old;
    noteUsage(this, "rotated");
    s.loaded = true;
    s.originId = null;
    s.fields = emptyFields();
    s.changes.clear();
    s.meta = null;
    s.metaChanged = false;
    s.pendingMaxAge = undefined;
    s.cycled = false;
  }

  /**
   * Override this session's lifetime (remember-me): `seconds` from now, at most 400 days; the cookie
   * gets the same Max-Age. `null` returns to the configured `expiry_secs`.
   */
  async setExpiry(seconds: number | null): Promise<void> {
    await this.load();
    const s = this[STATE];
    const maxAge = seconds === null ? undefined : clampLifetime(seconds);
    if (seconds !== null && maxAge === undefined) {
      throw new RangeError("coatcheck: setExpiry takes a positive number of seconds, or null");
    }
    if (s.meta === null) {
      s.pendingMaxAge = maxAge;
      return;
    }
    const now = this.#engine.now();
    s.meta = { ...newMeta(this.#engine.policy, now, maxAge), createdAt: s.meta.createdAt };
    s.metaChanged = true;
  }

  /**
   * Atomically take every key that starts with `prefix`: each one is returned to exactly one request
   * even when parallel requests race for it (flash messages). Results are sorted by key. If the
   * response turns out to be a 5xx, the taken keys are put back.
   */
  async consume(prefix: string): Promise<Array<{ key: string; value: unknown }>> {
    await this.load();
    const s = this[STATE];
    const stored: string[] = [];
    const out: Array<{ key: string; text: string }> = [];
    for (const key of Object.keys(s.fields)) {
      if (!key.startsWith(prefix)) continue;
      const change = s.changes.get(key);
      if (change !== undefined && change !== null) {
        // Written in this very request: it is ours already.
        out.push({ key, text: change });
        s.changes.delete(key);
        delete s.fields[key];
      } else {
        stored.push(key);
      }
    }
    if (stored.length > 0 && s.originId !== null) {
      const got = await this.#engine.guard(() =>
        this.#engine.store.take(s.originId as string, stored),
      );
      for (const key of stored) {
        delete s.fields[key];
        const text = got[key];
        if (text === undefined) continue;
        s.taken[key] = text;
        out.push({ key, text });
      }
    }
    out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const values: Array<{ key: string; value: unknown }> = [];
    for (const { key, text } of out) {
      try {
        values.push({ key, value: JSON.parse(text) });
      } catch {
        this.#engine.logger.warn(`[coatcheck] session key "${key}" holds invalid JSON; dropped`);
      }
    }
    return values;
  }

  /**
   * Serialise this request with every other locked request on the same session (across processes on
   * Redis): for read-modify-write routes such as a cart. The lock is held until the end of the
   * request, after the save, and waits at most `lock_timeout_ms` (then 503). Call it before changing
   * anything; if the session was already read (e.g. by the CSRF check), it is read again under the
   * lock so the handler sees what the previous holder saved. Adapters expose it as a route-level
   * middleware (`sessionLock()`).
   */
  async lock(): Promise<void> {
    const s = this[STATE];
    if (s.lockToken !== null) return;
    if (s.changes.size > 0 || s.cycled || s.doomed !== null) {
      throw new Error("coatcheck: lock() must be called before the session is changed");
    }
    if (!s.loaded) {
      s.wantLock = true; // taken by the first load, before the read
      return;
    }
    // A session that is not stored yet has an id nobody else knows: nothing to serialise.
    if (s.originId === null) return;
    await this.#lock(s.originId);
    s.loaded = false;
    s.originId = null;
    s.fields = emptyFields();
    s.meta = null;
    await this.load();
  }

  /** Load the record if not loaded yet. Every accessor calls it; call it yourself to load eagerly. */
  load(): Promise<void> {
    if (this[STATE].loaded) return Promise.resolve();
    this.#loading ??= this.#load().finally(() => {
      this.#loading = null;
    });
    return this.#loading;
  }

  async #load(): Promise<void> {
    const s = this[STATE];
    const engine = this.#engine;
    const id = s.incomingId;
    if (id !== null) {
      if (s.wantLock && s.lockToken === null) await this.#lock(id);
      const now = engine.now();
      const record = await engine.guard(() => engine.store.load(id, now));
      if (record !== null && (record.meta.absoluteAt === 0 || record.meta.absoluteAt > now)) {
        s.originId = id;
        s.meta = record.meta;
        // Copy: the store may hand out its own objects, and the view must have a null prototype.
        s.fields = Object.assign(emptyFields(), record.fields);
      }
    }
    s.loaded = true;
  }

  async #lock(id: string): Promise<void> {
    const s = this[STATE];
    const engine = this.#engine;
    const started = engine.monotonic();
    const limit = engine.config.lockTimeoutMs;
    const ttl = limit + engine.config.operationTimeoutMs * 4 + 30_000;
    let pause = 2;
    for (;;) {
      const token = await engine.guard(() => engine.store.tryLock(id, ttl));
      if (token !== null) {
        s.lockToken = token;
        s.lockedId = id;
        return;
      }
      const waited = engine.monotonic() - started;
      if (waited >= limit) throw new SessionLockTimeoutError(Math.round(waited));
      await new Promise((r) => setTimeout(r, Math.min(pause, limit - waited)));
      pause = Math.min(pause * 2, 50);
    }
  }

  #drop(key: string): void {
    const s = this[STATE];
    if (s.fields[key] === undefined) return;
    delete s.fields[key];
    s.changes.set(key, null);
  }
}

// usageOf: provisional, replaced by the core redesign
/** What this request did with its session, for the response's cache headers. */
export interface SessionUsage {
  loaded: boolean;
  tokenRendered: boolean;
  flashConsumed: boolean;
  rotated: boolean;
}
const usage = new WeakMap<Session, Omit<SessionUsage, "loaded">>();
export function noteUsage(session: Session, what: "tokenRendered" | "flashConsumed" | "rotated") {
  const seen = usage.get(session) ?? { tokenRendered: false, flashConsumed: false, rotated: false };
  seen[what] = true;
  usage.set(session, seen);
}
export function usageOf(session: Session): SessionUsage {
  const seen = usage.get(session);
  return {
    loaded: session[STATE].loaded,
    tokenRendered: seen?.tokenRendered ?? false,
    flashConsumed: seen?.flashConsumed ?? false,
    rotated: seen?.rotated ?? false,
  };
}
