import type { IndexEntry, IndexSelection } from "../core/store.js";

/**
 * The memory store's per-user session index: entries by user, then by session id. Entries past
 * their deadline are dropped whenever their user's index is touched, and a user without entries
 * is forgotten.
 */
export class MemoryUserIndex {
  readonly #users = new Map<string, Map<string, IndexEntry>>();

  /** Live entries of `userId`, pruned; the user's map, or undefined when it has none. */
  #live(userId: string, now: number): Map<string, IndexEntry> | undefined {
    const entries = this.#users.get(userId);
    if (entries === undefined) return undefined;
    for (const [id, entry] of entries) if (entry.deadline <= now) entries.delete(id);
    if (entries.size === 0) this.#users.delete(userId);
    return entries.size === 0 ? undefined : entries;
  }

  put(userId: string, entry: IndexEntry, replaces: string | null, now: number): boolean {
    const entries = this.#live(userId, now) ?? new Map<string, IndexEntry>();
    if (replaces !== null && !entries.has(replaces)) return false;
    if (replaces !== null) entries.delete(replaces);
    for (const [id, other] of entries) {
      if (id === entry.id || other.handle === entry.handle) entries.delete(id);
    }
    entries.set(entry.id, { ...entry });
    this.#users.set(userId, entries);
    return true;
  }

  remove(userId: string, selection: IndexSelection, now: number): IndexEntry[] {
    const entries = this.#live(userId, now);
    if (entries === undefined) return [];
    const removed: IndexEntry[] = [];
    for (const [id, entry] of entries) {
      const hit =
        "ids" in selection
          ? selection.ids.includes(id)
          : "handles" in selection
            ? selection.handles.includes(entry.handle)
            : entry.handle !== selection.allExcept;
      if (!hit) continue;
      entries.delete(id);
      removed.push({ ...entry });
    }
    if (entries.size === 0) this.#users.delete(userId);
    return removed;
  }

  list(userId: string, now: number): IndexEntry[] {
    const entries = this.#live(userId, now);
    return entries === undefined ? [] : [...entries.values()].map((e) => ({ ...e }));
  }

  /** Entries held, all users together (expired ones not yet pruned included). */
  get size(): number {
    let n = 0;
    for (const entries of this.#users.values()) n += entries.size;
    return n;
  }

  clear(): void {
    this.#users.clear();
  }
}
