import type { IndexEntry, IndexSelection } from "../core/store.js";

/** An entry and the session id it stands for (kept in process only). */
interface Held {
  entry: IndexEntry;
  id: string;
}

/**
 * The memory store's per-user session index: entries by user, then by ref, each with the id of
 * its record (this index never leaves the process). Entries past their deadline are dropped
 * whenever their user's index is touched, and a user without entries is forgotten.
 */
export class MemoryUserIndex {
  readonly #users = new Map<string, Map<string, Held>>();
  /** The session id of every ref held, for `peek` and `destroyRefs`. */
  readonly #ids = new Map<string, string>();

  /** Live entries of `userId`, pruned; the user's map, or undefined when it has none. */
  #live(userId: string, now: number): Map<string, Held> | undefined {
    const held = this.#users.get(userId);
    if (held === undefined) return undefined;
    for (const [ref, h] of held) if (h.entry.deadline <= now) this.#drop(held, ref);
    if (held.size === 0) this.#users.delete(userId);
    return held.size === 0 ? undefined : held;
  }

  #drop(held: Map<string, Held>, ref: string): void {
    held.delete(ref);
    this.#ids.delete(ref);
  }

  /** The session id of `ref`, when an entry holds it. */
  idOf(ref: string): string | undefined {
    return this.#ids.get(ref);
  }

  put(userId: string, entry: IndexEntry, id: string, replaces: string | null, now: number) {
    const held = this.#live(userId, now) ?? new Map<string, Held>();
    if (replaces !== null && !held.has(replaces)) return false;
    if (replaces !== null) this.#drop(held, replaces);
    for (const [ref, h] of held) {
      if (ref === entry.ref || h.entry.handle === entry.handle) this.#drop(held, ref);
    }
    held.set(entry.ref, { entry: { ...entry }, id });
    this.#ids.set(entry.ref, id);
    this.#users.set(userId, held);
    return true;
  }

  /** Remove the selected entries; `destroyed` gets the session id of each. */
  remove(
    userId: string,
    selection: IndexSelection,
    now: number,
    destroyed: (id: string) => void,
  ): IndexEntry[] {
    const held = this.#live(userId, now);
    if (held === undefined) return [];
    const removed: IndexEntry[] = [];
    for (const [ref, { entry, id }] of held) {
      const hit =
        "refs" in selection
          ? selection.refs.includes(ref)
          : "handles" in selection
            ? selection.handles.includes(entry.handle)
            : entry.handle !== selection.allExcept;
      if (!hit) continue;
      removed.push({ ...entry });
      this.#drop(held, ref);
      destroyed(id);
    }
    if (held.size === 0) this.#users.delete(userId);
    return removed;
  }

  list(userId: string, now: number): IndexEntry[] {
    const held = this.#live(userId, now);
    return held === undefined ? [] : [...held.values()].map((h) => ({ ...h.entry }));
  }

  clear(): void {
    this.#users.clear();
    this.#ids.clear();
  }
}
