import { serializeCookie } from "./cookie.js";
import type { SessionEngine } from "./engine.js";
import { cookieMaxAge, newMeta } from "./expiry.js";
import { generateId } from "./id.js";
import { type Session, type SessionState, stateOf } from "./session.js";
import type { SessionWrite } from "./store.js";

/**
 * The end-of-request decision table (DESIGN §2). All policy about what reaches the store and what
 * the response's cookie says lives here, in one ordered table: the first row that matches wins.
 */

/** What we know about a session when its response status is known. */
export interface Facts {
  /** The response is a 5xx: nothing is saved. */
  failed: boolean;
  /** The handler (or the CSRF check) read the session. */
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
}

/** What to do. */
export type Action =
  | "nothing"
  | "restore-taken"
  | "delete"
  | "create"
  | "replace"
  | "move"
  | "update";

export interface Row {
  when: string;
  test: (f: Facts) => boolean;
  action: Action;
  cookie: "unchanged" | "set" | "clear" | "set if lifetime changed";
}

/** The table itself. The README shows it verbatim (`npm run docs:table` prints it). */
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
  { when: "stored session, id cycled", test: (f) => f.cycled, action: "move", cookie: "set" },
  {
    when: "stored session changed",
    test: (f) => f.changed,
    action: "update",
    cookie: "set if lifetime changed",
  },
  { when: "stored session untouched", test: () => true, action: "nothing", cookie: "unchanged" },
];

function isEmpty(fields: Record<string, string>): boolean {
  for (const _ in fields) return false;
  return true;
}

export function factsOf(s: SessionState, status: number): Facts {
  return {
    failed: status >= 500,
    loaded: s.loaded,
    stored: s.originId !== null,
    destroyed: s.doomed !== null,
    cycled: s.cycled,
    changed: s.changes.size > 0 || s.metaChanged,
    empty: isEmpty(s.fields),
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

function changesOf(s: SessionState): { set: Record<string, string>; del: string[] } {
  const set = Object.create(null) as Record<string, string>;
  const del: string[] = [];
  for (const [key, text] of s.changes) {
    if (text === null) del.push(key);
    else set[key] = text;
  }
  return { set, del };
}

const UNTOUCHED: CommitResult = Object.freeze({ action: "nothing" });

export async function commit(
  engine: SessionEngine,
  session: Session,
  status: number,
): Promise<CommitResult> {
  const s = stateOf(session);
  // Rows 1-2 for a session nobody touched, without building the facts: most requests of an app
  // never read their session, and they should cost nothing here.
  if (!s.loaded && s.lockToken === null) return UNTOUCHED;
  try {
    return await apply(engine, s, decide(factsOf(s, status)));
  } finally {
    if (s.lockToken !== null && s.lockedId !== null) {
      const { lockedId, lockToken } = s;
      s.lockToken = null;
      await engine
        .guard(() => engine.store.unlock(lockedId, lockToken))
        .catch(() => {
          // Logged by guard; the lock's TTL frees it.
        });
    }
  }
}

async function apply(engine: SessionEngine, s: SessionState, row: Row): Promise<CommitResult> {
  const { store, config } = engine;
  const now = engine.now();
  const cookieOf = (id: string, maxAge: number | undefined) =>
    serializeCookie(config.cookieName, id, cookieAttributes(engine), maxAge);
  const clear = () => ({ setCookie: cookieOf("", 0), action: row.action });

  const create = async (
    fields: Record<string, string>,
    meta = newMeta(engine.policy, now, s.pendingMaxAge),
  ) => {
    const write: SessionWrite = { set: fields, del: [], meta };
    // A collision of 192-bit ids is not expected in the life of the universe; retry once anyway
    // rather than ever overwrite another session.
    for (let attempt = 0; attempt < 2; attempt++) {
      const id = generateId();
      if (await engine.guard(() => store.write(id, write, "create", now))) {
        s.committedId = id;
        return {
          setCookie: cookieOf(id, cookieMaxAge(engine.policy, meta, now)),
          action: row.action,
        };
      }
    }
    throw new Error("coatcheck: could not allocate a session id");
  };

  switch (row.action) {
    case "nothing":
      return { action: "nothing" };
    case "restore-taken": {
      if (s.originId !== null && s.meta !== null && !isEmpty(s.taken)) {
        const origin = s.originId;
        const write: SessionWrite = { set: s.taken, del: [], meta: s.meta };
        await engine.guard(() => store.write(origin, write, "update", now)).catch(() => {});
      }
      return { action: row.action };
    }
    case "delete": {
      const id = s.doomed ?? s.originId;
      if (id !== null) await engine.guard(() => store.destroy(id));
      return clear();
    }
    case "replace": {
      const doomed = s.doomed as string;
      await engine.guard(() => store.destroy(doomed));
      return create(s.fields);
    }
    case "create":
      return create(s.fields);
    case "move": {
      const origin = s.originId as string;
      const claimed = await engine.guard(() => store.claim(origin, now));
      // Destroyed or cycled by a parallel request: never bring it back.
      if (claimed === null) return clear();
      const { set, del } = changesOf(s);
      const merged = Object.assign(
        Object.create(null) as Record<string, string>,
        claimed.fields,
        set,
      );
      for (const key of del) delete merged[key];
      if (isEmpty(merged)) return clear();
      return create(merged, s.metaChanged && s.meta ? s.meta : claimed.meta);
    }
    case "update": {
      const origin = s.originId as string;
      const { set, del } = changesOf(s);
      const meta = s.meta ?? newMeta(engine.policy, now);
      const ok = await engine.guard(() => store.write(origin, { set, del, meta }, "update", now));
      if (!ok) return clear();
      s.committedId = origin;
      if (!s.metaChanged) return { action: row.action };
      return {
        setCookie: cookieOf(origin, cookieMaxAge(engine.policy, meta, now)),
        action: row.action,
      };
    }
  }
}

function cookieAttributes(engine: SessionEngine) {
  const c = engine.config;
  return {
    path: c.cookiePath,
    domain: c.cookieDomain,
    secure: c.secure,
    httpOnly: c.httpOnly,
    sameSite: c.sameSite,
  };
}
