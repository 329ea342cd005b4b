import { createHash } from "node:crypto";
import { MAX_LIFETIME_SECS, type SessionMeta } from "../core/expiry.js";
import type { IndexEntry, IndexSelection } from "../core/store.js";

/**
 * The Redis store's per-user session index. Each user's index is three keys sharing the hash tag
 * `{sha256(userId)}` (one Cluster slot of its own, apart from every session's slot):
 *
 * - `prefix + "user:{…}:d"`, a sorted set: each entry's ref, scored by its deadline (engine epoch ms);
 * - `prefix + "user:{…}:e"`, a hash: ref → the entry as JSON (`i` ref, `h` handle, `c`, `u`, `a`, `d`);
 * - `prefix + "user:{…}:h"`, a hash: handle → ref.
 *
 * Every operation is one Lua script on those keys, which first drops the entries past their
 * deadline (only those: found by score), and sets every key's TTL to its latest entry's deadline,
 * so an index never outlives its sessions. A put or a removal by refs or handles touches only the
 * entries it names (each O(log n)); listing and "all but one" read every entry. Session records
 * are never touched here, and no session-record script touches an index.
 *
 * Earlier versions kept a user's index as ONE sorted set, `prefix + "user:{…}"`, with the entries
 * as JSON members: the first operation on a user finds it and moves its live entries into the
 * keys above (once, in the same script), then deletes it.
 */

/**
 * The longest TTL an index key is given: the longest a session can live, plus a day. A deadline
 * past it is not one this library writes.
 */
const MAX_TTL_MS = (MAX_LIFETIME_SECS + 86_400) * 1000;

