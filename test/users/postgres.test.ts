import { afterAll, beforeAll, expect, test } from "vitest";
import type { IndexEntry } from "../../src/core/store.js";
import { migrate, PostgresStore } from "../../src/stores/postgres.js";
import { PostgresUserIndex } from "../../src/stores/postgres-index.js";
import { tableNames } from "../../src/stores/postgres-sql.js";
import { createTestDatabase, type TestDatabase } from "../support/postgres.js";
import { browser, usersApp, usersEngine } from "./app.js";
import { indexEntry } from "./fixtures/index-entries.js";
import { userIndexSuite } from "./suite.js";

let db: TestDatabase;
let pool: ReturnType<TestDatabase["pool"]>;

beforeAll(async () => {
  db = await createTestDatabase("users");
  pool = db.pool();
  await migrate(pool);
});
afterAll(async () => {
  await db?.drop();
});

userIndexSuite("PostgreSQL", async () => new PostgresStore(pool, { sweepIntervalMs: 0 }));
userIndexSuite(
  "PostgreSQL (unnamed statements)",
  async () => new PostgresStore(pool, { sweepIntervalMs: 0, preparedStatements: false }),
);

test("the index table holds only live sessions after 200 sign-ins and sign-outs, and no id", async () => {
  const store = new PostgresStore(pool, { sweepIntervalMs: 0 });
  const app = usersApp(usersEngine(store, { expirySecs: 3600 }));
  const kept = browser(app, "Kept/1");
  await kept.post("/login/pg-heavy");
  for (let i = 0; i < 200; i++) {
    const b = browser(app, `Churn/${i}`);
    await b.post("/login/pg-heavy");
    await b.post("/logout");
  }
  const { rows } = await pool.query({
    text: `SELECT user_agent, ref FROM "public"."coatcheck_sessions_users" WHERE user_id = $1`,
    values: ["pg-heavy"],
  });
  expect(rows.map((r) => (r as { user_agent: string }).user_agent)).toEqual(["Kept/1"]);
  const id = kept.jar.cookie.split("=")[1] as string;
  expect((rows[0] as { ref: Buffer }).ref.equals(store.keyOf(id))).toBe(true);
  await store.close();
});

const NOW = Date.now();
const entry = (handle?: string): IndexEntry => indexEntry(NOW, { handle });

interface PlanNode {
  "Node Type": string;
  "Relation Name"?: string;
  "Actual Rows"?: number;
  "Actual Loops"?: number;
  "Rows Removed by Filter"?: number;
  "Rows Removed by Index Recheck"?: number;
  Plans?: PlanNode[];
}

/** Rows each scan of the index table read (kept or filtered out), over a statement's plan. */
function rowsRead(node: PlanNode, table: string): number {
  const own =
    node["Relation Name"] === table && /Scan/.test(node["Node Type"])
      ? ((node["Actual Rows"] ?? 0) +
          (node["Rows Removed by Filter"] ?? 0) +
          (node["Rows Removed by Index Recheck"] ?? 0)) *
        (node["Actual Loops"] ?? 1)
      : 0;
  return own + (node.Plans ?? []).reduce((sum, p) => sum + rowsRead(p, table), 0);
}

