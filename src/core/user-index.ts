import { createHash, randomBytes } from "node:crypto";
import type { SessionEngine } from "./engine.js";
import { IndexUnsupportedError } from "./errors.js";
import { EVENTS, publish } from "./events.js";
import { MAX_LIFETIME_SECS, type SessionMeta } from "./expiry.js";
import type { CommitInput } from "./session.js";
import { hasUserIndex, type IndexEntry, type IndexSelection } from "./store.js";

/**
 * The per-user session index, on the engine's side: what a sign-in records, how commits keep the
 * index exact, listing and revocation. The store keeps the entries ({@link UserIndexStore}).
 */

/** One of a user's live sessions, as listed to that user. */
export interface SessionListing {
  /**
   * Names the session to its user, for {@link AuthSession.revokeSession}: a random value made at
   * sign-in, kept when the session's id changes (the same device). Nothing in it derives the id.
   */
  handle: string;
  /** When the user signed in on this device. */
  createdAt: Date;
  /**
   * When the session was last used. With `inactivity_timeout_secs` set, from the record's last
   * renewal (every request that read it); without one, the last sign-in, id change or lifetime
   * change: as coarse as that.
   */
  lastSeenAt: Date;
  /** True for the session of the request that asked (always false from the engine's calls). */
  current: boolean;
  /** What the app recorded at sign-in ({@link DeviceInfo}); `null` when nothing. */
  userAgent: string | null;
  address: string | null;
}

/**
 * What the app chooses to record about the device at sign-in, shown back to the user by
 * `listSessions()`. Both are optional and treated as hostile: control characters are dropped and the
 * text cut to 256 (user agent) and 64 (address) characters; anything but a string is ignored.
 */
export interface DeviceInfo {
  userAgent?: string;
  address?: string;
}

/** Session key of the sign-in record: handle, time and device of the session's sign-in. */
export const SIGNIN_KEY = "_signin";

const HANDLE_PATTERN = /^[A-Za-z0-9_-]{22}$/;
const MAX_LIFETIME_MS = MAX_LIFETIME_SECS * 1000;
const USER_AGENT_CHARS = 256;
const ADDRESS_CHARS = 64;

/** What `_signin` holds. */
interface SignIn {
  h: string;
  at: number;
  ua: string | null;
  ad: string | null;
}

/** A signed-in session as the index knows it: its user and its sign-in record. */
interface Indexed {
  userId: string;
  signIn: SignIn;
}

/** Why sessions were revoked, as `coatcheck:session:revoked` reports it. */
export type RevokeReason = "user" | "others" | "password-changed" | "limit" | "admin" | "all";

/** True when `value` could be a handle: 22 base64url characters. Anything else names nothing. */
export function isHandle(value: unknown): value is string {
  return typeof value === "string" && HANDLE_PATTERN.test(value);
}

function cleanText(value: unknown, max: number): string | null {
  if (typeof value !== "string") return null;
  let text = value.replace(/\p{Cc}/gu, "").trim();
  if (text.length > max) {
    text = text.slice(0, max);
    // Never end on half of a surrogate pair.
    if (/[\uD800-\uDBFF]$/.test(text)) text = text.slice(0, -1);
  }
  return text.length > 0 ? text : null;
}

/** The JSON text of a fresh sign-in record. */
export function newSignIn(now: number, device: DeviceInfo | undefined): string {
  const signIn: SignIn = {
    h: randomBytes(16).toString("base64url"),
    at: Math.floor(now),
    ua: cleanText(device?.userAgent, USER_AGENT_CHARS),
    ad: cleanText(device?.address, ADDRESS_CHARS),
  };
  return JSON.stringify(signIn);
}

/** The sign-in record in `text`, or null when it is not one. */
export function parseSignIn(text: string | undefined): SignIn | null {
  if (text === undefined) return null;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof value !== "object" || value === null) return null;
  const { h, at, ua, ad } = value as Record<string, unknown>;
  const optional = (v: unknown) => v === null || typeof v === "string";
  if (!isHandle(h) || typeof at !== "number" || !Number.isFinite(at) || at < 0) return null;
  if (!optional(ua) || !optional(ad)) return null;
  return { h, at, ua: ua as string | null, ad: ad as string | null };
}

/** The user and sign-in of a record's fields, when it is a signed-in, indexed session. */
function indexedOf(fields: Readonly<Record<string, string>> | null | undefined): Indexed | null {
  if (fields === null || fields === undefined) return null;
  const signIn = parseSignIn(fields[SIGNIN_KEY]);
  const auth = fields._auth;
  if (signIn === null || auth === undefined) return null;
  try {
    const userId = (JSON.parse(auth) as { userId?: unknown } | null)?.userId;
    return typeof userId === "string" && userId.length > 0 ? { userId, signIn } : null;
  } catch {
    return null;
  }
}

