import { createHash } from "node:crypto";
import type { Logger } from "../core/engine.js";
import type { SessionMeta } from "../core/expiry.js";
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
import { PostgresUserIndex } from "./postgres-index.js";
import {
  migrationSql,
  type PostgresTableOptions,
  type Statement,
  type Statements,
  statements,
  type TableNames,
  tableNames,
} from "./postgres-sql.js";

export { migrationSql, type PostgresTableOptions } from "./postgres-sql.js";

/**
 * What the PostgreSQL store needs of a node-postgres `Pool` (or `Client`): one method. Typed by
 * shape, so coatcheck's types do not depend on `pg` and a wrapper (metrics, tracing) fits too.
 */
export interface PgPoolLike {
  query(config: {
    name?: string;
    text: string;
    values?: unknown[];
  }): Promise<{ rows: unknown[]; rowCount: number | null }>;
}

/** Options of {@link PostgresStore}. */
export interface PostgresStoreOptions extends PostgresTableOptions {
  /**
   * Create the tables (run {@link migrate}) when they are missing, at start-up or when an
   * operation finds them gone. Default `false`: a missing table is reported, with the migration to
   * run, and requests answer 503.
   */
  createTable?: boolean;
  /** Where corrupt records, a missing table and sweep failures are reported. Default `console`. */
  logger?: Pick<Logger, "warn" | "error">;
  /** How often expired rows are swept, in ms; `0` turns the sweep off. Default 60 000. */
  sweepIntervalMs?: number;
  /** Rows one sweep statement deletes at most. Default 500. */
  sweepBatchSize?: number;
  /** Statements one sweep runs at most (a backlog is worked off over several sweeps). Default 20. */
  sweepMaxBatches?: number;
  /**
   * Send each statement as a named prepared statement (parsed once per connection). Default
   * `true`; set `false` behind a pooler that cannot keep prepared statements (PgBouncer in
   * transaction mode before 1.21, or without `max_prepared_statements`).
   */
  preparedStatements?: boolean;
  /** Called by {@link PostgresStore.close}: pass one when the store should end its pool. */
  onClose?: () => void | Promise<void>;
}

const DEFAULT_SWEEP_INTERVAL_MS = 60_000;
const DEFAULT_SWEEP_BATCH = 500;
const DEFAULT_SWEEP_BATCHES = 20;
/** SQLSTATE undefined_table. */
const UNDEFINED_TABLE = "42P01";

/**
 * Apply the migration ({@link migrationSql}) on `pool`: create the schema (unless `public`), the
 * sessions and lock tables and their indexes, where missing. Safe to run again and from several
 * processes at once (a transaction-scoped advisory lock serialises them).
 *
 * @example
 * ```ts
 * import pg from "pg";
 * import { migrate } from "coatcheck/postgres";
 * await migrate(new pg.Pool({ connectionString: process.env.DATABASE_URL }), { table: "sessions" });
 * ```
 */
export async function migrate(pool: PgPoolLike, options: PostgresTableOptions = {}): Promise<void> {
  const sql = migrationSql(options);
  await pool.query({
    text: `BEGIN;\nSELECT pg_advisory_xact_lock(hashtext('coatcheck migrate'));\n${sql}COMMIT;`,
  });
}

function isUndefinedTable(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === UNDEFINED_TABLE;
}

/** A row of the sessions table as pg returns it (bigint arrives as text). */
interface Row {
  fields: unknown;
  created_at: unknown;
  absolute_at: unknown;
  idle_ms: unknown;
  max_age_secs: unknown;
}

function count(value: unknown): number | null {
  const n = typeof value === "string" ? Number(value) : value;
  return typeof n === "number" && Number.isFinite(n) && n >= 0 ? n : null;
}

/** Epoch ms for a bigint column: the engine's clock may be fractional, the column is not. */
const ms = (n: number) => String(Math.floor(n));

