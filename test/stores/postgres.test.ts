import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { SessionConfig } from "../../src/core/config.js";
import { ConfigError } from "../../src/core/errors.js";
import { generateId } from "../../src/core/id.js";
import { inheritsNothing, type SessionStore } from "../../src/core/store.js";
import { migrate, migrationSql, PostgresStore } from "../../src/stores/postgres.js";
import { postgresStoreFromConfig } from "../../src/stores/postgres-url.js";
import { describeStoreConformance } from "../conformance/store-suite.js";
import { countingPool, createTestDatabase, type TestDatabase } from "../support/postgres.js";

let db: TestDatabase;
let pool: ReturnType<TestDatabase["pool"]>;

beforeAll(async () => {
  db = await createTestDatabase("store");
  pool = db.pool();
  await migrate(pool);
});
afterAll(async () => {
  await db?.drop();
});

const ttlOf = (store: SessionStore, id: string) => (store as PostgresStore).ttlOf(id);

describeStoreConformance("PostgresStore", () => new PostgresStore(pool, { sweepIntervalMs: 0 }), {
  ttlOf,
  userIndex: true,
});
describeStoreConformance(
  "PostgresStore (unnamed statements, as behind a transaction pooler)",
  () => new PostgresStore(pool, { sweepIntervalMs: 0, preparedStatements: false }),
  { ttlOf, userIndex: true },
);

const T0 = Date.UTC(2026, 0, 1);
const meta = { createdAt: T0, absoluteAt: T0 + 3_600_000, idleMs: 0 };

function logged() {
  const warnings: string[] = [];
  const errors: string[] = [];
  return {
    warnings,
    errors,
    logger: {
      warn: (_f: unknown, m: string) => warnings.push(m),
      error: (_f: unknown, m: string) => errors.push(m),
    },
  };
}

async function rowOf(store: PostgresStore, id: string) {
  const { rows } = await pool.query(`SELECT * FROM ${store.tables.sessions} WHERE id = $1`, [
    store.keyOf(id),
  ]);
  return rows[0] as Record<string, unknown> | undefined;
}

