import type { SessionMeta } from "../core/expiry.js";
import type { IndexEntry, IndexSelection } from "../core/store.js";
import type { TableNames } from "./postgres-sql.js";

/**
 * The PostgreSQL store's per-user session index: rows of `<table>_users`, one per signed-in
 * session, keyed by (user, handle) and naming the session by its row id (`sha256(id)`), never the
 * id. Each operation is one statement; rows past their deadline are deleted whenever their user's
 * index is written, and by the store's sweep.
 */

/** Runs one statement (the store's own runner: it creates missing tables when told to). */
export type IndexQuery = (text: string, values: unknown[]) => Promise<{ rows: unknown[] }>;

interface EntryRow {
  handle: string;
  ref: Buffer;
  created_at: string | number;
  updated_at: string | number;
  deadline: string | number;
  user_agent: string | null;
  address: string | null;
}

const ms = (n: number) => String(Math.floor(n));
const COLUMNS = "handle, ref, created_at, updated_at, deadline, user_agent, address";

function entryOf(row: EntryRow): IndexEntry {
  return {
    ref: row.ref.toString("base64url"),
    handle: row.handle,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
    deadline: Number(row.deadline),
    userAgent: row.user_agent,
    address: row.address,
  };
}

export class PostgresUserIndex {
  readonly #query: IndexQuery;
  readonly #names: TableNames;

  constructor(query: IndexQuery, names: TableNames) {
    this.#query = query;
    this.#names = names;
  }

  /** `DELETE` of this user's rows past their deadline, as a CTE. */
  #prune(): string {
    return `pruned AS (DELETE FROM ${this.#names.users} WHERE user_id = $1::text AND deadline <= $2::bigint)`;
  }

  /**
   * One statement without a limit, two with one. Rows are found by the indexes on (user, handle),
   * (user, ref) and (user, deadline), so its cost does not grow with the user's rows; the count it
   * returns stops at `limit + 1` (just 1 without a limit), since counting rows is a scan.
   *
   * With a limit the count is a statement of its own, after the put: a count in the put's own
   * statement sees the rows as of its snapshot, so concurrent sign-ins of one user would each miss
   * the others' and all report "under the limit". Counted afterwards, the last one sees them all.
   */
  async put(
    userId: string,
    entry: IndexEntry,
    replaces: string | null,
    now: number,
    limit: number,
  ): Promise<number> {
    const max = Math.max(0, Math.floor(limit));
    const n = await this.#put(userId, entry, replaces, now);
    if (n === 0 || max === 0) return n;
    const { rows } = await this.#query(
      `SELECT count(*)::integer AS n FROM (SELECT 1 FROM ${this.#names.users}
WHERE user_id = $1::text AND deadline > $2::bigint LIMIT $3::integer) AS live`,
      [userId, ms(now), max + 1],
    );
    // At least the row just written, unless it was removed meanwhile: then it is not over.
    return Number((rows[0] as { n: unknown } | undefined)?.n) || 1;
  }

  /** The put itself: 1 when written, 0 when `replaces` names no live row. */
  async #put(
    userId: string,
    entry: IndexEntry,
    replaces: string | null,
    now: number,
  ): Promise<number> {
    const u = this.#names.users;
    const values = [
      userId,
      ms(now),
      entry.handle,
      Buffer.from(entry.ref, "base64url"),
      ms(entry.createdAt),
      ms(entry.updatedAt),
      ms(entry.deadline),
      entry.userAgent,
      entry.address,
    ];
    const expires = "now() + ($7::bigint - $2::bigint) * interval '1 millisecond'";
    if (replaces !== null) {
      // The entry of `replaces` becomes this one, in place: only while it is still there.
      const { rows } = await this.#query(
        `WITH ${this.#prune()}
UPDATE ${u} SET handle = $3::text, ref = $4::bytea, created_at = $5::bigint, updated_at = $6::bigint,
  deadline = $7::bigint, expires_at = ${expires}, user_agent = $8::text, address = $9::text
WHERE user_id = $1::text AND ref = $10::bytea AND deadline > $2::bigint
RETURNING 1`,
        [...values, Buffer.from(replaces, "base64url")],
      );
      return rows.length > 0 ? 1 : 0;
    }
    await this.#query(
      `WITH ${this.#prune()},
same_ref AS (DELETE FROM ${u} WHERE user_id = $1::text AND ref = $4::bytea AND handle <> $3::text)
INSERT INTO ${u} AS x (user_id, ${COLUMNS}, expires_at)
VALUES ($1::text, $3::text, $4::bytea, $5::bigint, $6::bigint, $7::bigint, $8::text, $9::text, ${expires})
ON CONFLICT (user_id, handle) DO UPDATE SET ref = EXCLUDED.ref, created_at = EXCLUDED.created_at,
  updated_at = EXCLUDED.updated_at, deadline = EXCLUDED.deadline, expires_at = EXCLUDED.expires_at,
  user_agent = EXCLUDED.user_agent, address = EXCLUDED.address`,
      values,
    );
    return 1;
  }

  async remove(userId: string, selection: IndexSelection, now: number, destroy: boolean) {
    const refs =
      "refs" in selection ? selection.refs.map((r) => Buffer.from(r, "base64url")) : null;
    const handles = "handles" in selection ? [...selection.handles] : null;
    const except = "allExcept" in selection ? selection.allExcept : null;
    if ((refs !== null && refs.length === 0) || (handles !== null && handles.length === 0)) {
      return [];
    }
    const which =
      refs !== null
        ? "ref = ANY($3::bytea[])"
        : handles !== null
          ? "handle = ANY($3::text[])"
          : "handle IS DISTINCT FROM $3::text";
    const { rows } = await this.#query(
      `WITH ${this.#prune()}
DELETE FROM ${this.#names.users} WHERE user_id = $1::text AND deadline > $2::bigint AND ${which}
RETURNING ${COLUMNS}`,
      [userId, ms(now), refs ?? handles ?? except],
    );
    const removed = (rows as EntryRow[]).map(entryOf);
    if (destroy && removed.length > 0) {
      await this.#query(`DELETE FROM ${this.#names.sessions} WHERE id = ANY($1::bytea[])`, [
        (rows as EntryRow[]).map((r) => r.ref),
      ]);
    }
    return removed;
  }

  async list(userId: string, now: number) {
    const { rows } = await this.#query(
      `SELECT ${COLUMNS} FROM ${this.#names.users} WHERE user_id = $1::text AND deadline > $2::bigint`,
      [userId, ms(now)],
    );
    return (rows as EntryRow[]).map(entryOf);
  }

  /** Each row's deadline and metadata; a plain SELECT renews nothing. */
  async peek(refs: readonly string[], now: number) {
    if (refs.length === 0) return [];
    const { rows } = await this.#query(
      `SELECT id, deadline, created_at, absolute_at, idle_ms, max_age_secs FROM ${this.#names.sessions}
WHERE id = ANY($1::bytea[]) AND deadline > $2::bigint`,
      [refs.map((r) => Buffer.from(r, "base64url")), ms(now)],
    );
    const found = new Map<string, { deadline: number; meta: SessionMeta }>();
    for (const row of rows as Array<Record<string, unknown>>) {
      const meta: SessionMeta = {
        createdAt: Number(row.created_at),
        absoluteAt: Number(row.absolute_at),
        idleMs: Number(row.idle_ms),
      };
      if (row.max_age_secs !== null) meta.maxAgeSecs = Number(row.max_age_secs);
      found.set((row.id as Buffer).toString("base64url"), { deadline: Number(row.deadline), meta });
    }
    return refs.map((r) => found.get(r) ?? null);
  }
}
