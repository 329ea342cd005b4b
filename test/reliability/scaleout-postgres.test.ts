import { afterAll, beforeAll, expect, test } from "vitest";
import { type AppProcess, headersOf, login } from "../../scripts/reliability/lib.js";
import { startInstances } from "../../scripts/reliability/scaleout-checks.js";
import { createTestDatabase, type TestDatabase } from "../support/postgres.js";
import { describeScaleoutChecks } from "../support/scaleout-suite.js";

/**
 * Scale-out on PostgreSQL: three app processes on their own loopback ports, `storage = "postgres"`
 * on one database of this run's own (the three race to create its tables at start-up), requests
 * spread round-robin by the client.
 */

let db: TestDatabase;
let apps: AppProcess[] = [];
let bases: string[] = [];
const everyApp: AppProcess[] = [];

async function start() {
  apps = await startInstances({ POSTGRES_URL: db.url }, 3);
  everyApp.push(...apps);
  bases = apps.map((a) => a.base);
}

beforeAll(async () => {
  db = await createTestDatabase("scaleout");
  await start();
}, 90_000);

afterAll(async () => {
  await Promise.all(apps.map((a) => a.stop()));
  await db?.drop();
  expect(everyApp.flatMap((a) => a.unhandled)).toEqual([]);
});

describeScaleoutChecks(() => bases, { clients: 6, keys: 60 });

test("a session survives restarting every app process", { timeout: 90_000 }, async () => {
  const v = await login(bases[0] as string, "stays");
  await Promise.all(apps.map((a) => a.stop()));
  expect(apps.map((a) => a.exits.length)).toEqual([1, 1, 1]);
  await start();
  const seen = await Promise.all(
    bases.map(async (b) => {
      const r = await fetch(`${b}/whoami`, { headers: headersOf(v) });
      return `${r.status} ${await r.text()}`;
    }),
  );
  expect(seen).toEqual(["200 stays", "200 stays", "200 stays"]);
});
