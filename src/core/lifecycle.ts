import { serializeCookie } from "./cookie.js";
import type { SessionEngine } from "./engine.js";
import { EVENTS, idHash, publish } from "./events.js";
import { cookieMaxAge, newMeta, type SessionMeta } from "./expiry.js";
import { generateId } from "./id.js";
import { type CommitInput, type Session, seal, settle } from "./session.js";
import { newFields, OperationTimeoutError, type SessionWrite } from "./store.js";
import { confirmRestored, reindex } from "./user-index.js";

/**
 * The end-of-request decision table (DESIGN §2, §9). All policy about what reaches the store and
 * what the response's cookie says lives here, in one ordered table: the first row that matches
 * wins. {@link decide} is a pure function of the facts; {@link commit} runs the row's store action
 * and then does exactly what its cookie column says.
 */

/** What we know about a session when its response status is known. */
export interface Facts {
  /** The response is a 5xx: nothing is saved. */
  failed: boolean;
  /** The handler (or the CSRF check) read the session, or destroyed it. */
  loaded: boolean;
  /** The session came from a stored record. */
  stored: boolean;
  /** `destroy()` was called on a stored (or cookie-named) session. */
  destroyed: boolean;
  /** `cycleId()` was called on a stored session. */
  cycled: boolean;
  /** Any key changed, or the lifetime was overridden. */
  changed: boolean;
  /** The session holds no keys now. */
  empty: boolean;
  /**
   * Learnt from the store while saving: the record was gone (destroyed or cycled by a parallel
   * request, or expired) when this request's update or claim reached it.
   */
  vanished: boolean;
}

/** What to do with the store. */
export type Action =
  | "nothing"
  | "restore-taken"
  | "delete"
  | "create"
  | "replace"
  | "move"
  | "discard-new"
  | "update";

/**
 * What to do with the cookie. A response clears the cookie only for its own destroy or emptying:
 * cookies are cleared by name, so a clearing response that arrives after a parallel login response
 * would sign the user out.
 */
export type CookieInstruction = "unchanged" | "set" | "clear" | "set if lifetime changed";

export interface Row {
  when: string;
  test: (f: Facts) => boolean;
  action: Action;
  cookie: CookieInstruction;
}

/** The table itself. The README shows it verbatim (`npm run docs:tables` prints it). */
export const DECISION_TABLE: readonly Row[] = [
  { when: "response is 5xx", test: (f) => f.failed, action: "restore-taken", cookie: "unchanged" },
  { when: "session never used", test: (f) => !f.loaded, action: "nothing", cookie: "unchanged" },
  {
    when: "destroyed, nothing new written",
    test: (f) => f.destroyed && f.empty,
    action: "delete",
    cookie: "clear",
  },
  {
    when: "destroyed, then new data written",
    test: (f) => f.destroyed,
    action: "replace",
    cookie: "set",
  },
  {
    when: "new session, still empty",
    test: (f) => !f.stored && f.empty,
    action: "nothing",
    cookie: "unchanged",
  },
  { when: "new session with data", test: (f) => !f.stored, action: "create", cookie: "set" },
  {
    when: "stored session emptied",
    // By this request's own changes: keys taken by `consume` are already gone from the store, and
    // deleting the record for that alone would also delete what a parallel request just added.
    test: (f) => f.empty && f.changed,
    action: "delete",
    cookie: "clear",
  },
  {
    when: "id cycled, but the old record was gone",
    test: (f) => f.cycled && f.vanished,
    action: "discard-new",
    cookie: "unchanged",
  },
  { when: "stored session, id cycled", test: (f) => f.cycled, action: "move", cookie: "set" },
  {
    when: "changed, but the record was gone",
    test: (f) => f.changed && f.vanished,
    action: "nothing",
    cookie: "unchanged",
  },
  {
    when: "stored session changed",
    test: (f) => f.changed,
    action: "update",
    cookie: "set if lifetime changed",
  },
  { when: "stored session untouched", test: () => true, action: "nothing", cookie: "unchanged" },
];

function isEmpty(fields: Readonly<Record<string, string>>): boolean {
  for (const _ in fields) return false;
  return true;
}

export function factsOf(input: CommitInput, status: number): Facts {
  return {
    failed: status >= 500,
    loaded: input.touched,
    stored: input.origin !== null,
    destroyed: input.doomed !== null,
    cycled: input.cycled,
    changed: input.changedKeys.size > 0 || input.lifetime !== null,
    empty: isEmpty(input.fields),
    vanished: false,
  };
}