test("a put, an id change and a removal read the same rows for a user with 10 or 3,000 entries", async () => {
  const table = "scale";
  await migrate(pool, { table });
  const names = tableNames({ table });
  const run = (text: string, values: unknown[]) => pool.query({ text, values });
  const fast = new PostgresUserIndex(run, names);
  let read = 0;
  const explained = new PostgresUserIndex(async (text, values) => {
    const { rows } = await pool.query({
      text: `EXPLAIN (ANALYZE, FORMAT JSON) ${text}`,
      values,
    });
    const plan = (rows[0] as { "QUERY PLAN": Array<{ Plan: PlanNode }> })["QUERY PLAN"][0];
    read = rowsRead(plan?.Plan as PlanNode, `${table}_users`);
    // EXPLAIN ANALYZE ran the statement but replies with its plan: a put's count, no removed rows.
    return { rows: text.startsWith("WITH") && text.includes("INSERT") ? [{ n: 1 }] : [] };
  }, names);
  const [big, small] = ["pg-big", "pg-small"];
  for (let i = 0; i < 3000; i += 250) {
    await Promise.all(Array.from({ length: 250 }, () => fast.put(big, entry(), null, NOW, 0)));
  }
  for (let i = 0; i < 10; i++) await fast.put(small, entry(), null, NOW, 0);
  await pool.query(`ANALYZE "public"."${table}_users"`);
  const work = async (user: string) => {
    const seen: Record<string, number> = {};
    const e = entry();
    await explained.put(user, e, null, NOW, 5);
    seen.signIn = read;
    const moved = { ...entry(e.handle) };
    await explained.put(user, moved, e.ref, NOW + 1, 5);
    seen.idChange = read;
    await explained.remove(user, { refs: [moved.ref] }, NOW + 2, false);
    seen.removeRef = read;
    const other = entry();
    await fast.put(user, other, null, NOW, 0);
    await explained.remove(user, { handles: [other.handle] }, NOW + 3, false);
    seen.removeHandle = read;
    return seen;
  };
  const [atBig, atSmall] = [await work(big), await work(small)];
  expect(atBig).toEqual(atSmall);
  // The count stops at the limit (5): a handful of rows at most, never the user's 3,000.
  for (const n of Object.values(atBig)) expect(n).toBeLessThanOrEqual(10);
});

test("a database migrated before the index's lookups by ref and deadline gets them on the next run", async () => {
  const table = "earlier";
  await migrate(pool, { table });
  await pool.query(`DROP INDEX "public"."${table}_users_ref", "public"."${table}_users_deadline"`);
  const store = new PostgresStore(pool, { table, sweepIntervalMs: 0 });
  const app = usersApp(usersEngine(store));
  const a = browser(app, "Before/1");
  await a.post("/login/pg-earlier");
  await migrate(pool, { table });
  const { rows } = await pool.query({
    text: "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = $1 ORDER BY indexname",
    values: [`${table}_users`],
  });
  const defs = (rows as Array<{ indexname: string; indexdef: string }>).map(
    (r) => `${r.indexname}: ${r.indexdef.replace(/^.* USING btree /, "")}`,
  );
  expect(defs).toEqual([
    `${table}_users_deadline: (user_id, deadline)`,
    `${table}_users_expires_at: (expires_at)`,
    `${table}_users_pkey: (user_id, handle)`,
    `${table}_users_ref: (user_id, ref)`,
  ]);
  // What was there is kept and still listed; sign-in goes on.
  await browser(app, "After/2").post("/login/pg-earlier");
  const listed = await a.json<Array<{ userAgent: string }>>("GET", "/sessions");
  expect(listed.map((s) => s.userAgent).sort()).toEqual(["After/2", "Before/1"]);
  await store.close();
});

/**
 * Concurrent sign-ins of one user with PostgreSQL: a count taken in the put's own snapshot would
 * miss the other sign-ins' rows, so each would report "under the limit" and the user would keep
 * more live sessions than max_sessions_per_user. The count is its own statement, after the put.
 */
test("concurrent sign-ins of one user never leave more live sessions than the limit", async () => {
  const store = new PostgresStore(pool, { sweepIntervalMs: 0 });
  const engine = usersEngine(store, { maxSessionsPerUser: 2, expirySecs: 3600 });
  const app = usersApp(engine);
  let worst = 0;
  for (let round = 0; round < 40; round++) {
    const user = `burst-${round}`;
    const all = Array.from({ length: 3 }, (_, i) => browser(app, `Burst/${i}`));
    const statuses = await Promise.all(
      all.map(async (b) => (await b.post(`/login/${user}`)).status),
    );
    expect(statuses.every((s) => s === 200)).toBe(true);
    worst = Math.max(worst, (await engine.listUserSessions(user)).length);
  }
  expect(worst).toBeLessThanOrEqual(2);
});