describe("PostgresStore on real PostgreSQL", () => {
  test("rows are keyed by sha256(id): the id is nowhere in the table", async () => {
    const store = new PostgresStore(pool, { sweepIntervalMs: 0 });
    const id = generateId();
    await store.write(id, { set: { a: "1" }, del: [], meta }, "create", T0);
    const { rows } = await pool.query(`SELECT t::text AS dump FROM ${store.tables.sessions} t`);
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.some((r) => (r.dump as string).includes(id))).toBe(false);
    expect((await rowOf(store, id))?.id).toEqual(store.keyOf(id));
    expect(store.keyOf(id)).toHaveLength(32);
  });

  test("one statement per operation; a load renews the idle deadline in the same statement", async () => {
    const counted = countingPool(pool);
    const store = new PostgresStore(counted, { sweepIntervalMs: 0 });
    const id = generateId();
    const idle = { ...meta, idleMs: 60_000 };
    await store.write(id, { set: { a: "1" }, del: [], meta: idle }, "create", T0);
    expect(counted.reset()).toHaveLength(1);
    expect(await store.load(id, T0 + 30_000)).not.toBeNull();
    expect(counted.reset()).toHaveLength(1);
    expect(Number((await rowOf(store, id))?.deadline)).toBe(T0 + 90_000);
    await store.write(id, { set: { b: "2" }, del: ["a"], meta: idle }, "update", T0 + 40_000);
    expect(counted.reset()).toHaveLength(1);
    expect(await store.take(id, ["b"])).toEqual({ b: "2" });
    await store.claim(id, T0 + 40_000);
    await store.destroy(id);
    expect(await store.acquireLock(id, "t", 1000)).toBe(true);
    expect(counted.reset()).toHaveLength(4);
  });

  test("an update without meta keeps the stored lifetime and recomputes the deadline from it", async () => {
    const store = new PostgresStore(pool, { sweepIntervalMs: 0 });
    const id = generateId();
    const stored = { createdAt: T0, absoluteAt: T0 + 2000, idleMs: 1000, maxAgeSecs: 30 };
    await store.write(id, { set: { a: "1" }, del: [], meta: stored }, "create", T0);
    expect(await store.write(id, { set: { b: "2" }, del: [] }, "update", T0 + 800)).toBe(true);
    expect(Number((await rowOf(store, id))?.deadline)).toBe(T0 + 1800);
    const got = await store.load(id, T0 + 1700);
    expect(got?.meta).toEqual(stored);
    expect({ ...got?.fields }).toEqual({ a: "1", b: "2" });
    // The stored absolute deadline still caps the renewal.
    await store.write(id, { set: {}, del: ["b"] }, "update", T0 + 1750);
    expect(Number((await rowOf(store, id))?.deadline)).toBe(T0 + 2000);
    // A write with meta replaces the lifetime (setExpiry).
    const longer = { createdAt: T0, absoluteAt: T0 + 50_000, idleMs: 0 };
    await store.write(id, { set: {}, del: [], meta: longer }, "update", T0 + 1800);
    expect((await store.load(id, T0 + 20_000))?.meta).toEqual(longer);
    // Absent meta on a missing record: still no resurrection.
    expect(await store.write(generateId(), { set: { a: "1" }, del: [] }, "update", T0)).toBe(false);
  });

  test("30 parallel writers of different keys and 30 takers of one key: all kept, one taker", async () => {
    const store = new PostgresStore(pool, { sweepIntervalMs: 0 });
    const id = generateId();
    await store.write(id, { set: { flash: "once" }, del: [], meta }, "create", T0);
    const [writes, takes] = await Promise.all([
      Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          store.write(id, { set: { [`k${i}`]: String(i) }, del: [] }, "update", T0),
        ),
      ),
      Promise.all(Array.from({ length: 30 }, () => store.take(id, ["flash"]))),
    ]);
    expect(writes.every(Boolean)).toBe(true);
    expect(takes.filter((t) => t.flash === "once")).toHaveLength(1);
    const got = await store.load(id, T0);
    expect(Object.keys(got?.fields ?? {}).sort()).toEqual(
      Array.from({ length: 30 }, (_, i) => `k${i}`).sort(),
    );
  });

  test("a record emptied by an update is deleted, not left behind", async () => {
    const counted = countingPool(pool);
    const store = new PostgresStore(counted, { sweepIntervalMs: 0 });
    const id = generateId();
    await store.write(id, { set: { a: "1" }, del: [], meta }, "create", T0);
    expect(await store.write(id, { set: {}, del: ["a"] }, "update", T0)).toBe(true);
    expect(await rowOf(store, id)).toBeUndefined();
  });

  test("create replaces an expired row (it is gone for everyone) but never a live one", async () => {
    const store = new PostgresStore(pool, { sweepIntervalMs: 0 });
    const id = generateId();
    await store.write(
      id,
      { set: { old: "1" }, del: [], meta: { ...meta, idleMs: 1000 } },
      "create",
      T0,
    );
    expect(await store.write(id, { set: { x: "1" }, del: [], meta }, "create", T0 + 999)).toBe(
      false,
    );
    expect(await store.write(id, { set: { x: "1" }, del: [], meta }, "create", T0 + 1000)).toBe(
      true,
    );
    expect({ ...(await store.load(id, T0 + 1001))?.fields }).toEqual({ x: "1" });
  });

  test("the sweep deletes expired rows in bounded batches and leaves live ones", async () => {
    const db2 = await createTestDatabase("sweep");
    try {
      const base = db2.pool();
      await migrate(base);
      const counted = countingPool(base);
      const store = new PostgresStore(counted, {
        sweepIntervalMs: 0,
        sweepBatchSize: 10,
        sweepMaxBatches: 2,
      });
      const now = Date.now();
      const live = generateId();
      await store.write(
        live,
        { set: { a: "1" }, del: [], meta: { ...meta, absoluteAt: now + 60_000 } },
        "create",
        now,
      );
      for (let i = 0; i < 25; i++) {
        await store.write(
          generateId(),
          { set: { a: "1" }, del: [], meta: { ...meta, absoluteAt: now + 1 } },
          "create",
          now,
        );
      }
      for (let i = 0; i < 3; i++) await store.acquireLock(generateId(), "t", 1);
      await new Promise((r) => setTimeout(r, 20));
      counted.reset();
      const count = async () =>
        Number((await base.query(`SELECT count(*) AS n FROM ${store.tables.sessions}`)).rows[0].n);
      expect(await store.sweep()).toBe(20 + 3);
      // Two bounded statements for the sessions, one for the locks, one for the user index.
      expect(counted.reset()).toHaveLength(4);
      expect(await count()).toBe(6);
      expect(await store.sweep()).toBe(5);
      expect(await count()).toBe(1);
      expect(await store.load(live, now)).not.toBeNull();
      await store.close();
    } finally {
      await db2.drop();
    }
  });

  test("the background sweep runs on its interval and stops with close()", async () => {
    const counted = countingPool(pool);
    const store = new PostgresStore(counted, { sweepIntervalMs: 20 });
    const now = Date.now();
    const id = generateId();
    await store.write(
      id,
      { set: { a: "1" }, del: [], meta: { ...meta, absoluteAt: now + 1 } },
      "create",
      now,
    );
    const until = performance.now() + 5000;
    while ((await rowOf(store, id)) !== undefined && performance.now() < until) {
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(await rowOf(store, id)).toBeUndefined();
    await store.close();
    counted.reset();
    await new Promise((r) => setTimeout(r, 100));
    expect(counted.sent).toEqual([]);
  });

  test("a missing table: ready() reports the migration to run, operations fail with it", async () => {
    const { errors, logger } = logged();
    const store = new PostgresStore(pool, { table: "nope", sweepIntervalMs: 0, logger });
    await store.ready();
    expect(errors[0]).toMatch(/"public"."nope".*does not exist.*migrate\(\)/);
    await expect(store.load(generateId(), T0)).rejects.toThrow(/postgres_create_table = true/);
    expect(
      (await pool.query("SELECT to_regclass('public.nope') IS NULL AS missing")).rows[0].missing,
    ).toBe(true);
  });

  test("createTable creates the tables in a schema of their own, at start-up or later", async () => {
    const store = new PostgresStore(pool, {
      schema: "app_sessions",
      table: "web",
      createTable: true,
      sweepIntervalMs: 0,
    });
    await store.ready();
    const id = generateId();
    expect(await store.write(id, { set: { a: "1" }, del: [], meta }, "create", T0)).toBe(true);
    await pool.query('DROP TABLE "app_sessions"."web", "app_sessions"."web_locks"');
    // Dropped after start-up: the next operation migrates and retries once.
    expect(await store.write(id, { set: { a: "1" }, del: [], meta }, "create", T0)).toBe(true);
    expect(await store.load(id, T0)).not.toBeNull();
  });

  test("migrate can run from several processes at once and again later", async () => {
    const others = [db.pool(), db.pool(), db.pool()];
    await Promise.all(others.map((p) => migrate(p, { table: "parallel" })));
    await migrate(pool, { table: "parallel" });
    expect(migrationSql({ table: "parallel" })).toContain('"public"."parallel_locks"');
  });

  test("the migration command creates the tables, or prints the SQL", async () => {
    const cli = fileURLToPath(new URL("../../src/stores/postgres-migrate-cli.ts", import.meta.url));
    const run = (...args: string[]) =>
      promisify(execFile)(process.execPath, ["--import", "tsx", cli, ...args]);
    const printed = await run("--print", "--schema", "cli", "--table", "s");
    expect(printed.stdout).toBe(migrationSql({ schema: "cli", table: "s" }));
    const applied = await run("--url", db.url, "--schema", "cli", "--table", "s");
    expect(applied.stdout).toContain('"cli"."s" and "cli"."s_locks" are ready');
    const { rows } = await pool.query("SELECT to_regclass('cli.s_locks') IS NOT NULL AS ok");
    expect(rows[0].ok).toBe(true);
  });

  test("the README shows the migration exactly as migrate() applies it", () => {
    const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
    expect(readme).toContain(`\`\`\`sql\n${migrationSql()}\`\`\``);
  });

  test.each(["has space", "1st", 'a"b', "x".repeat(58)])("table name %j is refused", (name) => {
    expect(() => new PostgresStore(pool, { table: name })).toThrow(ConfigError);
    expect(() => migrationSql({ schema: name })).toThrow(ConfigError);
  });

  test("something that is not a pool is refused at construction", () => {
    expect(() => new PostgresStore({} as never)).toThrow(/pg Pool/);
  });

  test.each([
    ["fields that are not JSON text", `'{"a": 1}'`],
    ["a negative time", `'{"a": "1"}'`],
  ])("a corrupt row (%s) is logged and treated as missing", async (name, fields) => {
    const { warnings, logger } = logged();
    const store = new PostgresStore(pool, { sweepIntervalMs: 0, logger });
    const id = generateId();
    const created = name.includes("negative") ? -1 : T0;
    await pool.query(
      `INSERT INTO ${store.tables.sessions} VALUES ($1, ${fields}, $2, 0, 0, NULL, $3, now() + interval '1 hour')`,
      [store.keyOf(id), created, T0 + 3_600_000],
    );
    expect(await store.load(id, T0)).toBeNull();
    expect(warnings[0]).toContain(store.keyOf(id).toString("hex"));
    expect(await store.claim(id, T0)).toBeNull();
  });

  test("a __proto__ key written by someone else stays a plain key", async () => {
    const store = new PostgresStore(pool, { sweepIntervalMs: 0 });
    const id = generateId();
    await pool.query(
      `INSERT INTO ${store.tables.sessions} VALUES ($1, $2, $3, 0, 0, NULL, $4, now() + interval '1 hour')`,
      [
        store.keyOf(id),
        '{"__proto__": "{\\"isAdmin\\":true}", "constructor": "1"}',
        T0,
        T0 + 3_600_000,
      ],
    );
    const got = await store.load(id, T0);
    expect(inheritsNothing(got?.fields ?? {})).toBe(true);
    expect("toString" in (got?.fields ?? {})).toBe(false);
    expect(Object.keys(got?.fields ?? {}).sort()).toEqual(["__proto__", "constructor"]);
    expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
  });
});

describe("storage = postgres", () => {
  const config = {
    postgresUrl: "postgres://postgres@127.0.0.1:1/x",
    postgresSchema: "public",
    postgresTable: "coatcheck_sessions",
    postgresCreateTable: false,
    operationTimeoutMs: 1000,
  } as SessionConfig;

  test("without the pg package: start-up fails naming the package", () => {
    const missing = () => {
      throw Object.assign(new Error("Cannot find module 'pg'"), { code: "MODULE_NOT_FOUND" });
    };
    const build = () => postgresStoreFromConfig(config, logged().logger, missing);
    expect(build).toThrow(ConfigError);
    expect(build).toThrow(/npm install pg/);
  });

  test("without postgres_url: start-up fails naming the key", () => {
    const build = () =>
      postgresStoreFromConfig({ ...config, postgresUrl: undefined }, logged().logger);
    expect(build).toThrow(/session\.postgres_url: is required/);
  });
});
