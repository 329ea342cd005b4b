import { createHash, hash } from "node:crypto";
import type { Logger } from "../core/engine.js";
import { ConfigError } from "../core/errors.js";
import {
  deadlineOf,
  IDLE_RENEWAL_FRACTION,
  MAX_LIFETIME_SECS,
  type SessionMeta,
} from "../core/expiry.js";
import {
  type IndexEntry,
  type IndexSelection,
  type LockStore,
  newFields,
  type RecordStore,
  type SessionWrite,
  type StoredSession,
  type UserIndexStore,
  type WriteMode,
} from "../core/store.js";
import { RedisUserIndex } from "./redis-index.js";

/**
 * The Redis store. Typed by the few methods it calls, so it depends on neither client package:
 * node-redis (`createClient`, `createCluster`, `createSentinel`) and ioredis (`new Redis`,
 * `new Cluster`) all fit.
 */

/** A node-redis v5+ client (`createClient()`). */
export interface NodeRedisClientLike {
  sendCommand(args: string[]): Promise<unknown>;
}

/** A node-redis v5+ cluster (`createCluster()`); told apart from a client by `masters`. */
export interface NodeRedisClusterLike {
  readonly masters: readonly unknown[];
  sendCommand(
    firstKey: string | undefined,
    isReadonly: boolean | undefined,
    args: string[],
  ): Promise<unknown>;
}

/**
 * A node-redis v5+ Sentinel client (`createSentinel()`); told apart by `getMasterNode`. Commands go
 * to the current primary.
 */
export interface NodeRedisSentinelLike {
  getMasterNode(): unknown;
  sendCommand(isReadonly: boolean | undefined, args: string[]): Promise<unknown>;
}

/** An ioredis client or cluster (`new Redis()`, `new Cluster()`). */
export interface IoRedisLike {
  call(command: string, ...args: string[]): Promise<unknown>;
}

/** Any client {@link RedisStore} accepts. */
export type RedisClientLike =
  | NodeRedisClientLike
  | NodeRedisClusterLike
  | NodeRedisSentinelLike
  | IoRedisLike;

/** Options of {@link RedisStore}. */
export interface RedisStoreOptions {
  /** Prefix of every key (no braces, at most 64 characters). Default `"coatcheck:"`. */
  keyPrefix?: string;
  /** Where corrupt records are reported. Default `console`. */
  logger?: Pick<Logger, "warn">;
  /**
   * Settles when the client is first connected; the engine holds the first operations back until
   * then (within `operation_timeout_ms`). Pass the client's `connect()` promise when the client is
   * connected in the background.
   */
  ready?: Promise<unknown>;
  /** Called by {@link RedisStore.close}: pass one when the store should shut its client down. */
  onClose?: () => void | Promise<void>;
  /**
   * Durability: a write that creates a record (a new session, a cycled id, a sign-in) waits until
   * this many replicas acknowledge it (`WAIT`, on the node that owns the key), so a failover right
   * after the response cannot lose it. When fewer acknowledge within `waitTimeoutMs` the write
   * fails (the request answers 503) and a warning is logged. Default 0: no waiting. Needs a client
   * whose command follows the write on the same connection: node-redis client, cluster or Sentinel
   * (`masterPoolSize` 1, the default), or an ioredis client; not an ioredis Cluster.
   */
  waitReplicas?: number;
  /** How long a new record waits for `waitReplicas` acknowledgements. Default 500. */
  waitTimeoutMs?: number;
}

/**
 * Record layout: one hash per session. Data fields are `k:` + session key (JSON text), so no session
 * key can collide with the bookkeeping fields:
 * - `d`: the deadline in the engine's epoch ms, renewed with the TTL. Keeping it lets every instance
 *   judge expiry by the clock the engine passes in, which also makes expiry testable with a fake clock.
 * - `m`: the metadata, `createdAt:absoluteAt:idleMs`, plus `:maxAgeSecs` with a lifetime override.
 * - `i`: the idle timeout in ms again, as a plain number, so a load decides on renewal without
 *   parsing `m`.
 * Records written by earlier versions hold JSON in `m` and no `i`: both readers accept them, and the next write
 * that carries metadata stores the current form.
 */
const DATA = "k:";