/** A session's reference in the index: `sha256(id)` in base64url (see {@link IndexEntry.ref}). */
export function refOf(id: string): string {
  return createHash("sha256").update(id).digest("base64url");
}

/** The `session` of coatcheck's events (`idHash(id)`), from a ref. */
function hashOfRef(ref: string): string {
  return Buffer.from(ref, "base64url").toString("hex").slice(0, 12);
}

function entryOf(id: string, signIn: SignIn, meta: SessionMeta, now: number): IndexEntry {
  return {
    ref: refOf(id),
    handle: signIn.h,
    createdAt: signIn.at,
    updatedAt: Math.floor(now),
    // Never earlier than the record's own deadline: idle renewal moves that without the index.
    deadline: meta.absoluteAt > 0 ? meta.absoluteAt : Math.floor(now + MAX_LIFETIME_MS),
    userAgent: signIn.ua,
    address: signIn.ad,
  };
}

function checkUserId(userId: unknown): asserts userId is string {
  if (typeof userId !== "string" || userId.length === 0) {
    throw new TypeError("coatcheck: a user id must be a non-empty string");
  }
}

function indexed(engine: SessionEngine): void {
  if (!hasUserIndex(engine.store)) throw new IndexUnsupportedError();
}

/**
 * The live sessions of `userId`, newest sign-in first. Entries whose record is gone are dropped
 * from the index on the way (a session destroyed unread, a store that lost records).
 */
export async function listSessions(
  engine: SessionEngine,
  userId: string,
  currentHandle: string | null,
): Promise<SessionListing[]> {
  checkUserId(userId);
  indexed(engine);
  const store = engine.guarded;
  const now = engine.now();
  const entries = await store.indexList(userId, now);
  if (entries.length === 0) return [];
  const records = await store.peek(
    entries.map((e) => e.ref),
    now,
  );
  const gone: string[] = [];
  const out: SessionListing[] = [];
  entries.forEach((entry, i) => {
    const record = records[i] ?? null;
    if (record === null) {
      gone.push(entry.ref);
      return;
    }
    out.push({
      handle: entry.handle,
      createdAt: new Date(entry.createdAt),
      lastSeenAt: new Date(lastSeen(entry, record, now)),
      current: entry.handle === currentHandle,
      userAgent: entry.userAgent,
      address: entry.address,
    });
  });
  if (gone.length > 0) await store.indexRemove(userId, { refs: gone }, now, false);
  return out.sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime());
}

function lastSeen(
  entry: IndexEntry,
  record: { deadline: number; meta: SessionMeta },
  now: number,
): number {
  const { meta, deadline } = record;
  let seen = entry.updatedAt;
  // An idle-bounded deadline is the last renewal plus the idle timeout.
  if (meta.idleMs > 0 && (meta.absoluteAt === 0 || deadline < meta.absoluteAt)) {
    seen = Math.max(seen, deadline - meta.idleMs);
  }
  return Math.min(Math.max(seen, entry.createdAt), now);
}

/**
 * Revoke the selected sessions of `userId`: each entry leaves the index first, then its record is
 * deleted, so the next request with its cookie, on any instance, is anonymous. Returns how many.
 */
export async function revokeSessions(
  engine: SessionEngine,
  userId: string,
  selection: IndexSelection,
  reason: RevokeReason,
): Promise<number> {
  checkUserId(userId);
  indexed(engine);
  const store = engine.guarded;
  const removed = await store.indexRemove(userId, selection, engine.now(), true);
  for (const entry of removed) {
    publish(EVENTS.revoked, () => ({ session: hashOfRef(entry.ref), reason }));
  }
  return removed.length;
}

/** `refuse`: throws before anything changes when `userId` is at the limit (see `login`). */
export async function liveCount(
  engine: SessionEngine,
  userId: string,
  except: string | null,
): Promise<number> {
  const listed = await listSessions(engine, userId, except);
  return listed.filter((s) => !s.current).length;
}

/** The limit a put's count is checked against (0: none to check, the store need not count). */
function countedLimit(engine: SessionEngine): number {
  const { maxSessionsPerUser, sessionLimitAction } = engine.config;
  return sessionLimitAction === "revoke_oldest" ? maxSessionsPerUser : 0;
}