/** index(now, op, …): `list`, `put` (json, score, ref, handle, replaces) or a removal. */
const INDEX = `
local D, E, H, OLD = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now = tonumber(ARGV[1])
local op = ARGV[2]
-- A key of the wrong type: the index is not ours any more, all three keys go.
local function wrong(key, want)
  local kind = redis.call('TYPE', key).ok
  return kind ~= want and kind ~= 'none'
end
if wrong(D, 'zset') or wrong(E, 'hash') or wrong(H, 'hash') then redis.call('DEL', D, E, H) end
local function decoded(json)
  if not json then return nil end
  local ok, e = pcall(cjson.decode, json)
  if ok and type(e) == 'table' and type(e.i) == 'string' and type(e.h) == 'string' then return e end
  return nil
end
-- Forget one ref: its deadline, its entry, and its handle when the handle still names it.
local function drop(ref, json)
  local e = decoded(json)
  if e ~= nil and redis.call('HGET', H, e.h) == ref then redis.call('HDEL', H, e.h) end
  redis.call('HDEL', E, ref)
  redis.call('ZREM', D, ref)
end
local function add(ref, handle, json, score)
  local held = redis.call('HGET', E, ref)
  if held then drop(ref, held) end
  local other = redis.call('HGET', H, handle)
  if other then
    local json2 = redis.call('HGET', E, other)
    local e = decoded(json2)
    -- A handle naming an entry with another handle is stale: only the mapping is replaced.
    if e == nil or e.h == handle then drop(other, json2) end
  end
  redis.call('ZADD', D, score, ref)
  redis.call('HSET', E, ref, json)
  redis.call('HSET', H, handle, ref)
end
-- The layout of earlier versions: one sorted set of JSON members. Moved over on first touch.
local oldKind = redis.call('TYPE', OLD).ok
if oldKind == 'zset' then
  redis.call('ZREMRANGEBYSCORE', OLD, '-inf', now)
  local old = redis.call('ZRANGE', OLD, 0, -1, 'WITHSCORES')
  for i = 1, #old, 2 do
    local e = decoded(old[i])
    if e ~= nil then add(e.i, e.h, old[i], old[i + 1]) end
  end
end
local moved = oldKind ~= 'none'
if moved then redis.call('DEL', OLD) end
-- Entries past their deadline: found by score, so only those are read.
local dead = redis.call('ZRANGEBYSCORE', D, '-inf', now)
for i = 1, #dead do drop(dead[i], redis.call('HGET', E, dead[i])) end
local MAXTTL = ${MAX_TTL_MS}
local function expire()
  local top = redis.call('ZRANGE', D, -1, -1, 'WITHSCORES')
  if #top == 0 then
    redis.call('DEL', E, H)
    return
  end
  -- Capped: a score no deadline can have (+inf, or written by something else) must not make
  -- PEXPIRE fail, which would fail every operation on this user, sign-in included. Such an
  -- entry is reported as not ours by a listing, which then drops it.
  local ttl = math.ceil(tonumber(top[2]) - now)
  if not (ttl < MAXTTL) then ttl = MAXTTL end
  if ttl < 1 then ttl = 1 end
  redis.call('PEXPIRE', D, ttl)
  redis.call('PEXPIRE', E, ttl)
  redis.call('PEXPIRE', H, ttl)
end
-- Every entry but those whose ref is in skip, appended to out as (ref, json, deadline). Not
-- decoded here: the app checks each entry it is given (its ref must be the one it is under). A ref
-- without an entry comes with an empty one: the app drops it and its record.
local function every(skip, out)
  local all = redis.call('ZRANGE', D, 0, -1, 'WITHSCORES')
  local refs = {}
  for i = 1, #all, 2 do refs[#refs + 1] = all[i] end
  -- Entries read in bounded batches (unpack has a stack limit).
  local jsons = {}
  for i = 1, #refs, 500 do
    local got = redis.call('HMGET', E, unpack(refs, i, math.min(i + 499, #refs)))
    for j = 1, #got do jsons[#jsons + 1] = got[j] end
  end
  for i = 1, #refs do
    if not skip[refs[i]] then
      out[#out + 1] = refs[i]
      out[#out + 1] = jsons[i] or ''
      out[#out + 1] = all[2 * i]
    end
  end
  return out
end
if op == 'list' then
  local out = every({}, {})
  if moved then expire() end
  return out
end
if op == 'put' then
  local json, score, ref, handle, replaces = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
  if replaces ~= '' then
    local e = decoded(redis.call('HGET', E, replaces))
    if e == nil or e.i ~= replaces or not redis.call('ZSCORE', D, replaces) then
      if moved then expire() end
      return 0
    end
    drop(replaces, redis.call('HGET', E, replaces))
  end
  add(ref, handle, json, score)
  expire()
  return redis.call('ZCARD', D)
end
local out = {}
-- Every ref removed is returned, its entry empty when it has none: the app destroys the record
-- of each (a record whose entry is not ours can no longer be listed or revoked otherwise).
local function take(ref, json)
  local score = redis.call('ZSCORE', D, ref)
  drop(ref, json)
  out[#out + 1] = ref
  out[#out + 1] = json or ''
  out[#out + 1] = score or ''
end
if op == 'ids' then
  for i = 3, #ARGV do
    local json = redis.call('HGET', E, ARGV[i])
    if json or redis.call('ZSCORE', D, ARGV[i]) then take(ARGV[i], json) end
  end
elseif op == 'handles' then
  for i = 3, #ARGV do
    local ref = redis.call('HGET', H, ARGV[i])
    if ref then
      local json = redis.call('HGET', E, ref)
      local e = decoded(json)
      if e ~= nil and e.h == ARGV[i] and e.i == ref then
        take(ref, json)
      elseif json == false or e == nil or e.i ~= ref then
        -- No entry, or one that is not ours: the handle named it, so it goes with its record.
        redis.call('HDEL', H, ARGV[i])
        if json or redis.call('ZSCORE', D, ref) then take(ref, json) end
      else
        -- A handle naming another handle's entry: stale, only the mapping is dropped.
        redis.call('HDEL', H, ARGV[i])
      end
    end
  end
else
  -- Every entry but those with the given handles: reads them all, as the reply holds them all.
  local kept = {}
  for i = 3, #ARGV do
    local ref = redis.call('HGET', H, ARGV[i])
    if ref then
      local json = redis.call('HGET', E, ref)
      local e = decoded(json)
      local score = redis.call('ZSCORE', D, ref)
      if e ~= nil and e.h == ARGV[i] and e.i == ref and score then
        kept[#kept + 1] = { ref, ARGV[i], json, score }
      end
    end
  end
  local keep = {}
  for i = 1, #kept do keep[kept[i][1]] = true end
  every(keep, out)
  redis.call('DEL', D, E, H)
  for i = 1, #kept do add(kept[i][1], kept[i][2], kept[i][3], kept[i][4]) end
end
expire()
return out
`;

/** The script text, for tests that measure what it does. */
export const INDEX_SCRIPT = INDEX;

const SHA = createHash("sha1").update(INDEX).digest("hex");

/** Sends one command whose only key is `key` (cluster clients route by it). */
export type IndexSend = (key: string, args: string[]) => Promise<unknown>;

function text(value: unknown): string {
  return typeof value === "string" ? value : String(value);
}

function member(entry: IndexEntry): string {
  return JSON.stringify({
    i: entry.ref,
    h: entry.handle,
    c: entry.createdAt,
    u: entry.updatedAt,
    a: entry.userAgent,
    d: entry.address,
  });
}

/** A deadline later than this (engine epoch ms, year 33658) is not one this library wrote. */
const MAX_DEADLINE = 1e15;

/** Entries of a `(ref, json, deadline)*` reply; `bad` gets the refs whose entry is not one. */
function entriesOf(reply: unknown, bad?: string[]): IndexEntry[] {
  const flat = Array.isArray(reply) ? reply : [];
  const out: IndexEntry[] = [];
  const str = (v: unknown) => (typeof v === "string" ? v : null);
  for (let i = 0; i + 2 < flat.length; i += 3) {
    const ref = text(flat[i]);
    let m: Record<string, unknown> | null = null;
    try {
      const value: unknown = JSON.parse(text(flat[i + 1]));
      if (typeof value === "object" && value !== null) m = value as Record<string, unknown>;
    } catch {
      // Not ours: below.
    }
    const score = text(flat[i + 2]);
    const deadline = score === "" ? Number.NaN : Number(score);
    if (
      m === null ||
      m.i !== ref ||
      typeof m.h !== "string" ||
      !Number.isFinite(deadline) ||
      deadline > MAX_DEADLINE
    ) {
      bad?.push(ref);
      continue;
    }
    out.push({
      ref,
      handle: m.h,
      createdAt: Number(m.c) || 0,
      updatedAt: Number(m.u) || 0,
      deadline,
      userAgent: str(m.a),
      address: str(m.d),
    });
  }
  return out;
}

