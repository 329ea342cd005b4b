import { ConfigError } from "../core/errors.js";
import { IDLE_RENEWAL_FRACTION, MAX_LIFETIME_SECS } from "../core/expiry.js";
import { identifierProblem } from "../core/sql-identifier.js";

/**
 * The SQL of the PostgreSQL store: the migration and one statement per store operation. Kept apart
 * from the store class so the README, the migration command and the store all use the same text.
 *
 * Times: `deadline` is the engine's clock (epoch ms, the `now` each operation is given), so every
 * app instance judges expiry the same way and a fake clock works in tests; `expires_at` is the
 * same deadline on the database server's clock, for the background sweep, which has no engine
 * clock to go by. Both are recomputed in SQL from the stored metadata columns on every write and
 * on each idle renewal.
 */

/** Where the store's tables live. */
export interface PostgresTableOptions {
  /** Schema of the tables. Default `"public"`. */
  schema?: string;
  /** Name of the sessions table; the lock table is this name plus `_locks`. Default `"coatcheck_sessions"`. */
  table?: string;
}

export const DEFAULT_SCHEMA = "public";
export const DEFAULT_TABLE = "coatcheck_sessions";

/** Resolved, quoted names. */
export interface TableNames {
  schema: string;
  table: string;
  /** `"schema"."table"` */
  sessions: string;
  /** `"schema"."table_locks"` */
  locks: string;
  /** `"schema"."table_users"`: the per-user session index. */
  users: string;
}

export function tableNames(options: PostgresTableOptions = {}): TableNames {
  const schema = options.schema ?? DEFAULT_SCHEMA;
  const table = options.table ?? DEFAULT_TABLE;
  for (const [key, value] of [
    ["session.postgres_schema", schema],
    ["session.postgres_table", table],
  ] as const) {
    const problem = identifierProblem(value);
    if (problem) throw new ConfigError(key, `got ${JSON.stringify(value)}; ${problem}`);
  }
  return {
    schema,
    table,
    sessions: `"${schema}"."${table}"`,
    locks: `"${schema}"."${table}_locks"`,
    users: `"${schema}"."${table}_users"`,
  };
}

/**
 * The migration: the sessions, locks and user-index tables, the sweep's indexes and the user
 * index's lookups by session and by deadline. Idempotent (`IF NOT EXISTS`), so it can be run on
 * every deploy: a database migrated by an earlier version gets what it lacks.
 */
export function migrationSql(options: PostgresTableOptions = {}): string {
  const n = tableNames(options);
  const createSchema = n.schema === "public" ? "" : `CREATE SCHEMA IF NOT EXISTS "${n.schema}";\n`;
  return `${createSchema}CREATE TABLE IF NOT EXISTS ${n.sessions} (
  id           bytea       PRIMARY KEY,  -- sha256 of the session id, never the id itself
  fields       jsonb       NOT NULL CHECK (jsonb_typeof(fields) = 'object'),  -- key → JSON text
  created_at   bigint      NOT NULL,     -- epoch ms
  absolute_at  bigint      NOT NULL,     -- epoch ms, 0 = none
  idle_ms      bigint      NOT NULL,     -- 0 = none
  max_age_secs integer,                  -- per-session lifetime (remember-me), NULL = configured
  deadline     bigint      NOT NULL,     -- epoch ms on the app's clock; dead when <= now
  expires_at   timestamptz NOT NULL      -- the same deadline on the database clock, for the sweep
);
CREATE INDEX IF NOT EXISTS "${n.table}_expires_at" ON ${n.sessions} (expires_at);
CREATE TABLE IF NOT EXISTS ${n.locks} (
  id         bytea       PRIMARY KEY,
  token      text        NOT NULL,
  expires_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS "${n.table}_locks_expires_at" ON ${n.locks} (expires_at);
CREATE TABLE IF NOT EXISTS ${n.users} (
  user_id    text        NOT NULL,
  handle     text        NOT NULL,     -- names the session to its user; never derived from the id
  ref        bytea       NOT NULL,     -- the session's row id (sha256 of the session id)
  created_at bigint      NOT NULL,     -- sign-in, epoch ms
  updated_at bigint      NOT NULL,     -- last sign-in, id change or lifetime change, epoch ms
  deadline   bigint      NOT NULL,     -- epoch ms on the app's clock, never before the session's
  expires_at timestamptz NOT NULL,     -- the same deadline on the database clock, for the sweep
  user_agent text,
  address    text,
  PRIMARY KEY (user_id, handle)
);
CREATE INDEX IF NOT EXISTS "${n.table}_users_expires_at" ON ${n.users} (expires_at);
CREATE INDEX IF NOT EXISTS "${n.table}_users_ref" ON ${n.users} (user_id, ref);
CREATE INDEX IF NOT EXISTS "${n.table}_users_deadline" ON ${n.users} (user_id, deadline);
`;
}

