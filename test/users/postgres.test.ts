import { afterAll, beforeAll, expect, test } from "vitest";
import { migrate, PostgresStore } from "../../src/stores/postgres.js";
import { createTestDatabase, type TestDatabase } from "../support/postgres.js";
import { browser, usersApp, usersEngine } from "./app.js";
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