/**
 * Sessions in PostgreSQL, shared by every app instance.
 *
 * - One row per session, keyed by `sha256(id)` (a dump of the table yields no usable cookie). The
 *   session's keys live in one `jsonb` column, key → JSON text; a write changes only its keys
 *   (`fields || set - del`), so parallel requests that change different keys both persist.
 * - Each operation is one statement, one round trip: a load renews the idle deadline in the same
 *   statement; create never replaces a live row (`ON CONFLICT … WHERE deadline <= now`), update
 *   never recreates a missing one, claim is a `DELETE … RETURNING`, take locks the row so exactly
 *   one caller gets a key.
 * - The metadata lives in columns and deadlines are computed in SQL, so a write may leave the
 *   stored lifetime as it is.
 * - Per-session locks are rows of a second table with an expiry on the database clock and the
 *   holder's token: they work across processes and through any pool (an advisory lock would be
 *   tied to one pooled connection).
 * - Expired rows are never returned, and a background sweep deletes them in bounded batches; it is
 *   `unref`'d and stops with {@link PostgresStore.close}.
 *
 * Requests fail (and the engine answers 503) rather than wait: give your pool a
 * `connectionTimeoutMillis`, a `statement_timeout` and an `error` listener, or let
 * `storage = "postgres"` build one from `postgres_url`.
 *
 * @example
 * ```ts
 * import pg from "pg";
 * import { PostgresStore } from "coatcheck/postgres";
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, connectionTimeoutMillis: 1000 });
 * pool.on("error", (e) => console.error(e));
 * app.use(session({ store: new PostgresStore(pool) }));
 * ```
 */
export class PostgresStore implements RecordStore, LockStore, UserIndexStore {
  /** Operations run on the database server: the engine guards them with its timeout. */
  readonly inProcess = false;
  /** Every load builds its records anew: the engine keeps them without a copy. */
  readonly loadsFresh = true;
  readonly #pool: PgPoolLike;
  readonly #names: TableNames;
  readonly #sql: Statements;
  readonly #createTable: boolean;
  readonly #logger: Pick<Logger, "warn" | "error">;
  readonly #onClose: (() => void | Promise<void>) | undefined;
  readonly #sweepBatch: number;
  readonly #sweepBatches: number;
  #sweepTimer: NodeJS.Timeout | undefined;
  #sweeping: Promise<number> | null = null;
  #sweepFailed = false;
  #closed = false;
  #ready: Promise<void> | undefined;
  /** The per-user session index (`<table>_users`), in src/stores/postgres-index.ts. */
  readonly #index: PostgresUserIndex;