/**
 * Shared Lua prelude. `meta(m)` answers `absoluteAt, idleMs` of a stored `m`, or nothing when it is
 * unreadable; `deadline_of` is `deadlineOf` capped at `cap`.
 */
const PRELUDE = `
local key = KEYS[1]
local now = tonumber(ARGV[1])
local function meta(m)
  if not m then return nil end
  local a, i
  if string.byte(m, 1) == 123 then
    local ok, t = pcall(cjson.decode, m)
    if not ok or type(t) ~= 'table' then return nil end
    a, i = t.absoluteAt, t.idleMs
    if type(a) ~= 'number' or type(i) ~= 'number' then return nil end
  else
    local sa, si = string.match(m, '^[^:]+:([^:]+):([^:]+)')
    a, i = tonumber(sa), tonumber(si)
    if a == nil or i == nil then return nil end
  end
  if not (a >= 0 and i >= 0) then return nil end
  return a, i
end
local function deadline_of(a, i, cap)
  local deadline = cap
  if i > 0 and now + i < deadline then deadline = now + i end
  if a > 0 and a < deadline then deadline = a end
  return math.floor(deadline)
end
`;

/** The reply to a key that holds something other than a hash: deleted, reported by type. */
const FOREIGN = `
  local kind = redis.call('TYPE', key).ok
  redis.call('DEL', key)
  return {'!', 'a ' .. kind .. ' instead of a hash'}`;

/**
 * load(now, cap): the record, renewed. A load sends a plain HGETALL first and runs this script only
 * when the record needs more than a read: an idle renewal (more than IDLE_RENEWAL_FRACTION of the
 * timeout), a deadline that passed, a foreign value or metadata the client cannot read (see
 * `RedisStore.load`). It reads the record again with one HGETALL, and writes `d` (HSET) and the TTL
 * (PEXPIRE) only when renewal is due. A record past its deadline (or without one) is deleted and
 * missing. A foreign value or unreadable metadata is deleted and comes back as {'!', reason}: no
 * HGETALL field starts with '!'.
 */
const LOAD = `${PRELUDE}
local all = redis.pcall('HGETALL', key)
if all.err then ${FOREIGN} end
local n = #all
if n == 0 then return false end
local d, i, m
for j = 1, n, 2 do
  local f = all[j]
  if f == 'd' then d = all[j + 1] elseif f == 'i' then i = all[j + 1] elseif f == 'm' then m = all[j + 1] end
end
d = tonumber(d)
if d == nil or d <= now then
  redis.call('DEL', key)
  return false
end
i = tonumber(i)
local fraction = ${IDLE_RENEWAL_FRACTION}
if i == nil or (i > 0 and now + i - d > i * fraction) then
  local a
  a, i = meta(m)
  if a == nil then
    redis.call('DEL', key)
    return {'!', 'unreadable metadata'}
  end
  if i > 0 then
    local deadline = deadline_of(a, i, tonumber(ARGV[2]))
    if deadline - d > i * fraction then
      redis.call('HSET', key, 'd', deadline)
      redis.call('PEXPIRE', key, math.max(1, deadline - math.floor(now)))
    end
  end
end
return all
`;

/**
 * write(now, mode, deadline, meta, idle, nset, f1, v1, …, del1, …): 1 done, 0 precondition
 * failed, -1 a foreign value holds the key. `now` is whole ms; nset '' when nothing is deleted. An update with meta '' keeps the
 * stored metadata and takes the deadline from it (`deadlineOf`, capped at now + MAX_LIFETIME_MS).
 * One HMGET of `d` and `m`, one HSET (of `d` only when the deadline moved), an HDEL only with
 * deletions, a PEXPIRE only when the deadline moved. Lua's number work is what a write costs
 * beyond its commands, so the common path converts few numbers: without an idle timeout, a stored
 * deadline equal to the absolute one (compared as text) stays without any arithmetic.
 */
