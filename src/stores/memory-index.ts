import type { IndexEntry, IndexSelection } from "../core/store.js";

/** An entry and the session id it stands for (kept in process only). */
interface Held {
  entry: IndexEntry;
  id: string;
}

/**
 * One user's entries: by ref, the ref of each handle, and a min-heap of `[deadline, ref]` to find
 * the expired ones without a scan. The heap is lazy: an item whose ref is gone, or now has another
 * deadline, is skipped when it comes up, and the heap is rebuilt once it holds twice the entries.
 */
class UserEntries {
  readonly byRef = new Map<string, Held>();
  readonly byHandle = new Map<string, string>();
  #heap: Array<[number, string]> = [];

  add(held: Held): void {
    this.byRef.set(held.entry.ref, held);
    this.byHandle.set(held.entry.handle, held.entry.ref);
    this.#push([held.entry.deadline, held.entry.ref]);
    if (this.#heap.length > 2 * this.byRef.size + 16) {
      this.#heap = [];
      for (const h of this.byRef.values()) this.#push([h.entry.deadline, h.entry.ref]);
    }
  }

  /** Forget `ref`; returns what it held. */
  delete(ref: string): Held | undefined {
    const held = this.byRef.get(ref);
    if (held === undefined) return undefined;
    this.byRef.delete(ref);
    if (this.byHandle.get(held.entry.handle) === ref) this.byHandle.delete(held.entry.handle);
    return held;
  }

  /** Refs of the entries past their deadline, each taken off the heap (O(log n) apiece). */
  expired(now: number): string[] {
    const out: string[] = [];
    const heap = this.#heap;
    while (heap.length > 0 && (heap[0] as [number, string])[0] <= now) {
      const [deadline, ref] = this.#pop();
      if (this.byRef.get(ref)?.entry.deadline === deadline) out.push(ref);
    }
    return out;
  }

  #push(item: [number, string]): void {
    const heap = this.#heap;
    heap.push(item);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((heap[parent] as [number, string])[0] <= item[0]) break;
      heap[i] = heap[parent] as [number, string];
      i = parent;
    }
    heap[i] = item;
  }

  #pop(): [number, string] {
    const heap = this.#heap;
    const top = heap[0] as [number, string];
    const last = heap.pop() as [number, string];
    if (heap.length === 0) return top;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const child =
        right < heap.length &&
        (heap[right] as [number, string])[0] < (heap[left] as [number, string])[0]
          ? right
          : left;
      if ((heap[child] as [number, string])[0] >= last[0]) break;
      heap[i] = heap[child] as [number, string];
      i = child;
    }
    heap[i] = last;
    return top;
  }
}

/**
 * The memory store's per-user session index: entries by user, then by ref (and by handle), each
 * with the id of its record (this index never leaves the process). Entries past their deadline
 * are dropped whenever their user's index is touched, found through a heap by deadline so that a
 * put or a removal of named entries costs O(log n), and a user without entries is forgotten.
 */
export class MemoryUserIndex {
  readonly #users = new Map<string, UserEntries>();
  /** The session id of every ref held, for `peek` and `destroyRefs`. */
  readonly #ids = new Map<string, string>();

  /** Live entries of `userId`, pruned; undefined when it has none. */
  #live(userId: string, now: number): UserEntries | undefined {
    const held = this.#users.get(userId);
    if (held === undefined) return undefined;
    for (const ref of held.expired(now)) this.#drop(held, ref);
    if (held.byRef.size === 0) this.#users.delete(userId);
    return held.byRef.size === 0 ? undefined : held;
  }

  #drop(held: UserEntries, ref: string): Held | undefined {
    const gone = held.delete(ref);
    if (gone !== undefined) this.#ids.delete(ref);
    return gone;
  }

  /** The session id of `ref`, when an entry holds it. */
  idOf(ref: string): string | undefined {
    return this.#ids.get(ref);
  }

  /** The user's entry count after the put, or 0 when `replaces` names no entry. */
  put(userId: string, entry: IndexEntry, id: string, replaces: string | null, now: number) {
    const held = this.#live(userId, now) ?? new UserEntries();
    if (replaces !== null && !held.byRef.has(replaces)) return 0;
    if (replaces !== null) this.#drop(held, replaces);
    this.#drop(held, entry.ref);
    const sameHandle = held.byHandle.get(entry.handle);
    if (sameHandle !== undefined) this.#drop(held, sameHandle);
    held.add({ entry: { ...entry }, id });
    this.#ids.set(entry.ref, id);
    this.#users.set(userId, held);
    return held.byRef.size;
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
    const refs =
      "refs" in selection
        ? selection.refs
        : "handles" in selection
          ? selection.handles.flatMap((h) => held.byHandle.get(h) ?? [])
          : [...held.byRef.keys()].filter(
              (ref) => held.byRef.get(ref)?.entry.handle !== selection.allExcept,
            );
    const removed: IndexEntry[] = [];
    for (const ref of refs) {
      const gone = this.#drop(held, ref);
      if (gone === undefined) continue;
      removed.push({ ...gone.entry });
      destroyed(gone.id);
    }
    if (held.byRef.size === 0) this.#users.delete(userId);
    return removed;
  }

  list(userId: string, now: number): IndexEntry[] {
    const held = this.#live(userId, now);
    return held === undefined ? [] : [...held.byRef.values()].map((h) => ({ ...h.entry }));
  }

  clear(): void {
    this.#users.clear();
    this.#ids.clear();
  }
}
