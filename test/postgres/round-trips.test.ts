import { afterAll, beforeAll, expect, test } from "vitest";
import { createSessionEngine } from "../../src/setup.js";
import { migrate, PostgresStore } from "../../src/stores/postgres.js";
import { fakeClock } from "../support/clock.js";
import { Jar, sessionApp } from "../support/hono-app.js";
import { countingPool, createTestDatabase, type TestDatabase } from "../support/postgres.js";

/**
 * Round trips per request on PostgreSQL, counted by a pool that records every statement it is
 * given: each `query` call is one statement and one round trip.
 */

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase("round_trips");
});
afterAll(async () => {
  await db?.drop();
});

test("0 statements untouched, 1 to read with idle renewal, 1 to create, 2 to read and save", async () => {
  const pool = db.pool();
  await migrate(pool);
  const counted = countingPool(pool);
  const clock = fakeClock();
  const store = new PostgresStore(counted, { sweepIntervalMs: 0 });
  const app = sessionApp(
    createSessionEngine({
      env: {},
      secure: false,
      csrf: { enabled: false },
      inactivityTimeoutSecs: 600,
      now: clock.now,
      store,
    }),
  );
  await store.ready();
  counted.reset();

  const jar = new Jar();
  jar.take(await app.request("/set/a/1", { method: "POST" }));
  expect(counted.reset()).toEqual([expect.stringMatching(/^coatcheck_create_/)]);
  const id = jar.cookie.split("=")[1] as string;
  const deadlineOf = async () =>
    Number(
      (
        await pool.query(`SELECT deadline FROM ${store.tables.sessions} WHERE id = $1`, [
          store.keyOf(id),
        ])
      ).rows[0].deadline,
    );

  await app.request("/untouched", { headers: jar.headers() });
  expect(counted.reset()).toEqual([]);

  const before = await deadlineOf();
  // Within a tenth of the timeout (60 s of 600 s) a read updates no row: same row version (xmin).
  const version = async () =>
    (
      await pool.query(`SELECT xmin::text AS v FROM ${store.tables.sessions} WHERE id = $1`, [
        store.keyOf(id),
      ])
    ).rows[0].v;
  const unread = await version();
  clock.advance(60_000);
  await app.request("/get/a", { headers: jar.headers() });
  counted.reset();
  expect(await deadlineOf()).toBe(before);
  expect(await version()).toBe(unread);
  clock.advance(1_000);
  const value = await (await app.request("/get/a", { headers: jar.headers() })).json();
  expect(value).toBe("1");
  expect(counted.reset()).toEqual([expect.stringMatching(/^coatcheck_load_/)]);
  expect(await deadlineOf()).toBe(before + 61_000);
  expect(await version()).not.toBe(unread);

  await app.request("/set/b/2", { method: "POST", headers: jar.headers() });
  expect(counted.reset()).toEqual([
    expect.stringMatching(/^coatcheck_load_/),
    expect.stringMatching(/^coatcheck_update_/),
  ]);
  // Writing the value a key already holds changes nothing, so only the load goes out.
  await app.request("/set/b/2", { method: "POST", headers: jar.headers() });
  expect(counted.reset()).toEqual([expect.stringMatching(/^coatcheck_load_/)]);
  await store.close();
});
