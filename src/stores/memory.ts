import { deadlineOf, MAX_LIFETIME_SECS, renewsIdle, type SessionMeta } from "../core/expiry.js";
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
import { MemoryUserIndex } from "./memory-index.js";

/** No record outlives the longest cookie a browser keeps, whatever its metadata says. */
const MAX_LIFETIME_MS = MAX_LIFETIME_SECS * 1000;

function deadlineAt(meta: SessionMeta, now: number): number {
  return Math.min(deadlineOf(meta, now), now + MAX_LIFETIME_MS);
}

/** Options of {@link MemoryStore}. */
export interface MemoryStoreOptions {
  /**
   * Most records kept. When a new record would exceed it, expired records are reclaimed first, then
   * the record closest to its real deadline (idle renewal included) is evicted: it had the least
   * time left to live anyway, and an active session is never evicted before an idle one (renewal
   * counts from the last load that moved the deadline: see `IDLE_RENEWAL_FRACTION`).
   * Default 100 000.
   */
  maxSessions?: number;
}

/**
 * One record, laid out as a single array: `[deadline, createdAt, absoluteAt, idleMs, maxAgeSecs,
 * key0, text0, key1, text1, …]`. One array per record, with no object around it and no metadata
 * object inside, is the smallest layout V8 offers for a handful of keys (`bench/memory.mjs`
 * measures it); lookups scan the pairs, which for a session's few keys is as fast as hashing.
 *
 * The deadline and `absoluteAt` are kept as offsets from `createdAt`: an offset under 24 days is a
 * small integer, stored inline, where an epoch time needs a heap number of its own. An offset that
 * would not give the time back exactly (fractional clocks) is kept as the time itself, in a
 * one-element array.
 */
type Time = number | [number];
type Entry = (string | number | undefined | Time)[];
const DEADLINE = 0;
const CREATED = 1;
const ABSOLUTE = 2;
const IDLE = 3;
const MAX_AGE = 4;
/** Index of the first key. */
const PAIRS = 5;

/** `time` as stored in a record created at `createdAt`. */
function offset(time: number, createdAt: number): Time {
  const delta = time - createdAt;
  return createdAt + delta === time ? delta : [time];
}

function timeAt(entry: Entry, slot: number): number {
  const value = entry[slot] as Time;
  return typeof value === "number" ? (entry[CREATED] as number) + value : value[0];
}

/** Epoch ms after which the record is dead. */
const deadlineOfEntry = (entry: Entry) => timeAt(entry, DEADLINE);

function setDeadline(entry: Entry, deadline: number): void {
  entry[DEADLINE] = offset(deadline, entry[CREATED] as number);
}

function newEntry(meta: SessionMeta, deadline: number, set: Record<string, string>): Entry {
  const keys = Object.keys(set);
  // Exactly sized: `push` would grow the backing store beyond what a small session needs.
  const entry: Entry = new Array(PAIRS + keys.length * 2);
  writeMeta(entry, meta);
  setDeadline(entry, deadline);
  for (let i = 0; i < keys.length; i++) {
    entry[PAIRS + 2 * i] = keys[i] as string;
    entry[PAIRS + 2 * i + 1] = set[keys[i] as string] as string;
  }
  return entry;
}

/** Store `meta`; a deadline already stored keeps its time (its offset base may change). */
function writeMeta(entry: Entry, meta: SessionMeta): void {
  const deadline = entry[DEADLINE] === undefined ? undefined : deadlineOfEntry(entry);
  entry[CREATED] = meta.createdAt;
  entry[ABSOLUTE] = offset(meta.absoluteAt, meta.createdAt);
  entry[IDLE] = meta.idleMs;
  entry[MAX_AGE] = meta.maxAgeSecs;
  if (deadline !== undefined) setDeadline(entry, deadline);
}