/** The first matching row. */
export function decide(facts: Facts): Row {
  for (const row of DECISION_TABLE) if (row.test(facts)) return row;
  throw new Error("unreachable: the decision table ends with a catch-all row");
}

/** Headers the adapter adds to the response. */
export interface CommitResult {
  /** A Set-Cookie value, when the cookie is set or cleared. */
  setCookie?: string;
  /** The row that decided, for logging and tests. */
  action: Action;
}

/** What a store action did: the record the cookie names now, or that the record was gone. */
type Outcome =
  | { kind: "done"; id: string | null; meta: SessionMeta | null }
  | { kind: "vanished"; newId: string | null };

const UNTOUCHED: CommitResult = Object.freeze({ action: "nothing" });
const DONE: Outcome = { kind: "done", id: null, meta: null };

/**
 * End a request's session (see {@link SessionEngine.commit}): the result as a promise, whatever
 * work the commit has.
 */
export function commit(
  engine: SessionEngine,
  session: Session,
  status: number,
  overHttps?: () => boolean,
): Promise<CommitResult> {
  try {
    return Promise.resolve(commitNow(engine, session, status, overHttps));
  } catch (error) {
    return Promise.reject(error);
  }
}

/**
 * {@link commit} without a promise when the commit has no store work: a session nobody touched,
 * or a read that changed nothing (most requests that use their session), so the request pipeline
 * answers them in the same turn. Throws what the commit throws before any store work.
 */
export function commitNow(
  engine: SessionEngine,
  session: Session,
  status: number,
  overHttps?: () => boolean,
): CommitResult | Promise<CommitResult> {
  const input = seal(session);
  if (input === null) return UNTOUCHED;
  // Rows 1-2 for a session nobody touched, without building the facts: most requests of an app
  // never read their session, and they should cost nothing here.
  if (!input.touched) {
    return input.lock === null
      ? UNTOUCHED
      : commitWithStore(engine, session, input, null, null, overHttps);
  }
  const facts = factsOf(input, status);
  const row = decide(facts);
  if (row.action !== "nothing" || input.lock !== null)
    return commitWithStore(engine, session, input, facts, row, overHttps);
  // A read that changed nothing: no store work, no event to announce, no suspended function.
  settle(session, null);
  return cookieFor(engine, row, input, DONE, engine.now(), overHttps);
}

/**
 * The commit of a session with store work to do or a lock to release afterwards; `facts` and
 * `first` (the row they decided) are null for an untouched session, which only releases its lock.
 */
async function commitWithStore(
  engine: SessionEngine,
  session: Session,
  input: CommitInput,
  facts: Facts | null,
  first: Row | null,
  overHttps: (() => boolean) | undefined,
): Promise<CommitResult> {
  try {
    if (facts === null || first === null) return UNTOUCHED;
    const now = engine.now();
    let row = first;
    // A read that changed nothing (most requests that use their session) has no store work.
    let outcome =
      row.action === "nothing" ? DONE : await execute(engine, input, row.action, now, null);
    if (outcome.kind === "done" && row.action !== "nothing") {
      // The user index follows sign-ins, sign-outs and id changes; a revoked session stays gone.
      const done = { action: row.action, id: outcome.id, meta: outcome.meta };
      if ((await reindex(engine, input, done, now)) === "revoked") {
        outcome = { kind: "vanished", newId: row.action === "move" ? outcome.id : null };
      }
    }
    if (outcome.kind === "vanished") {
      row = decide({ ...facts, vanished: true });
      outcome = await execute(engine, input, row.action, now, outcome.newId);
    }
    if (outcome.kind === "done") settle(session, outcome.id);
    announce(row.action, input, outcome);
    return cookieFor(engine, row, input, outcome, now, overHttps);
  } finally {
    if (input.lock !== null) {
      const { id, token } = input.lock;
      await engine.guarded.releaseLock(id, token).catch(() => {
        // Logged by the guard; the lock's TTL frees it.
      });
    }
  }
}