const WRITE = `
local key = KEYS[1]
local got = redis.pcall('HMGET', key, 'd', 'm')
if got.err then return -1 end
local now = tonumber(ARGV[1])
local d = tonumber(got[1])
local create = ARGV[2] == 'create'
if d ~= nil and d > now then
  if create then return 0 end
elseif create then
  redis.call('DEL', key)
else
  if got[1] or got[2] then redis.call('DEL', key) end
  return 0
end
local m = ARGV[4]
local deadline
if m ~= '' then
  deadline = tonumber(ARGV[3])
else
  local stored = got[2]
  local sa, si
  if stored then sa, si = string.match(stored, '^[^{:][^:]*:([^:]+):([^:]+)') end
  if si == '0' and sa == got[1] then
    -- No idle timeout and the stored deadline is the absolute one: it stays.
    deadline = d
  else
    local a, i = tonumber(sa), tonumber(si)
    if sa == nil and stored and string.byte(stored, 1) == 123 then
      local ok, t = pcall(cjson.decode, stored)
      if ok and type(t) == 'table' then a, i = t.absoluteAt, t.idleMs end
      if type(a) ~= 'number' or type(i) ~= 'number' then a = nil end
    end
    if a == nil or i == nil or not (a >= 0 and i >= 0) then
      redis.call('DEL', key)
      return 0
    end
    deadline = now + ${MAX_LIFETIME_SECS * 1000}
    if i > 0 and now + i < deadline then deadline = now + i end
    if a > 0 and a < deadline then deadline = a end
    deadline = math.floor(deadline)
  end
end
local moved = deadline ~= d
local n = #ARGV
local last = ARGV[6] == '' and n or 6 + 2 * tonumber(ARGV[6])
local stop = last < 4006 and last or 4006
if m ~= '' then
  redis.call('HSET', key, 'd', ARGV[3], 'm', m, 'i', ARGV[5], unpack(ARGV, 7, stop))
elseif moved then
  redis.call('HSET', key, 'd', deadline, unpack(ARGV, 7, stop))
elseif last > 6 then
  redis.call('HSET', key, unpack(ARGV, 7, stop))
end
while stop < last do
  local first = stop + 1
  stop = last < first + 3999 and last or first + 3999
  redis.call('HSET', key, unpack(ARGV, first, stop))
end
for j = last + 1, n, 4000 do
  redis.call('HDEL', key, unpack(ARGV, j, n < j + 3999 and n or j + 3999))
end
local emptied = false
if deadline > now and ((create and last == 6) or n > last) then
  local kept = (m ~= '' or redis.call('HEXISTS', key, 'i') == 1) and 3 or 2
  emptied = redis.call('HLEN', key) <= kept
end
if deadline <= now or emptied then
  redis.call('DEL', key)
elseif create or moved then
  redis.call('PEXPIRE', key, deadline - now)
end
return 1
`;

/**
 * update_fields(d, f1, v1, …): 1 when the record's stored deadline is `d` as text and it has no
 * idle timeout (`i` is '0'), after one HSET of the given fields; 0, having changed nothing,
 * otherwise (missing, another deadline, an idle timeout, a foreign value, a record of an earlier
 * version without `i`). The common update of a session without an idle timeout: its deadline
 * does not move, so the write is one HMGET and one HSET, with none of the write script's number
 * work. The caller passes `d` only when it is the absolute deadline, later than now; on 0 it runs
 * the write script, which decides every other case.
 */
const UPDATE_FIELDS = `
local got = redis.pcall('HMGET', KEYS[1], 'd', 'i')
if got.err or got[1] ~= ARGV[1] or got[2] ~= '0' then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
return 1
`;

/** claim(now): read and delete the whole record, with one HGETALL and one DEL. */
const CLAIM = `
local key = KEYS[1]
local all = redis.pcall('HGETALL', key)
if all.err then ${FOREIGN} end
if #all == 0 then return false end
redis.call('DEL', key)
local d
for j = 1, #all, 2 do
  if all[j] == 'd' then d = tonumber(all[j + 1]) end
end
if d == nil or d <= tonumber(ARGV[1]) then return false end
return all
`;

/** take(f1, f2, …): read and delete the given fields; returns the ones that existed, flat. */
const TAKE = `
local key = KEYS[1]
local got = redis.pcall('HMGET', key, unpack(ARGV))
if got.err then return {} end
local out, gone = {}, {}
for j = 1, #ARGV do
  if got[j] then
    out[#out + 1] = ARGV[j]
    out[#out + 1] = got[j]
    gone[#gone + 1] = ARGV[j]
  end
end
if #gone > 0 then redis.call('HDEL', key, unpack(gone)) end
return out
`;

/** unlock(token): delete the lock only while `token` holds it. */
const UNLOCK = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

interface Script {
  source: string;
  sha: string;
}