function metaOf(entry: Entry): SessionMeta {
  const meta: SessionMeta = {
    createdAt: entry[CREATED] as number,
    absoluteAt: timeAt(entry, ABSOLUTE),
    idleMs: entry[IDLE] as number,
  };
  if (entry[MAX_AGE] !== undefined) meta.maxAgeSecs = entry[MAX_AGE] as number;
  return meta;
}

/** A fresh copy of the fields, inheriting nothing (`__proto__` is a plain key). */
function fieldsOf(entry: Entry): Record<string, string> {
  const out = newFields();
  for (let i = PAIRS; i < entry.length; i += 2) out[entry[i] as string] = entry[i + 1] as string;
  return out;
}

function getField(entry: Entry, key: string): string | undefined {
  for (let i = PAIRS; i < entry.length; i += 2) if (entry[i] === key) return entry[i + 1] as string;
  return undefined;
}

function setField(entry: Entry, key: string, text: string): void {
  for (let i = PAIRS; i < entry.length; i += 2) {
    if (entry[i] === key) {
      entry[i + 1] = text;
      return;
    }
  }
  entry.push(key, text);
}

function deleteField(entry: Entry, key: string): void {
  for (let i = PAIRS; i < entry.length; i += 2) {
    if (entry[i] === key) {
      entry.splice(i, 2);
      return;
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
export class MemoryStore implements RecordStore, LockStore, UserIndexStore {
  /** Tells the engine that operations cannot hang, so no timeout race is needed. */
  readonly inProcess = true;
  /** Every load builds its records anew: the engine keeps them without a copy. */
  readonly loadsFresh = true;
  readonly #entries = new Map<string, Entry>();
  readonly #locks = new Map<string, { token: string; until: number }>();
  readonly #index = new MemoryUserIndex();
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
    return this.loadNow(id, now);
  }

  /** {@link MemoryStore.load} without the promise: the engine reads this store in the same turn. */
  loadNow(id: string, now: number): StoredSession | null {
    this.#reclaim(now, 8);
    const entry = this.#entries.get(id);
    if (entry === undefined) return null;
    const deadline = deadlineOfEntry(entry);
    if (deadline <= now) {
      this.#entries.delete(id);
      return null;
    }
    const idle = entry[IDLE] as number;
    if (idle > 0) {
      const renewed = deadlineAt(metaOf(entry), now);
      if (renewsIdle(idle, deadline, renewed)) setDeadline(entry, renewed);
    }
    return { fields: fieldsOf(entry), meta: metaOf(entry) };
  }

  async write(id: string, write: SessionWrite, mode: WriteMode, now: number): Promise<boolean> {
    this.#reclaim(now, 8);
    let entry = this.#entries.get(id);
    if (entry !== undefined && deadlineOfEntry(entry) <= now) {
      this.#entries.delete(id);
      entry = undefined;
    }
    if (mode === "create" ? entry !== undefined : entry === undefined) return false;
    if (entry === undefined) {
      if (write.meta === undefined) return false; // a create always carries its metadata
      const deadline = deadlineAt(write.meta, now);
      if (this.#entries.size >= this.#max) this.#makeRoom(now);
      this.#entries.set(id, newEntry(write.meta, deadline, write.set));
      this.#push(deadline, id);
      return true;
    }
    for (const key of Object.keys(write.set)) setField(entry, key, write.set[key] as string);
    for (const key of write.del) deleteField(entry, key);
    if (write.meta !== undefined) writeMeta(entry, write.meta);
    const deadline = deadlineAt(metaOf(entry), now);
    // The heap entry must never be later than the deadline: a shortened lifetime is queued anew.
    if (deadline < deadlineOfEntry(entry)) this.#push(deadline, id);
    setDeadline(entry, deadline);
    if (entry.length === PAIRS) this.#entries.delete(id);
    return true;
  }

  async destroy(id: string): Promise<void> {
    this.#entries.delete(id);
  }

  async claim(id: string, now: number): Promise<StoredSession | null> {
    const entry = this.#entries.get(id);
    if (entry === undefined) return null;
    this.#entries.delete(id);
    if (deadlineOfEntry(entry) <= now) return null;
    return { fields: fieldsOf(entry), meta: metaOf(entry) };
  }

  async take(id: string, keys: readonly string[]): Promise<Record<string, string>> {
    const out = newFields();
    const entry = this.#entries.get(id);
    if (entry === undefined) return out;
    for (const key of keys) {
      const text = getField(entry, key);
      if (text === undefined) continue;
      out[key] = text;
      deleteField(entry, key);
    }
    return out;
  }

  async acquireLock(id: string, token: string, ttlMs: number): Promise<boolean> {
    const now = performance.now();
    const held = this.#locks.get(id);
    if (held !== undefined && held.until > now) return false;
    this.#locks.set(id, { token, until: now + ttlMs });
    return true;
  }

  async releaseLock(id: string, token: string): Promise<void> {
    if (this.#locks.get(id)?.token === token) this.#locks.delete(id);
  }

  async indexPut(
    userId: string,
    entry: IndexEntry,
    id: string,
    replaces: string | null,
    now: number,
  ): Promise<number> {
    return this.#index.put(userId, entry, id, replaces, now);
  }

  async indexRemove(
    userId: string,
    selection: IndexSelection,
    now: number,
    destroy: boolean,
  ): Promise<IndexEntry[]> {
    return this.#index.remove(userId, selection, now, (id) => {
      if (destroy) this.#entries.delete(id);
    });
  }

  async indexList(userId: string, now: number): Promise<IndexEntry[]> {
    return this.#index.list(userId, now);
  }

  async peek(
    refs: readonly string[],
    now: number,
  ): Promise<Array<{ deadline: number; meta: SessionMeta } | null>> {
    return refs.map((ref) => {
      const id = this.#index.idOf(ref);
      const entry = id === undefined ? undefined : this.#entries.get(id);
      if (entry === undefined) return null;
      const deadline = deadlineOfEntry(entry);
      return deadline <= now ? null : { deadline, meta: metaOf(entry) };
    });
  }

  async close(): Promise<void> {
    this.#entries.clear();
    this.#locks.clear();
    this.#index.clear();
    this.#heapAt = [];
    this.#heapId = [];
  }

  /** Reclaim up to `budget` records whose heap entry is due. */
  #reclaim(now: number, budget: number): void {
    while (budget-- > 0 && this.#heapAt.length > 0 && (this.#heapAt[0] as number) <= now) {
      // A current entry that is due is an expired record; an early one was queued again.
      const id = this.#popCurrent();
      if (id !== null) this.#entries.delete(id);
    }
  }

  /**
   * Evict the records closest to their real deadline until there is room. Heap entries of renewed
   * records are early: they are queued again at the real deadline rather than evicted, so the heap
   * top is always the record with the least time left.
   */
  #makeRoom(now: number): void {
    this.#reclaim(now, 64);
    while (this.#entries.size >= this.#max && this.#heapAt.length > 0) {
      const id = this.#popCurrent();
      if (id !== null) this.#entries.delete(id);
    }
  }

  /**
   * Pop the heap top. Returns its id when the entry is current (its time is the record's deadline);
   * an early entry (renewed since) is queued again at the real deadline, and an entry of a record
   * that is gone or queued anew elsewhere is dropped: both return null.
   */
  #popCurrent(): string | null {
    const at = this.#heapAt[0] as number;
    const id = this.#pop();
    const entry = this.#entries.get(id);
    if (entry === undefined || at > deadlineOfEntry(entry)) return null;
    if (at < deadlineOfEntry(entry)) {
      this.#push(deadlineOfEntry(entry), id);
      return null;
    }
    return id;
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
    const live = [...this.#entries].sort((a, b) => deadlineOfEntry(a[1]) - deadlineOfEntry(b[1]));
    for (const [id, entry] of live) {
      this.#heapAt.push(deadlineOfEntry(entry));
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