/**
 * `revoke_oldest`, after a put that left `entries` entries in the user's index. Entries can
 * outlive their sessions (an idle timeout ends a session before its entry), so only a user with
 * more entries than the limit is listed, to count the sessions that are really live: a user under
 * the limit costs nothing more than the put, and one at it a listing of about `max + 1` entries.
 */
async function enforceLimit(
  engine: SessionEngine,
  userId: string,
  keep: string,
  entries: number,
): Promise<void> {
  const max = engine.config.maxSessionsPerUser;
  if (max === 0 || engine.config.sessionLimitAction !== "revoke_oldest") return;
  if (entries <= max) return;
  const live = await listSessions(engine, userId, keep);
  if (live.length <= max) return;
  const oldest = live
    .filter((s) => !s.current)
    .sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime())
    .slice(0, live.length - max)
    .map((s) => s.handle);
  await revokeSessions(engine, userId, { handles: oldest }, "limit");
}

/** What a commit's store action did, for the index. */
export interface Committed {
  action: string;
  /** The id the session lives under now (a new one after create, replace, move). */
  id: string | null;
  meta: SessionMeta | null;
}

/**
 * Bring the index up to date after a commit's store action. Returns `"revoked"` when an id change
 * or lifetime change found its entry gone: the session was revoked while this request ran, and
 * the caller must not hand out the new record.
 */
export async function reindex(
  engine: SessionEngine,
  input: CommitInput,
  done: Committed,
  now: number,
): Promise<"ok" | "revoked"> {
  if (!hasUserIndex(engine.store)) return "ok";
  const store = engine.guarded;
  const remove = async (who: Indexed | null, id: string | null | undefined) => {
    if (who !== null && id) await store.indexRemove(who.userId, { refs: [refOf(id)] }, now, false);
  };
  const add = (who: Indexed, id: string, meta: SessionMeta, replaces: string | null) =>
    store.indexPut(
      who.userId,
      entryOf(id, who.signIn, meta, now),
      id,
      replaces === null ? null : refOf(replaces),
      now,
      countedLimit(engine),
    );
  switch (done.action) {
    case "delete": {
      const id = input.doomed ?? input.origin?.id;
      await remove(
        indexedOf(input.doomed !== null ? input.doomedFields : input.origin?.fields),
        id,
      );
      return "ok";
    }
    case "create":
    case "replace": {
      if (done.action === "replace") await remove(indexedOf(input.doomedFields), input.doomed);
      const after = indexedOf(input.fields);
      if (after === null || done.id === null || done.meta === null) return "ok";
      const entries = await add(after, done.id, done.meta, null);
      await enforceLimit(engine, after.userId, after.signIn.h, entries);
      return "ok";
    }
    case "move": {
      const origin = input.origin;
      const before = indexedOf(origin?.fields);
      const after = indexedOf(input.fields);
      if (done.id === null || done.meta === null) return "ok";
      if (before !== null && after !== null && before.userId === after.userId) {
        // The same user's session under a new id: only while its entry is still there.
        const entries = await add(after, done.id, done.meta, origin?.id ?? null);
        if (entries === 0) return "revoked";
        if (before.signIn.h !== after.signIn.h) {
          await enforceLimit(engine, after.userId, after.signIn.h, entries);
        }
        return "ok";
      }
      await remove(before, origin?.id);
      if (after !== null) {
        const entries = await add(after, done.id, done.meta, null);
        await enforceLimit(engine, after.userId, after.signIn.h, entries);
      }
      return "ok";
    }
    case "update": {
      // A new lifetime (remember-me) moves the deadline the entry must outlive.
      if (input.lifetime === null || done.id === null || done.meta === null) return "ok";
      const who = indexedOf(input.fields);
      if (who === null) return "ok";
      if ((await add(who, done.id, done.meta, done.id)) > 0) return "ok";
      await store.destroy(done.id);
      return "revoked";
    }
    default:
      return "ok";
  }
}

/**
 * After a late claim reply put a signed-in record back under its old id: keep it only while its
 * entry is still in the index (a revocation meanwhile must not be undone by the restore).
 */
export async function confirmRestored(
  engine: SessionEngine,
  fields: Readonly<Record<string, string>>,
  id: string,
  meta: SessionMeta,
  now: number,
): Promise<void> {
  if (!hasUserIndex(engine.store)) return;
  const who = indexedOf(fields);
  if (who === null) return;
  const store = engine.guarded;
  const entry = entryOf(id, who.signIn, meta, now);
  if ((await store.indexPut(who.userId, entry, id, entry.ref, now, 0)) === 0) {
    await store.destroy(id);
  }
}