/** Tell subscribers of coatcheck's events what the commit did (free when nobody listens). */
function announce(action: Action, input: CommitInput, outcome: Outcome): void {
  if (outcome.kind !== "done") return;
  const to = outcome.id;
  switch (action) {
    case "create":
    case "replace":
      if (to !== null) publish(EVENTS.created, () => ({ session: idHash(to) }));
      return;
    case "move": {
      const from = input.origin?.id;
      if (to !== null && from !== undefined)
        publish(EVENTS.cycled, () => ({ from: idHash(from), to: idHash(to) }));
      return;
    }
    case "update":
      if (to !== null) publish(EVENTS.saved, () => ({ session: idHash(to), action }));
      return;
    case "delete": {
      const gone = input.doomed ?? input.origin?.id;
      if (gone !== undefined && gone !== null)
        publish(EVENTS.destroyed, () => ({ session: idHash(gone) }));
      return;
    }
    default:
      return;
  }
}

/** The cookie column, executed. */
function cookieFor(
  engine: SessionEngine,
  row: Row,
  input: CommitInput,
  outcome: Outcome,
  now: number,
  overHttps: (() => boolean) | undefined,
): CommitResult {
  switch (row.cookie) {
    case "unchanged":
      return row.action === "nothing" ? UNTOUCHED : { action: row.action };
    case "clear":
      return cookieResult(engine, row, "", 0, overHttps);
    case "set":
      return setCookie(engine, row, outcome, now, overHttps);
    case "set if lifetime changed":
      return input.lifetime === null
        ? { action: row.action }
        : setCookie(engine, row, outcome, now, overHttps);
  }
}

/** A result that sets the session cookie to the record the outcome saved. */
function setCookie(
  engine: SessionEngine,
  row: Row,
  outcome: Outcome,
  now: number,
  overHttps: (() => boolean) | undefined,
): CommitResult {
  if (outcome.kind !== "done" || outcome.id === null || outcome.meta === null) {
    throw new Error(`unreachable: row "${row.when}" sets a cookie but saved no record`);
  }
  const maxAge = cookieMaxAge(engine.policy, outcome.meta, now);
  return cookieResult(engine, row, outcome.id, maxAge, overHttps);
}

/** The commit's result with a Set-Cookie for `id` (`""` with max-age 0 clears the cookie). */
function cookieResult(
  engine: SessionEngine,
  row: Row,
  id: string,
  maxAge: number | undefined,
  overHttps: (() => boolean) | undefined,
): CommitResult {
  const attributes = cookieAttributes(engine, overHttps);
  return {
    setCookie: serializeCookie(engine.config.cookieName, id, attributes, maxAge),
    action: row.action,
  };
}

/** The metadata this request's lifetime override gives a record created at `createdAt`. */
function lifetimeMeta(engine: SessionEngine, input: CommitInput, createdAt: number | null) {
  if (input.lifetime === null) return null;
  const meta = newMeta(engine.policy, input.lifetime.at, input.lifetime.maxAgeSecs);
  return createdAt === null ? meta : { ...meta, createdAt };
}

async function execute(
  engine: SessionEngine,
  input: CommitInput,
  action: Action,
  now: number,
  newId: string | null,
): Promise<Outcome> {
  const store = engine.guarded;
  switch (action) {
    case "nothing":
      return DONE;
    case "restore-taken": {
      // Back where they were taken from, with the lifetime the store has (no metadata: a failed
      // request's setExpiry must not be persisted).
      if (input.takenFrom !== null && !isEmpty(input.taken)) {
        const from = input.takenFrom;
        await store.write(from, { set: input.taken, del: [] }, "update", now).catch(() => {});
      }
      return DONE;
    }
    case "delete": {
      const id = input.doomed ?? input.origin?.id ?? null;
      if (id !== null) await store.destroy(id);
      return DONE;
    }
    case "replace":
      await store.destroy(input.doomed as string);
      return create(engine, input.fields, fresh(engine, input, now), now);
    case "create":
      return create(engine, input.fields, fresh(engine, input, now), now);
    case "move":
      return move(engine, input, now);
    case "discard-new":
      if (newId !== null) await store.destroy(newId).catch(() => {});
      return DONE;
    case "update": {
      const origin = input.origin as NonNullable<CommitInput["origin"]>;
      const meta = lifetimeMeta(engine, input, origin.meta.createdAt);
      // A store may keep or change what it is given: the input's empty parts are shared (frozen),
      // so a lifetime-only write gets parts of its own.
      const write: SessionWrite = {
        set: Object.isFrozen(input.set) ? newFields() : input.set,
        del: Object.isFrozen(input.del) ? [] : input.del,
        loaded: origin.meta,
      };
      if (meta !== null) write.meta = meta;
      if (!(await store.write(origin.id, write, "update", now))) {
        return { kind: "vanished", newId: null };
      }
      return { kind: "done", id: origin.id, meta };
    }
  }
}

