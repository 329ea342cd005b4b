import {
  deadlineOf,
  type LockStore,
  MAX_LIFETIME_SECS,
  newFields,
  type RecordStore,
  renewsIdle,
  type SessionMeta,
  type SessionWrite,
  type StoredSession,
  type WriteMode,
} from "coatcheck/adapter-kit";

interface Row {
  fields: Map<string, string>;
  meta: SessionMeta;
  deadline: number;
}

/** When a record touched at `now` dies; never later than 400 days from now. */
const deadlineAt = (meta: SessionMeta, now: number) =>
  Math.min(deadlineOf(meta, now), now + MAX_LIFETIME_SECS * 1000);

/**
 * The smallest store that keeps coatcheck's contract: records in a Map, for one process. A real
 * store does the same against its database, each method as one atomic operation there. It passes
 * the conformance kit (`test/examples/custom-store.test.ts` runs `coatcheck/testing` on it).
 */
export class MapStore implements RecordStore, LockStore {
  readonly inProcess = true;
  readonly #rows = new Map<string, Row>();
  readonly #locks = new Map<string, { token: string; until: number }>();

  #live(id: string, now: number): Row | undefined {
    const row = this.#rows.get(id);
    if (row !== undefined && row.deadline <= now) this.#rows.delete(id);
    return row !== undefined && row.deadline > now ? row : undefined;
  }

  #out(row: Row): StoredSession {
    // An object that inherits nothing, so a key such as `__proto__` stays a plain key.
    const fields = newFields();
    for (const [key, text] of row.fields) fields[key] = text;
    return { fields, meta: { ...row.meta } };
  }

  async load(id: string, now: number): Promise<StoredSession | null> {
    const row = this.#live(id, now);
    if (row === undefined) return null;
    // Renew the idle deadline only once it would move by more than a tenth of the timeout.
    const renewed = deadlineAt(row.meta, now);
    if (renewsIdle(row.meta.idleMs, row.deadline, renewed)) row.deadline = renewed;
    return this.#out(row);
  }

  async write(id: string, w: SessionWrite, mode: WriteMode, now: number): Promise<boolean> {
    let row = this.#live(id, now);
    if (mode === "create") {
      if (row !== undefined || w.meta === undefined) return false;
      row = { fields: new Map(), meta: { ...w.meta }, deadline: 0 };
      this.#rows.set(id, row);
    } else if (row === undefined) {
      return false; // never bring back a destroyed, cycled or expired record
    } else if (w.meta !== undefined) {
      row.meta = { ...w.meta };
    }
    for (const key of Object.keys(w.set)) row.fields.set(key, w.set[key] as string);
    for (const key of w.del) row.fields.delete(key);
    if (row.fields.size === 0) this.#rows.delete(id);
    else row.deadline = deadlineAt(row.meta, now);
    return true;
  }

  async destroy(id: string): Promise<void> {
    this.#rows.delete(id);
  }

  async claim(id: string, now: number): Promise<StoredSession | null> {
    const row = this.#live(id, now);
    this.#rows.delete(id);
    return row === undefined ? null : this.#out(row);
  }

  async take(id: string, keys: readonly string[]): Promise<Record<string, string>> {
    const taken = newFields();
    const row = this.#rows.get(id);
    if (row === undefined) return taken;
    for (const key of keys) {
      const text = row.fields.get(key);
      if (text === undefined) continue;
      taken[key] = text;
      row.fields.delete(key);
    }
    if (row.fields.size === 0) this.#rows.delete(id);
    return taken;
  }

  async acquireLock(id: string, token: string, ttlMs: number): Promise<boolean> {
    const held = this.#locks.get(id);
    if (held !== undefined && held.until > Date.now() && held.token !== token) return false;
    this.#locks.set(id, { token, until: Date.now() + ttlMs });
    return true;
  }

  async releaseLock(id: string, token: string): Promise<void> {
    if (this.#locks.get(id)?.token === token) this.#locks.delete(id);
  }
}
