import { createHash } from "node:crypto";
import type { SessionMeta } from "../core/expiry.js";
import type { IndexEntry, IndexSelection } from "../core/store.js";

/**
 * The Redis store's per-user session index. Each user's index is ONE sorted set of its own,
 * `prefix + "user:{" + sha256(userId) + "}"` (its own Cluster slot, apart from every session's
 * slot): members are the entries as JSON, scores their deadlines in the engine's epoch ms. Every
 * operation is one Lua script on that key alone, which first drops the entries past their
 * deadline, and sets the key's TTL to its latest entry's deadline, so an index never outlives its
 * sessions. Session records are never touched here, and no session-record script touches an index.
 */

/** index(now, op, …): `list`, `put` (member, score, id, handle, replaces) or a removal. */
const INDEX = `
local key = KEYS[1]
local now = tonumber(ARGV[1])
local op = ARGV[2]
local kind = redis.call('TYPE', key).ok
if kind ~= 'zset' and kind ~= 'none' then redis.call('DEL', key) end
redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
local function decoded(member)
  local ok, e = pcall(cjson.decode, member)
  if ok and type(e) == 'table' and type(e.i) == 'string' and type(e.h) == 'string' then return e end
  return nil
end
local function expire()
  local top = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  if #top == 0 then return end
  redis.call('PEXPIRE', key, math.max(1, math.ceil(tonumber(top[2]) - now)))
end
local all = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
if op == 'list' then return all end
if op == 'put' then
  local id, handle, replaces = ARGV[5], ARGV[6], ARGV[7]
  if replaces ~= '' then
    local found = false
    for i = 1, #all, 2 do
      local e = decoded(all[i])
      if e ~= nil and e.i == replaces then found = true end
    end
    if not found then return 0 end
  end
  for i = 1, #all, 2 do
    local e = decoded(all[i])
    if e == nil or e.i == id or e.h == handle or e.i == replaces then
      redis.call('ZREM', key, all[i])
    end
  end
  redis.call('ZADD', key, ARGV[4], ARGV[3])
  expire()
  return 1
end
local wanted = {}
for i = 3, #ARGV do wanted[ARGV[i]] = true end
local out = {}
for i = 1, #all, 2 do
  local e = decoded(all[i])
  local hit = e == nil
  if e ~= nil then
    if op == 'ids' then hit = wanted[e.i] == true
    elseif op == 'handles' then hit = wanted[e.h] == true
    else hit = wanted[e.h] ~= true end
  end
  if hit then
    redis.call('ZREM', key, all[i])
    if e ~= nil then
      out[#out + 1] = all[i]
      out[#out + 1] = all[i + 1]
    end
  end
end
expire()
return out
`;

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

function entriesOf(reply: unknown): IndexEntry[] {
  const flat = Array.isArray(reply) ? reply : [];
  const out: IndexEntry[] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) {
    try {
      const m = JSON.parse(text(flat[i])) as Record<string, unknown>;
      const str = (v: unknown) => (typeof v === "string" ? v : null);
      if (typeof m.i !== "string" || typeof m.h !== "string") continue;
      out.push({
        ref: m.i,
        handle: m.h,
        createdAt: Number(m.c) || 0,
        updatedAt: Number(m.u) || 0,
        deadline: Number(text(flat[i + 1])),
        userAgent: str(m.a),
        address: str(m.d),
      });
    } catch {
      // Not ours: skipped (the next change of this index drops it).
    }
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

  /** The Redis key of a user's index. */
  keyOf(userId: string): string {
    return `${this.#prefix}user:{${createHash("sha256").update(userId).digest("base64url")}}`;
  }

  async put(userId: string, entry: IndexEntry, replaces: string | null, now: number) {
    const reply = await this.#run(userId, now, "put", [
      member(entry),
      String(entry.deadline),
      entry.ref,
      entry.handle,
      replaces ?? "",
    ]);
    return Number(reply) === 1;
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
    const removed = entriesOf(await this.#run(userId, now, op, [...values]));
    if (destroy) {
      // After the entries are gone: each record is its own key, in its own slot.
      await Promise.all(
        removed.map((e) => {
          const key = this.#recordKey(e.ref);
          return this.#send(key, ["DEL", key]);
        }),
      );
    }
    return removed;
  }

  async list(userId: string, now: number): Promise<IndexEntry[]> {
    return entriesOf(await this.#run(userId, now, "list", []));
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
    const key = this.keyOf(userId);
    const tail = [key, String(Math.floor(now)), op, ...args];
    try {
      return await this.#send(key, ["EVALSHA", SHA, "1", ...tail]);
    } catch (error) {
      if (!(error instanceof Error && error.message.startsWith("NOSCRIPT"))) throw error;
      return this.#send(key, ["EVAL", INDEX, "1", ...tail]);
    }
  }
}