function fresh(engine: SessionEngine, input: CommitInput, now: number): SessionMeta {
  return lifetimeMeta(engine, input, null) ?? newMeta(engine.policy, now);
}

/**
 * Create a record under a new id. A create whose reply is late may have run: the id is never handed
 * out, and when the late reply says it was created, the orphan is deleted.
 */
async function create(
  engine: SessionEngine,
  fields: Readonly<Record<string, string>>,
  meta: SessionMeta,
  now: number,
): Promise<Outcome & { kind: "done" }> {
  const store = engine.guarded;
  const write: SessionWrite = {
    set: Object.assign(newFields(), fields),
    del: [],
    meta,
  };
  // A collision of 192-bit ids is not expected in the life of the universe; retry once anyway
  // rather than ever overwrite another session.
  for (let attempt = 0; attempt < 2; attempt++) {
    const id = generateId();
    let created: boolean;
    try {
      created = await store.write(id, write, "create", now);
    } catch (error) {
      if (error instanceof OperationTimeoutError) {
        error.late.then(
          (late) => {
            if (late === true) store.destroy(id).catch(() => {});
          },
          () => {},
        );
      }
      throw error;
    }
    if (created) return { kind: "done", id, meta };
  }
  throw new Error("coatcheck: could not allocate a session id");
}

/**
 * `cycleId`: create the new record first (with the session as this request knows it), then claim
 * the old one and merge into the new record what a parallel request changed meanwhile. Every step
 * can time out without losing the session:
 * - the create: the old record is untouched; the request answers 503;
 * - the claim: when its late reply brings the old record, it is written back under the old id and
 *   the new record deleted, so the old cookie still works after the 503;
 * - the merge: the old record is gone, so the new cookie must be sent; only the keys a parallel
 *   request wrote in between can be missing.
 */
async function move(engine: SessionEngine, input: CommitInput, now: number): Promise<Outcome> {
  const store = engine.guarded;
  const origin = input.origin as NonNullable<CommitInput["origin"]>;
  const chosen = lifetimeMeta(engine, input, origin.meta.createdAt);
  const created = await create(engine, input.fields, chosen ?? origin.meta, now);
  const newId = created.id as string;
  let claimed: Awaited<ReturnType<typeof store.claim>>;
  try {
    claimed = await store.claim(origin.id, now);
  } catch (error) {
    const late = error instanceof OperationTimeoutError ? error.late : Promise.resolve(null);
    late
      .then(async (record) => {
        const old = record as Awaited<ReturnType<typeof store.claim>>;
        if (old !== null) {
          await store.write(origin.id, { set: old.fields, del: [], meta: old.meta }, "create", now);
          await confirmRestored(engine, old.fields, origin.id, old.meta, now);
        }
        await store.destroy(newId);
      })
      .catch(() => {
        // Logged by the guard.
      });
    throw error;
  }
  if (claimed === null) return { kind: "vanished", newId };
  const set = newFields();
  const del: string[] = [];
  for (const key in claimed.fields) {
    const text = claimed.fields[key] as string;
    if (!input.changedKeys.has(key) && origin.fields[key] !== text) set[key] = text;
  }
  for (const key in origin.fields) {
    if (!input.changedKeys.has(key) && claimed.fields[key] === undefined) del.push(key);
  }
  const meta = chosen ?? claimed.meta;
  const metaMoved = chosen === null && JSON.stringify(claimed.meta) !== JSON.stringify(origin.meta);
  if (!isEmpty(set) || del.length > 0 || metaMoved) {
    const write: SessionWrite = { set, del };
    if (metaMoved) write.meta = meta;
    await store.write(newId, write, "update", now).catch(() => {
      engine.logger.warn(
        {},
        "cycleId: keys a parallel request wrote just before the new id was made may be missing (the store did not answer in time)",
      );
    });
  }
  return { kind: "done", id: newId, meta };
}

/** `secure = "auto"` asks how this request came (unknown = not over HTTPS). */
function cookieAttributes(engine: SessionEngine, overHttps: (() => boolean) | undefined) {
  const c = engine.config;
  return {
    path: c.cookiePath,
    domain: c.cookieDomain,
    secure: c.secure === "auto" ? (overHttps?.() ?? false) : c.secure,
    httpOnly: c.httpOnly,
    sameSite: c.sameSite,
  };
}