function script(source: string): Script {
  return { source, sha: createHash("sha1").update(source).digest("hex") };
}

const SCRIPTS = {
  load: script(LOAD),
  write: script(WRITE),
  updateFields: script(UPDATE_FIELDS),
  claim: script(CLAIM),
  take: script(TAKE),
  unlock: script(UNLOCK),
};

/** Sends one command whose only key is `key` (cluster clients route by it). */
type Send = (key: string, args: string[]) => Promise<unknown>;

function senderFor(client: RedisClientLike): Send {
  const c = client as unknown as Record<string, unknown>;
  if (typeof c.call === "function") {
    const io = client as IoRedisLike;
    return (_key, [command, ...args]) => io.call(command as string, ...args);
  }
  if (typeof c.sendCommand === "function") {
    if (typeof c.getMasterNode === "function") {
      const sentinel = client as NodeRedisSentinelLike;
      return (_key, args) => sentinel.sendCommand(false, args);
    }
    if ("masters" in c) {
      const cluster = client as NodeRedisClusterLike;
      return (key, args) => cluster.sendCommand(key, false, args);
    }
    const single = client as NodeRedisClientLike;
    return (_key, args) => single.sendCommand(args);
  }
  throw new TypeError(
    "coatcheck: RedisStore needs a node-redis client or cluster (createClient/createCluster from " +
      '"redis"), a node-redis Sentinel (createSentinel) or an ioredis client or cluster',
  );
}

/** Bulk replies arrive as strings, or as Buffers when a client maps types that way. */
function text(value: unknown): string {
  return typeof value === "string" ? value : String(value);
}

function isNoScript(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith("NOSCRIPT");
}

function isWrongType(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith("WRONGTYPE");
}

/** An HGETALL reply as a flat field, value list: RESP2 gives one; RESP3 a map (Map or object). */
function flatOf(reply: unknown): readonly unknown[] | null {
  if (Array.isArray(reply)) return reply;
  if (reply instanceof Map) return [...reply].flat();
  if (typeof reply === "object" && reply !== null) return Object.entries(reply).flat();
  return null;
}

/** A record's fields from a flat HGETALL list: the data keys, and `d`, `i`, `m` as text. */
function readFields(flat: readonly unknown[]) {
  const fields = newFields();
  let d: string | undefined;
  let i: string | undefined;
  let m: string | undefined;
  for (let j = 0; j + 1 < flat.length; j += 2) {
    const field = text(flat[j]);
    if (field.startsWith(DATA)) fields[field.slice(DATA.length)] = text(flat[j + 1]);
    else if (field === "d") d = text(flat[j + 1]);
    else if (field === "i") i = text(flat[j + 1]);
    else if (field === "m") m = text(flat[j + 1]);
  }
  return { fields, d, i, m };
}

/** `m` of a record: `createdAt:absoluteAt:idleMs[:maxAgeSecs]` (see the record layout above). */
function packMeta(meta: SessionMeta): string {
  const head = `${meta.createdAt}:${meta.absoluteAt}:${meta.idleMs}`;
  return meta.maxAgeSecs === undefined ? head : `${head}:${meta.maxAgeSecs}`;
}

const count = (n: unknown): n is number => typeof n === "number" && Number.isFinite(n) && n >= 0;
/** A number as `packMeta` writes it: digits, a fraction, an exponent; never empty. */
const NUMBER = /^\d+(?:\.\d+)?(?:e\+\d+)?$/;

/** The metadata in `m`, short form or the JSON of earlier records; null when unreadable. */
function parseMeta(raw: string | undefined): SessionMeta | null {
  if (raw === undefined) return null;
  let value: Record<string, unknown>;
  if (raw.startsWith("{")) {
    try {
      const parsed: unknown = JSON.parse(raw);
      if (typeof parsed !== "object" || parsed === null) return null;
      value = parsed as Record<string, unknown>;
    } catch {
      return null;
    }
  } else {
    const parts = raw.split(":");
    if (parts.length < 3 || parts.length > 4 || !parts.every((p) => NUMBER.test(p))) return null;
    const [createdAt, absoluteAt, idleMs, maxAgeSecs] = parts.map(Number);
    value = { createdAt, absoluteAt, idleMs, maxAgeSecs };
  }
  const { createdAt, absoluteAt, idleMs, maxAgeSecs } = value;
  if (!count(createdAt) || !count(absoluteAt) || !count(idleMs)) return null;
  const meta: SessionMeta = { createdAt, absoluteAt, idleMs };
  if (maxAgeSecs !== undefined) {
    if (!count(maxAgeSecs)) return null;
    meta.maxAgeSecs = maxAgeSecs;
  }
  return meta;
}