/** No record outlives the longest cookie a browser keeps, so every row has a finite deadline. */
const MAX_LIFETIME_MS = MAX_LIFETIME_SECS * 1000;

/** The deadline of a record touched at `now` (`deadlineOf` in SQL; LEAST skips the NULLs). */
function deadline(absolute: string, idle: string, now: string): string {
  return `LEAST(CASE WHEN ${idle} > 0 THEN ${now} + ${idle} END, CASE WHEN ${absolute} > 0 THEN ${absolute} END, ${now} + ${MAX_LIFETIME_MS})`;
}

/** `expires_at` for a deadline on the engine clock. */
function expiresAt(deadlineSql: string, now: string): string {
  return `now() + ((${deadlineSql}) - ${now}) * interval '1 millisecond'`;
}

const RECORD = "fields, created_at, absolute_at, idle_ms, max_age_secs";

/** One statement per operation; with a name, pg prepares it once per connection. */
export interface Statement {
  name?: string;
  text: string;
}

export interface Statements {
  /**
   * ($1 id, $2 now) → record; renews the idle deadline in the same statement when it moves by more
   * than `IDLE_RENEWAL_FRACTION` of the timeout (otherwise the statement writes nothing).
   */
  load: Statement;
  /** ($1 id, $2 now, $3 set, $4 created, $5 absolute, $6 idle, $7 maxAge) → a row when created. */
  create: Statement;
  /**
   * ($1 id, $2 now, $3 set, $4 del, $5 has meta, $6 created, $7 absolute, $8 idle, $9 maxAge) →
   * `emptied` when the record was left without keys (its deadline is then 0: dead for everyone).
   */
  update: Statement;
  /** ($1 id) removes a record the update just emptied, unless something wrote it meanwhile. */
  dropEmptied: Statement;
  /** ($1 id) */
  destroy: Statement;
  /** ($1 id, $2 now) → record and `live`, deleted either way. */
  claim: Statement;
  /** ($1 id, $2 keys) → (key, value) rows taken. */
  take: Statement;
  /** ($1 id, $2 token, $3 ttl ms) → a row when acquired. */
  acquireLock: Statement;
  /** ($1 id, $2 token) */
  releaseLock: Statement;
  /** ($1 batch size) → deleted count. */
  sweepSessions: Statement;
  /** ($1 batch size) → deleted count. */
  sweepLocks: Statement;
  /** ($1 batch size) → deleted count of user-index rows. */
  sweepUsers: Statement;
  /** ($1 id) → remaining ms on the database clock, for tests and diagnostics. */
  ttl: Statement;
}

/** A short tag for statement names: two stores on different tables can share a pool. */
function tag(names: TableNames): string {
  let h = 0;
  for (const c of names.sessions) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return h.toString(36);
}

