import { randomBytes } from "node:crypto";
import { deadlineOf, type SessionMeta } from "../core/expiry.js";
import type { SessionStore, SessionWrite, StoredSession, WriteMode } from "../core/store.js";

/** Options of {@link MemoryStore}. */
export interface MemoryStoreOptions {
  /**
   * Most records kept. When a new record would exceed it, expired records are reclaimed first, then
   * the record closest to its deadline is evicted (it had the least time left to live anyway).
   * Default 100 000.
   */
  maxSessions?: number;
}

/**
 * One record, laid out flat. A class instance with a fixed shape and one array of alternating keys
 * and JSON texts is several times smaller in V8 than a dictionary-mode (null-prototype) object plus
 * a metadata object; `bench/memory.mjs` measures the difference. Lookups scan the array, which for
 * the handful of keys a session holds is as fast as hashing.
 */
class Entry {
  /** `[key0, text0, key1, text1, …]`. */
  pairs: string[];
  createdAt: number;
  absoluteAt: number;
  idleMs: number;
  maxAgeSecs: number | undefined;
  /** Epoch ms after which the record is dead. */
  deadline: number;

  constructor(meta: SessionMeta, deadline: number) {
    this.pairs = [];
    this.createdAt = meta.createdAt;
    this.absoluteAt = meta.absoluteAt;
    this.idleMs = meta.idleMs;
    this.maxAgeSecs = meta.maxAgeSecs;
    this.deadline = deadline;
  }

  get meta(): SessionMeta {
    const meta: SessionMeta = {
      createdAt: this.createdAt,
      absoluteAt: this.absoluteAt,
      idleMs: this.idleMs,
    };
    if (this.maxAgeSecs !== undefined) meta.maxAgeSecs = this.maxAgeSecs;
    return meta;
  }

  set meta(meta: SessionMeta) {
    this.createdAt = meta.createdAt;
    this.absoluteAt = meta.absoluteAt;
    this.idleMs = meta.idleMs;
    this.maxAgeSecs = meta.maxAgeSecs;
  }

  /** A fresh copy of the fields, with a null prototype (`__proto__` is a plain key). */
  fields(): Record<string, string> {
    const out = Object.create(null) as Record<string, string>;
    const pairs = this.pairs;
    for (let i = 0; i < pairs.length; i += 2) out[pairs[i] as string] = pairs[i + 1] as string;
    return out;
  }

  get(key: string): string | undefined {
    const pairs = this.pairs;
    for (let i = 0; i < pairs.length; i += 2) if (pairs[i] === key) return pairs[i + 1];
    return undefined;
  }

  set(key: string, text: string): void {
    const pairs = this.pairs;
    for (let i = 0; i < pairs.length; i += 2) {
      if (pairs[i] === key) {
        pairs[i + 1] = text;
        return;
      }
    }
    pairs.push(key, text);
  }

  delete(key: string): void {
    const pairs = this.pairs;
    for (let i = 0; i < pairs.length; i += 2) {
      if (pairs[i] === key) {
        pairs.splice(i, 2);
        return;
      }
    }
  }
}

/**
 * Sessions in this process's memory: for development, tests and single-process apps.
 *
 * - Values are JSON text, so nothing a caller holds aliases what is stored.
 * - Expired records are reclaimed incrementally: a min-heap orders records by deadline, and each
 *   call pops a few that are due. Idle renewal only moves a record's deadline later, so its heap
 *   entry may fire early; it is then pushed again with the current deadline (lazy re-keying), which
 *   keeps renewal free of heap work. No call scans all records.
 * - Same semantics as the Redis store: per-key merges, create-if-absent, update-if-present,
 *   atomic take and claim, a per-session lock.
 */
export class MemoryStore implements SessionStore {
  /** Tells the engine that operations cannot hang, so no timeout race is needed. */
  readonly inProcess = true;
  readonly #entries = new Map<string, Entry>();
  readonly #locks = new Map<string, { token: string; until: number }>();
  readonly #max: number;
  // Min-heap of (deadline, id) in two parallel arrays.
  #heapAt: number[] = [];
  #heapId: string[] = [];

  constructor(options: MemoryStoreOptions = {}) {
    this.#max = options.maxSessions ?? 100_000;
  }

  /** Number of live records (expired ones not yet reclaimed included). */
  get size(): number {
    return this.#entries.size;
  }