/**
 * Whether an update of a record loaded with `meta` may take the short script: no idle timeout, and
 * the absolute deadline a whole number of ms later than `now` (the write script keeps such a
 * deadline as it is, so both scripts leave the record the same).
 */
function plainDeadline(meta: SessionMeta, now: number): boolean {
  return (
    meta.idleMs === 0 && Number.isSafeInteger(meta.absoluteAt) && meta.absoluteAt > Math.floor(now)
  );
}

/** The most fields the short update script takes (Lua's unpack is bounded); more take the write script. */
const MAX_PLAIN_FIELDS = 1000;

const DEFAULT_PREFIX = "coatcheck:";
/** No record outlives the longest cookie a browser keeps, so every write has a finite TTL. */
const MAX_LIFETIME_MS = MAX_LIFETIME_SECS * 1000;

/**
 * The session in a plain HGETALL's fields when the load script would return it and change nothing:
 * alive by `d`, metadata readable here, no idle renewal due. The script's rule, step by step, in
 * the same double arithmetic; `undefined` sends the load to the script.
 */
function settled(record: ReturnType<typeof readFields>, now: number): StoredSession | undefined {
  if (record.d === undefined || !NUMBER.test(record.d)) return undefined;
  const d = Number(record.d);
  if (!(d > now)) return undefined;
  const meta = parseMeta(record.m);
  if (meta === null) return undefined;
  const done = { fields: record.fields, meta };
  const fraction = IDLE_RENEWAL_FRACTION;
  if (record.i !== undefined) {
    if (!NUMBER.test(record.i)) return undefined;
    const i = Number(record.i);
    if (!(i > 0 && now + i - d > i * fraction)) return done;
  }
  // A renewal may be due (or `i` is missing: an earlier version's record): the script's second
  // look, with the metadata's own numbers.
  if (meta.idleMs > 0) {
    const deadline = Math.floor(Math.min(deadlineOf(meta, now), now + MAX_LIFETIME_MS));
    if (deadline - d > meta.idleMs * fraction) return undefined;
  }
  return done;
}

/**
 * Sessions in Redis, shared by every app instance (DESIGN §4).
 *
 * - One hash per session under `prefix + "{" + sha256(id) + "}"`: a dump of the store yields no
 *   usable cookie, and the braces are a Cluster hash tag, so a session's record and lock key live
 *   in one slot and every script runs on one node.
 * - A load is one plain `HGETALL` (one round trip), judged in this process; only a load that renews
 *   the idle deadline (at most once per tenth of the timeout) or meets an expired or corrupt record
 *   runs the load script as a second round trip. Every other operation is one Lua script (one
 *   round trip), called by SHA; a server that does not know the script yet (restart, failover, new
 *   cluster node) gets it once with EVAL.
 * - Writes apply only the changed keys, refuse to create over an existing record or to update a
 *   missing one (no resurrection), and always set the TTL from the session's deadline.
 * - Corrupt records (not a hash, unreadable metadata) are logged, deleted and treated as missing.
 *
 * Commands fail (and the engine answers 503) rather than wait for a connection: configure your own
 * client the same way (node-redis `disableOfflineQueue: true`, ioredis `enableOfflineQueue: false`),
 * or let `storage = "redis"` build one from `redis_url`.
 *
 * @example
 * ```ts
 * import { createClient } from "redis";
 * import { RedisStore } from "coatcheck/redis";
 * const client = createClient({ url: process.env.REDIS_URL, disableOfflineQueue: true });
 * client.on("error", (e) => console.error(e));
 * await client.connect();
 * app.use(session({ store: new RedisStore(client) }));
 * ```
 */