/** The index operations of one {@link RedisStore}: it delegates to this. */
export class RedisUserIndex {
  readonly #send: IndexSend;
  readonly #prefix: string;
  /** The record key of a ref: the record's key is made from `sha256(id)`, which the ref is. */
  readonly #recordKey: (ref: string) => string;
  readonly #parseMeta: (raw: string | undefined) => SessionMeta | null;

  constructor(
    send: IndexSend,
    prefix: string,
    recordKey: (ref: string) => string,
    parseMeta: (raw: string | undefined) => SessionMeta | null,
  ) {
    this.#send = send;
    this.#prefix = prefix;
    this.#recordKey = recordKey;
    this.#parseMeta = parseMeta;
  }

  /** The Redis keys of a user's index: deadlines, entries, handles, and the earlier layout's. */
  keysOf(userId: string): [string, string, string, string] {
    const base = `${this.#prefix}user:{${createHash("sha256").update(userId).digest("base64url")}}`;
    return [`${base}:d`, `${base}:e`, `${base}:h`, base];
  }

  /** The entries the user's index holds after the put, or 0 when `replaces` names none. */
  async put(userId: string, entry: IndexEntry, replaces: string | null, now: number) {
    const reply = await this.#run(userId, now, "put", [
      member(entry),
      String(entry.deadline),
      entry.ref,
      entry.handle,
      replaces ?? "",
    ]);
    const count = Number(reply);
    return Number.isSafeInteger(count) && count > 0 ? count : 0;
  }

  async remove(
    userId: string,
    selection: IndexSelection,
    now: number,
    destroy: boolean,
  ): Promise<IndexEntry[]> {
    const [op, values] =
      "refs" in selection
        ? ["ids", selection.refs]
        : "handles" in selection
          ? ["handles", selection.handles]
          : ["except", selection.allExcept === null ? [] : [selection.allExcept]];
    if (op !== "except" && values.length === 0) return [];
    const bad: string[] = [];
    const removed = entriesOf(await this.#run(userId, now, op, [...values]), bad);
    // A removed entry that is not ours is not returned, but its record goes too: it named it.
    if (destroy) await this.#destroy([...removed.map((e) => e.ref), ...bad]);
    return removed;
  }

  /** Deletes the records of `refs`, after their entries are gone (each its own key and slot). */
  async #destroy(refs: readonly string[]): Promise<void> {
    await Promise.all(
      refs.map((ref) => {
        const key = this.#recordKey(ref);
        return this.#send(key, ["DEL", key]);
      }),
    );
  }

  async list(userId: string, now: number): Promise<IndexEntry[]> {
    const bad: string[] = [];
    const entries = entriesOf(await this.#run(userId, now, "list", []), bad);
    // Entries that are not ours (written by something else, or with no entry at all): dropped, a
    // second call only then. Their records are destroyed too: with no usable entry, a session can
    // no longer be listed or revoked (not even by "sign out everywhere"), so it must not stay
    // valid. Only the refs still not ours when dropped: one rewritten meanwhile is spared.
    if (bad.length > 0) {
      const still: string[] = [];
      entriesOf(await this.#run(userId, now, "ids", bad), still);
      if (still.length > 0) await this.#destroy(still);
    }
    return entries;
  }

  /** Each record's deadline and metadata, read with HMGET: nothing is renewed. */
  peek(refs: readonly string[], now: number) {
    return Promise.all(
      refs.map(async (ref) => {
        const key = this.#recordKey(ref);
        const reply = await this.#send(key, ["HMGET", key, "d", "m"]);
        const [d, m] = Array.isArray(reply) ? reply : [];
        if (d === null || d === undefined) return null;
        const deadline = Number(text(d));
        const meta = this.#parseMeta(m === null || m === undefined ? undefined : text(m));
        if (!Number.isFinite(deadline) || deadline <= now || meta === null) return null;
        return { deadline, meta };
      }),
    );
  }

  async #run(userId: string, now: number, op: string, args: string[]): Promise<unknown> {
    const keys = this.keysOf(userId);
    const tail = [...keys, String(Math.floor(now)), op, ...args];
    try {
      return await this.#send(keys[0], ["EVALSHA", SHA, "4", ...tail]);
    } catch (error) {
      if (!(error instanceof Error && error.message.startsWith("NOSCRIPT"))) throw error;
      return this.#send(keys[0], ["EVAL", INDEX, "4", ...tail]);
    }
  }
}