  /** Records held and expiry entries scheduled, for monitoring (entries ≤ 2 × records + 1024). */
  stats(): { records: number; scheduled: number } {
    return { records: this.#entries.size, scheduled: this.#heapAt.length };
  }

  async load(id: string, now: number): Promise<StoredSession | null> {
    this.#reclaim(now, 8);
    const entry = this.#entries.get(id);
    if (entry === undefined) return null;
    if (entry.deadline <= now) {
      this.#entries.delete(id);
      return null;
    }
    entry.deadline = deadlineOf(entry, now);
    return { fields: entry.fields(), meta: entry.meta };
  }

  async write(id: string, write: SessionWrite, mode: WriteMode, now: number): Promise<boolean> {
    this.#reclaim(now, 8);
    let entry = this.#entries.get(id);
    if (entry !== undefined && entry.deadline <= now) {
      this.#entries.delete(id);
      entry = undefined;
    }
    if (mode === "create" ? entry !== undefined : entry === undefined) return false;
    const deadline = deadlineOf(write.meta, now);
    if (entry === undefined) {
      if (this.#entries.size >= this.#max) this.#makeRoom(now);
      entry = new Entry(write.meta, deadline);
      const keys = Object.keys(write.set);
      // Exactly sized: `push` would grow the backing store to 17 slots for a two-key session.
      const pairs = new Array<string>(keys.length * 2);
      for (let i = 0; i < keys.length; i++) {
        pairs[2 * i] = keys[i] as string;
        pairs[2 * i + 1] = write.set[keys[i] as string] as string;
      }
      entry.pairs = pairs;
      this.#entries.set(id, entry);
      this.#push(deadline, id);
      return true;
    }
    for (const key of Object.keys(write.set)) entry.set(key, write.set[key] as string);
    for (const key of write.del) entry.delete(key);
    entry.meta = write.meta;
    entry.deadline = deadline;
    if (entry.pairs.length === 0) this.#entries.delete(id);
    return true;
  }

  async destroy(id: string): Promise<void> {
    this.#entries.delete(id);
  }

  async claim(id: string, now: number): Promise<StoredSession | null> {
    const entry = this.#entries.get(id);
    if (entry === undefined) return null;
    this.#entries.delete(id);
    if (entry.deadline <= now) return null;
    return { fields: entry.fields(), meta: entry.meta };
  }

  async take(id: string, keys: readonly string[]): Promise<Record<string, string>> {
    const out = Object.create(null) as Record<string, string>;
    const entry = this.#entries.get(id);
    if (entry === undefined) return out;
    for (const key of keys) {
      const text = entry.get(key);
      if (text === undefined) continue;
      out[key] = text;
      entry.delete(key);
    }
    return out;
  }

  async tryLock(id: string, ttlMs: number): Promise<string | null> {
    const now = performance.now();
    const held = this.#locks.get(id);
    if (held !== undefined && held.until > now) return null;
    const token = randomBytes(12).toString("base64url");
    this.#locks.set(id, { token, until: now + ttlMs });
    return token;
  }

  async unlock(id: string, token: string): Promise<void> {
    if (this.#locks.get(id)?.token === token) this.#locks.delete(id);
  }

  async close(): Promise<void> {
    this.#entries.clear();
    this.#locks.clear();
    this.#heapAt = [];
    this.#heapId = [];
  }

  /** Reclaim up to `budget` records whose heap entry is due. */
  #reclaim(now: number, budget: number): void {
    while (budget-- > 0 && this.#heapAt.length > 0 && (this.#heapAt[0] as number) <= now) {
      const id = this.#pop();
      const entry = this.#entries.get(id);
      if (entry === undefined) continue;
      if (entry.deadline <= now) this.#entries.delete(id);
      else this.#push(entry.deadline, id); // renewed since it was queued
    }
  }

  #makeRoom(now: number): void {
    this.#reclaim(now, 64);
    while (this.#entries.size >= this.#max && this.#heapAt.length > 0) {
      this.#entries.delete(this.#pop());
    }
  }

  #push(at: number, id: string): void {
    // Destroyed and moved records leave their heap entries behind until due; rebuild when they
    // outnumber the live ones so the heap stays proportional to the records.
    if (this.#heapAt.length > 2 * this.#entries.size + 1024) this.#rebuild();
    const ats = this.#heapAt;
    const ids = this.#heapId;
    let i = ats.length;
    ats.push(at);
    ids.push(id);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((ats[parent] as number) <= at) break;
      ats[i] = ats[parent] as number;
      ids[i] = ids[parent] as string;
      i = parent;
    }
    ats[i] = at;
    ids[i] = id;
  }

  #rebuild(): void {
    this.#heapAt = [];
    this.#heapId = [];
    const live = [...this.#entries].sort((a, b) => a[1].deadline - b[1].deadline);
    for (const [id, entry] of live) {
      this.#heapAt.push(entry.deadline);
      this.#heapId.push(id);
    }
  }

  #pop(): string {
    const ats = this.#heapAt;
    const ids = this.#heapId;
    const top = ids[0] as string;
    const lastAt = ats.pop() as number;
    const lastId = ids.pop() as string;
    const n = ats.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        let child = 2 * i + 1;
        if (child >= n) break;
        if (child + 1 < n && (ats[child + 1] as number) < (ats[child] as number)) child++;
        if ((ats[child] as number) >= lastAt) break;
        ats[i] = ats[child] as number;
        ids[i] = ids[child] as string;
        i = child;
      }
      ats[i] = lastAt;
      ids[i] = lastId;
    }
    return top;
  }
}