export class RedisStore implements RecordStore, LockStore, UserIndexStore {
  /** Operations cross the network: the engine guards each with `operation_timeout_ms`. */
  readonly inProcess = false;
  /** Every load builds its records anew: the engine keeps them without a copy. */
  readonly loadsFresh = true;
  readonly #send: Send;
  readonly #prefix: string;
  readonly #logger: Pick<Logger, "warn">;
  readonly #onClose: (() => void | Promise<void>) | undefined;
  readonly #ready: Promise<void> | undefined;
  readonly #wait: { replicas: string; timeout: string } | undefined;
  /** The per-user session index: three keys per user, in src/stores/redis-index.ts. */
  readonly #index: RedisUserIndex;

  constructor(client: RedisClientLike, options: RedisStoreOptions = {}) {
    this.#send = senderFor(client);
    const prefix = options.keyPrefix ?? DEFAULT_PREFIX;
    if (prefix.length > 64 || /[{}\s]/.test(prefix)) {
      throw new ConfigError(
        "session.key_prefix",
        `got ${JSON.stringify(prefix)}; must be at most 64 characters without braces or spaces`,
      );
    }
    this.#prefix = prefix;
    this.#index = new RedisUserIndex(this.#send, prefix, (ref) => `${prefix}{${ref}}`, parseMeta);
    this.#logger = options.logger ?? console;
    this.#onClose = options.onClose;
    this.#ready = options.ready?.then(() => {});
    const replicas = options.waitReplicas ?? 0;
    if (replicas > 0 && (client as { isCluster?: unknown }).isCluster === true) {
      throw new ConfigError(
        "session.redis_wait_replicas",
        "needs a node-redis cluster (createCluster): an ioredis Cluster sends WAIT to a random node",
      );
    }
    this.#wait =
      replicas > 0
        ? { replicas: String(replicas), timeout: String(options.waitTimeoutMs ?? 500) }
        : undefined;
  }

  /** Settles when the client given as `ready` is first connected (at once without one). */
  ready(): Promise<void> {
    return this.#ready ?? Promise.resolve();
  }

  /** The Redis key of a session's record. */
  keyOf(id: string): string {
    return `${this.#prefix}{${hash("sha256", id, "base64url")}}`;
  }