export function statements(names: TableNames, prepared = true): Statements {
  const t = names.sessions;
  const l = names.locks;
  const suffix = tag(names);
  const named = (name: string, text: string): Statement =>
    prepared ? { name: `coatcheck_${name}_${suffix}`, text } : { text };
  const has = "$5::boolean";
  const metaAbs = `CASE WHEN ${has} THEN $7::bigint ELSE absolute_at END`;
  const metaIdle = `CASE WHEN ${has} THEN $8::bigint ELSE idle_ms END`;
  const merged = "((fields || $3::jsonb) - $4::text[])";
  const updated = deadline(metaAbs, metaIdle, "$2::bigint");
  const renewed = deadline("absolute_at", "idle_ms", "$2::bigint");
  const created = deadline("$5::bigint", "$6::bigint", "$2::bigint");
  // A sweep statement deletes at most $1 rows, locked with SKIP LOCKED so it never waits for (nor
  // holds up) a request; a row renewed in between has a new ctid and is left alone.
  const sweep = (table: string) =>
    `WITH gone AS (DELETE FROM ${table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM ${table} WHERE expires_at <= now() LIMIT $1::integer FOR UPDATE SKIP LOCKED)) AND expires_at <= now() RETURNING 1) SELECT count(*)::integer AS n FROM gone`;
  return {
    load: named(
      "load",
      `WITH hit AS (SELECT ${RECORD} FROM ${t} WHERE id = $1::bytea AND deadline > $2::bigint),
renew AS (UPDATE ${t} SET deadline = ${renewed}, expires_at = ${expiresAt(renewed, "$2::bigint")}
  WHERE id = $1::bytea AND deadline > $2::bigint AND idle_ms > 0
    AND ${renewed} - deadline > idle_ms * ${IDLE_RENEWAL_FRACTION})
SELECT ${RECORD} FROM hit`,
    ),
    create: named(
      "create",
      `INSERT INTO ${t} AS t (id, ${RECORD}, deadline, expires_at)
VALUES ($1::bytea, $3::jsonb, $4::bigint, $5::bigint, $6::bigint, $7::integer, ${created}, ${expiresAt(created, "$2::bigint")})
ON CONFLICT (id) DO UPDATE SET fields = EXCLUDED.fields, created_at = EXCLUDED.created_at,
  absolute_at = EXCLUDED.absolute_at, idle_ms = EXCLUDED.idle_ms, max_age_secs = EXCLUDED.max_age_secs,
  deadline = EXCLUDED.deadline, expires_at = EXCLUDED.expires_at
WHERE t.deadline <= $2::bigint
RETURNING 1`,
    ),
    update: named(
      "update",
      `UPDATE ${t} SET
  fields = ${merged},
  created_at = CASE WHEN ${has} THEN $6::bigint ELSE created_at END,
  absolute_at = ${metaAbs},
  idle_ms = ${metaIdle},
  max_age_secs = CASE WHEN ${has} THEN $9::integer ELSE max_age_secs END,
  deadline = CASE WHEN ${merged} = '{}'::jsonb THEN 0 ELSE ${updated} END,
  expires_at = CASE WHEN ${merged} = '{}'::jsonb THEN '-infinity' ELSE ${expiresAt(updated, "$2::bigint")} END
WHERE id = $1::bytea AND deadline > $2::bigint
RETURNING deadline = 0 AS emptied`,
    ),
    dropEmptied: named("drop_emptied", `DELETE FROM ${t} WHERE id = $1::bytea AND deadline = 0`),
    destroy: named("destroy", `DELETE FROM ${t} WHERE id = $1::bytea`),
    // An expired row is deleted too, but not returned.
    claim: named(
      "claim",
      `DELETE FROM ${t} WHERE id = $1::bytea RETURNING ${RECORD}, deadline > $2::bigint AS live`,
    ),
    // FOR UPDATE makes a second taker wait, then see the row without the keys: exactly one wins.
    take: named(
      "take",
      `WITH old AS (SELECT id, fields FROM ${t} WHERE id = $1::bytea FOR UPDATE),
upd AS (UPDATE ${t} SET fields = ${t}.fields - $2::text[] FROM old
  WHERE ${t}.id = old.id AND old.fields ?| $2::text[])
SELECT e.key, e.value FROM old, jsonb_each(old.fields) AS e WHERE e.key = ANY($2::text[])`,
    ),
    acquireLock: named(
      "acquire_lock",
      `INSERT INTO ${l} AS l (id, token, expires_at)
VALUES ($1::bytea, $2::text, clock_timestamp() + $3::integer * interval '1 millisecond')
ON CONFLICT (id) DO UPDATE SET token = EXCLUDED.token, expires_at = EXCLUDED.expires_at
WHERE l.expires_at <= clock_timestamp()
RETURNING 1`,
    ),
    releaseLock: named(
      "release_lock",
      `DELETE FROM ${l} WHERE id = $1::bytea AND token = $2::text`,
    ),
    sweepSessions: named("sweep", sweep(t)),
    sweepLocks: named("sweep_locks", sweep(l)),
    sweepUsers: named("sweep_users", sweep(names.users)),
    ttl: named(
      "ttl",
      `SELECT GREATEST(0, EXTRACT(EPOCH FROM (expires_at - now())) * 1000)::float8 AS ms FROM ${t} WHERE id = $1::bytea`,
    ),
  };
}