  constructor(pool: PgPoolLike, options: PostgresStoreOptions = {}) {
    if (typeof (pool as { query?: unknown } | null)?.query !== "function") {
      throw new TypeError('coatcheck: PostgresStore needs a pg Pool (new Pool() from "pg")');
    }
    this.#pool = pool;
    this.#names = tableNames(options);
    this.#sql = statements(this.#names, options.preparedStatements ?? true);
    this.#index = new PostgresUserIndex((text, values) => this.#run({ text }, values), this.#names);
    this.#createTable = options.createTable ?? false;
    this.#logger = options.logger ?? console;
    this.#onClose = options.onClose;
    this.#sweepBatch = Math.max(1, Math.floor(options.sweepBatchSize ?? DEFAULT_SWEEP_BATCH));
    this.#sweepBatches = Math.max(1, Math.floor(options.sweepMaxBatches ?? DEFAULT_SWEEP_BATCHES));
    const interval = options.sweepIntervalMs ?? DEFAULT_SWEEP_INTERVAL_MS;
    if (interval > 0) {
      this.#sweepTimer = setInterval(() => {
        this.sweep().catch(() => {});
      }, interval);
      this.#sweepTimer.unref();
    }
  }

  /** The quoted, schema-qualified names of the sessions and lock tables. */
  get tables(): { sessions: string; locks: string } {
    return { sessions: this.#names.sessions, locks: this.#names.locks };
  }

  /**
   * Settles once the tables are known to exist (created first with `createTable`). A missing table
   * or an unreachable server is logged, not thrown: requests then answer 503 until it is fixed.
   */
  ready(): Promise<void> {
    this.#ready ??= this.#checkTables().catch((error: unknown) => {
      this.#logger.error({}, `PostgreSQL store not ready: ${(error as Error).message}`);
    });
    return this.#ready;
  }

  /** The primary key of a session's row: `sha256(id)`. */
  keyOf(id: string): Buffer {
    return createHash("sha256").update(id).digest();
  }

  async load(id: string, now: number): Promise<StoredSession | null> {
    const { rows } = await this.#run(this.#sql.load, [this.keyOf(id), ms(now)]);
    return this.#record(id, rows[0] as Row | undefined);
  }

  /**
   * Apply `change`. Without `change.meta` (an update that left the lifetime alone) the stored
   * metadata is kept and the deadline recomputed from it.
   */
  async write(id: string, change: SessionWrite, mode: WriteMode, now: number): Promise<boolean> {
    const key = this.keyOf(id);
    const m = change.meta;
    const meta = [
      m && ms(m.createdAt),
      m && ms(m.absoluteAt),
      m && ms(m.idleMs),
      m?.maxAgeSecs === undefined ? null : Math.floor(m.maxAgeSecs),
    ];
    const set = JSON.stringify(change.set);
    if (mode === "create") {
      if (m === undefined) return false;
      const { rows } = await this.#run(this.#sql.create, [key, ms(now), set, ...meta]);
      return rows.length === 1;
    }
    const { rows } = await this.#run(this.#sql.update, [
      key,
      ms(now),
      set,
      [...change.del],
      m !== undefined,
      ...meta,
    ]);
    if (rows.length === 0) return false;
    // Rare (a session emptied key by key): the row is already dead to every reader; remove it.
    if ((rows[0] as { emptied: boolean }).emptied) await this.#run(this.#sql.dropEmptied, [key]);
    return true;
  }

  async destroy(id: string): Promise<void> {
    await this.#run(this.#sql.destroy, [this.keyOf(id)]);
  }

  async claim(id: string, now: number): Promise<StoredSession | null> {
    const { rows } = await this.#run(this.#sql.claim, [this.keyOf(id), ms(now)]);
    const row = rows[0] as (Row & { live: boolean }) | undefined;
    return row?.live ? this.#record(id, row) : null;
  }

  async take(id: string, keys: readonly string[]): Promise<Record<string, string>> {
    const out = newFields();
    if (keys.length === 0) return out;
    const { rows } = await this.#run(this.#sql.take, [this.keyOf(id), [...keys]]);
    for (const row of rows as Array<{ key: string; value: unknown }>) {
      if (typeof row.value === "string") out[row.key] = row.value;
    }
    return out;
  }

  /**
   * Take the per-session lock for `ttlMs` with `token` (made by the caller); `false` when another
   * holder has it. The expiry runs on the database clock, shared by every app instance.
   */
  async acquireLock(id: string, token: string, ttlMs: number): Promise<boolean> {
    const ttl = Math.max(1, Math.ceil(ttlMs));
    const { rows } = await this.#run(this.#sql.acquireLock, [this.keyOf(id), token, ttl]);
    return rows.length === 1;
  }

  /** Release the lock if `token` still holds it; releasing twice, or too late, does nothing. */
  async releaseLock(id: string, token: string): Promise<void> {
    await this.#run(this.#sql.releaseLock, [this.keyOf(id), token]);
  }

  /**
   * Delete expired session and lock rows: at most `sweepMaxBatches` statements of
   * `sweepBatchSize` rows each. The background timer calls this; it is public for tests and for
   * apps that prefer to sweep from a scheduled job (`sweepIntervalMs: 0`). Resolves to the number
   * of rows deleted. A sweep already running is joined, not doubled.
   */
  sweep(): Promise<number> {
    this.#sweeping ??= this.#sweepAll().finally(() => {
      this.#sweeping = null;
    });
    return this.#sweeping;
  }

  /** Remaining time to live of a session's row in ms (database clock), or null when missing. */
  async ttlOf(id: string): Promise<number | null> {
    const { rows } = await this.#pool.query({ ...this.#sql.ttl, values: [this.keyOf(id)] });
    const row = rows[0] as { ms: number } | undefined;
    return row === undefined ? null : row.ms;
  }

  indexPut(
    userId: string,
    entry: IndexEntry,
    _id: string,
    replaces: string | null,
    now: number,
    limit = 0,
  ) {
    return this.#index.put(userId, entry, replaces, now, limit);
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

  /** Stop the sweep, wait for one in flight, then run `onClose` (ending an owned pool). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#sweepTimer);
    await this.#sweeping?.catch(() => {});
    await this.#onClose?.();
  }

  async #sweepAll(): Promise<number> {
    let deleted = 0;
    try {
      for (const statement of [
        this.#sql.sweepSessions,
        this.#sql.sweepLocks,
        this.#sql.sweepUsers,
      ]) {
        for (let i = 0; i < this.#sweepBatches && !this.#closed; i++) {
          const { rows } = await this.#pool
            .query({ ...statement, values: [this.#sweepBatch] })
            .catch((error: unknown) => {
              // A database migrated before the user index existed has no `_users` table yet.
              if (statement === this.#sql.sweepUsers && isUndefinedTable(error))
                return { rows: [] };
              throw error;
            });
          const n = (rows[0] as { n: number } | undefined)?.n ?? 0;
          deleted += n;
          if (n < this.#sweepBatch) break;
        }
      }
    } catch (error) {
      // Once per outage: the sweep retries on its next tick, and requests report their own errors.
      if (!this.#sweepFailed) {
        this.#sweepFailed = true;
        this.#logger.warn(
          {},
          `PostgreSQL sweep of expired sessions failed (${(error as Error).message}); retrying on the next interval`,
        );
      }
      throw error;
    }
    this.#sweepFailed = false;
    return deleted;
  }

  async #checkTables(): Promise<void> {
    const { rows } = await this.#pool.query({
      text: "SELECT to_regclass($1) IS NOT NULL AND to_regclass($2) IS NOT NULL AS ok",
      values: [this.#names.sessions, this.#names.locks],
    });
    if ((rows[0] as { ok: boolean } | undefined)?.ok) return;
    if (this.#createTable) return migrate(this.#pool, this.#names);
    throw new Error(this.#missingTable());
  }

  #missingTable(): string {
    return (
      `table ${this.#names.sessions} or ${this.#names.locks} does not exist. Create it with ` +
      `migrate() from "coatcheck/postgres" or the SQL in the README ("PostgreSQL"), or set ` +
      "postgres_create_table = true"
    );
  }

  async #run(statement: Statement, values: unknown[]) {
    try {
      return await this.#pool.query({ ...statement, values });
    } catch (error) {
      if (!isUndefinedTable(error)) throw error;
      if (!this.#createTable) throw new Error(this.#missingTable(), { cause: error });
      // The tables went missing after start-up (or start-up could not reach the server).
      await migrate(this.#pool, this.#names);
      return this.#pool.query({ ...statement, values });
    }
  }

  #record(id: string, row: Row | undefined): StoredSession | null {
    if (row === undefined) return null;
    const createdAt = count(row.created_at);
    const absoluteAt = count(row.absolute_at);
    const idleMs = count(row.idle_ms);
    const maxAgeSecs = row.max_age_secs === null ? undefined : count(row.max_age_secs);
    const source = row.fields;
    if (
      createdAt === null ||
      absoluteAt === null ||
      idleMs === null ||
      maxAgeSecs === null ||
      typeof source !== "object" ||
      source === null ||
      Array.isArray(source)
    ) {
      this.#corrupt(id, "unreadable metadata");
      return null;
    }
    const fields = newFields();
    for (const [key, value] of Object.entries(source)) {
      if (typeof value !== "string") {
        this.#corrupt(id, `the value of ${JSON.stringify(key)} is not JSON text`);
        return null;
      }
      fields[key] = value;
    }
    const meta: SessionMeta = { createdAt, absoluteAt, idleMs };
    if (maxAgeSecs !== undefined) meta.maxAgeSecs = maxAgeSecs;
    return { fields, meta };
  }

  #corrupt(id: string, reason: string): void {
    const key = this.keyOf(id).toString("hex");
    this.#logger.warn(
      {},
      `PostgreSQL row ${key} in ${this.#names.sessions} is not a readable session (${reason}); treated as missing`,
    );
  }
}