  /**
   * One plain HGETALL, judged here: a live record whose metadata reads and whose idle renewal is not
   * due (the load script's own rule) is returned as it is. Anything else (renewal due, past its
   * deadline, a foreign value, metadata this process cannot read) runs the load script, which
   * decides again atomically and renews, deletes or reports.
   */
  async load(id: string, now: number): Promise<StoredSession | null> {
    const key = this.keyOf(id);
    let flat: readonly unknown[] | null;
    try {
      flat = flatOf(await this.#send(key, ["HGETALL", key]));
    } catch (error) {
      if (!isWrongType(error)) throw error;
      flat = null; // the script reports the foreign value and deletes it
    }
    if (flat !== null) {
      if (flat.length === 0) return null;
      const record = settled(readFields(flat), now);
      if (record !== undefined) return record;
    }
    const reply = await this.#run(SCRIPTS.load, key, [String(now), String(now + MAX_LIFETIME_MS)]);
    return this.#record(key, reply);
  }

  async write(id: string, change: SessionWrite, mode: WriteMode, now: number): Promise<boolean> {
    const key = this.keyOf(id);
    const meta = change.meta;
    if (meta === undefined && mode === "create") return false; // a create carries its metadata
    const deadline =
      meta === undefined
        ? ""
        : String(Math.ceil(Math.min(deadlineOf(meta, now), now + MAX_LIFETIME_MS)));
    const sets = Object.keys(change.set);
    const loaded = change.loaded;
    if (
      meta === undefined &&
      mode === "update" &&
      change.del.length === 0 &&
      loaded !== undefined &&
      plainDeadline(loaded, now) &&
      sets.length > 0 &&
      sets.length <= MAX_PLAIN_FIELDS
    ) {
      const args = [String(loaded.absoluteAt)];
      for (const field of sets) args.push(DATA + field, change.set[field] as string);
      if (Number(await this.#run(SCRIPTS.updateFields, key, args)) === 1) return true;
    }
    const args = [
      String(Math.floor(now)),
      mode,
      deadline,
      meta === undefined ? "" : packMeta(meta),
      meta === undefined ? "" : String(meta.idleMs),
      change.del.length === 0 ? "" : String(sets.length),
    ];
    for (const field of sets) args.push(DATA + field, change.set[field] as string);
    for (const field of change.del) args.push(DATA + field);
    const reply = await this.#run(SCRIPTS.write, key, args);
    if (Number(reply) === -1) {
      this.#logger.warn({}, `Redis key ${key} holds a value that is not a session; not written`);
    }
    if (Number(reply) === 1 && mode === "create" && this.#wait) await this.#replicated(key);
    return Number(reply) === 1;
  }

  /** WAIT on the connection that wrote `key`; throws when too few replicas acknowledged. */
  async #replicated(key: string): Promise<void> {
    const { replicas, timeout } = this.#wait as { replicas: string; timeout: string };
    const acked = Number(await this.#send(key, ["WAIT", replicas, timeout]));
    if (acked >= Number(replicas)) return;
    const message = `new session record acknowledged by ${acked} of ${replicas} replicas within ${timeout} ms (redis_wait_replicas); answering 503`;
    this.#logger.warn({}, `${message}`);
    throw new Error(message);
  }

  async destroy(id: string): Promise<void> {
    const key = this.keyOf(id);
    await this.#send(key, ["DEL", key]);
  }

  async claim(id: string, now: number): Promise<StoredSession | null> {
    const key = this.keyOf(id);
    return this.#record(key, await this.#run(SCRIPTS.claim, key, [String(now)]));
  }

  async take(id: string, keys: readonly string[]): Promise<Record<string, string>> {
    const out = newFields();
    if (keys.length === 0) return out;
    const key = this.keyOf(id);
    const reply = await this.#run(
      SCRIPTS.take,
      key,
      keys.map((k) => DATA + k),
    );
    const flat = Array.isArray(reply) ? reply : [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      out[text(flat[i]).slice(DATA.length)] = text(flat[i + 1]);
    }
    return out;
  }

  async acquireLock(id: string, token: string, ttlMs: number): Promise<boolean> {
    const key = `${this.keyOf(id)}:lock`;
    const reply = await this.#send(key, [
      "SET",
      key,
      token,
      "NX",
      "PX",
      String(Math.max(1, Math.ceil(ttlMs))),
    ]);
    return reply !== null && reply !== undefined;
  }

  async releaseLock(id: string, token: string): Promise<void> {
    const key = `${this.keyOf(id)}:lock`;
    await this.#run(SCRIPTS.unlock, key, [token]);
  }

  /**
   * The Redis key of a user's session index: a sorted set of its sessions' refs by deadline.
   * The entries are in the hash named like it with `:e` in place of `:d`, the handles in `:h`.
   */
  indexKeyOf(userId: string): string {
    return this.#index.keysOf(userId)[0];
  }

  indexPut(userId: string, entry: IndexEntry, _id: string, replaces: string | null, now: number) {
    // Counting is O(1) here (ZCARD): the count is exact whatever the limit.
    return this.#index.put(userId, entry, replaces, now);
  }

  indexRemove(userId: string, selection: IndexSelection, now: number, destroy: boolean) {
    return this.#index.remove(userId, selection, now, destroy);
  }

  indexList(userId: string, now: number) {
    return this.#index.list(userId, now);
  }

  peek(refs: readonly string[], now: number) {
    return this.#index.peek(refs, now);
  }

  async close(): Promise<void> {
    await this.#onClose?.();
  }

  async #run(s: Script, key: string, args: string[]): Promise<unknown> {
    try {
      return await this.#send(key, ["EVALSHA", s.sha, "1", key, ...args]);
    } catch (error) {
      if (!isNoScript(error)) throw error;
      // EVAL caches the script on the node that ran it: later calls there find it by SHA.
      return this.#send(key, ["EVAL", s.source, "1", key, ...args]);
    }
  }

  #record(key: string, reply: unknown): StoredSession | null {
    if (!Array.isArray(reply)) return null;
    if (reply[0] === "!") {
      this.#corrupt(key, text(reply[1]));
      return null;
    }
    const { fields, m } = readFields(reply);
    const meta = parseMeta(m);
    if (meta === null) {
      this.#corrupt(key, "unreadable metadata");
      // Readable to Lua but not to us (e.g. a negative time): delete it too, so it is logged once.
      this.#send(key, ["DEL", key]).catch(() => {});
      return null;
    }
    return { fields, meta };
  }

  #corrupt(key: string, reason: string): void {
    this.#logger.warn({}, `Redis key ${key} is not a readable session (${reason}); deleted`);
  }
}
