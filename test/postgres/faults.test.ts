import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createSessionEngine } from "../../src/setup.js";
import { Jar, sessionApp } from "../support/hono-app.js";
import {
  createTestDatabase,
  type PostgresServer,
  startPostgresServer,
  type TestDatabase,
} from "../support/postgres.js";

/**
 * PostgreSQL failing under a running app, through `storage = "postgres"` (the pool coatcheck
 * builds from `postgres_url`). The server is this file's own, on a free port, so stopping and
 * pausing it touches nothing else.
 */

const OPERATION_TIMEOUT_MS = 300;
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);
let server: PostgresServer;

beforeAll(async () => {
  process.on("unhandledRejection", onUnhandled);
  server = await startPostgresServer();
}, 60_000);
afterAll(async () => {
  process.off("unhandledRejection", onUnhandled);
  await server?.dispose();
  expect(unhandled).toEqual([]);
});

function recorder() {
  const errors: string[] = [];
  const warnings: string[] = [];
  return {
    errors,
    warnings,
    logger: {
      error: (_f: unknown, m: string) => errors.push(m),
      warn: (_f: unknown, m: string) => warnings.push(m),
    },
  };
}

function appFor(postgresUrl: string, options: { createTable?: boolean } = {}, log = recorder()) {
  const engine = createSessionEngine({
    env: {},
    secure: false,
    csrf: { enabled: false },
    storage: "postgres",
    postgresUrl,
    postgresCreateTable: options.createTable ?? true,
    operationTimeoutMs: OPERATION_TIMEOUT_MS,
    logger: log.logger,
  });
  return { app: sessionApp(engine), engine, log };
}

type App = ReturnType<typeof sessionApp>;

async function eventually(check: () => Promise<boolean>, limitMs = 15_000): Promise<void> {
  const until = performance.now() + limitMs;
  while (!(await check())) {
    if (performance.now() > until) throw new Error("condition not reached");
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function expect503(response: Response | Promise<Response>): Promise<void> {
  const r = await response;
  expect(r.status).toBe(503);
  expect(r.headers.get("retry-after")).toBe("1");
  expect(((await r.json()) as { error: string }).error).toBe("session_store_unavailable");
}

async function works(app: App, jar: Jar): Promise<boolean> {
  const r = await app.request("/set/probe/1", { method: "POST", headers: jar.headers() });
  jar.take(r);
  return r.status === 200;
}

async function probe(app: App, jar: Jar): Promise<unknown> {
  const r = await app.request("/get/probe", { headers: jar.headers() });
  return r.status === 200 ? r.json() : r.status;
}

describe("PostgreSQL faults", () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase("faults", server.url);
  });
  afterAll(async () => {
    await db?.drop();
  });

  test("server down at start: 503 at once, untouched routes fine, recovery by itself", async () => {
    await server.stop();
    const { app, engine } = appFor(db.url);
    try {
      expect((await app.request("/untouched")).status).toBe(200);
      await expect503(app.request("/set/a/1", { method: "POST" }));
      await expect503(
        app.request("/get/a", { headers: { cookie: `session_id=${"A".repeat(32)}` } }),
      );
      await server.start();
      const jar = new Jar();
      // createTable: the tables are made by the first operation that finds them missing.
      await eventually(() => works(app, jar));
      expect(await probe(app, jar)).toBe("1");
    } finally {
      await engine.store.close?.();
    }
  }, 60_000);

  test("server stopped mid-run: 503 while down, sessions survive its restart", async () => {
    const { app, engine, log } = appFor(db.url);
    try {
      const jar = new Jar();
      await eventually(() => works(app, jar));
      await server.stop();
      await expect503(app.request("/get/probe", { headers: jar.headers() }));
      await expect503(app.request("/set/a/1", { method: "POST", headers: jar.headers() }));
      await server.start();
      await eventually(async () => (await probe(app, jar)) === "1");
      expect(log.errors.some((e) => e.includes("PostgreSQL connection lost"))).toBe(true);
      expect(log.warnings).toContain("PostgreSQL connection restored");
    } finally {
      await engine.store.close?.();
    }
  }, 60_000);

  test("a paused server (SIGSTOP): 503 after the operation timeout, no hang, no pile-up", async () => {
    const { app, engine } = appFor(db.url);
    try {
      const jar = new Jar();
      await eventually(() => works(app, jar));
      server.pause();
      const started = performance.now();
      // More requests than the pool has connections: none may wait for a connection to free up.
      const replies = await Promise.all(
        Array.from({ length: 25 }, () => app.request("/get/probe", { headers: jar.headers() })),
      );
      expect(replies.map((r) => r.status)).toEqual(Array(25).fill(503));
      await expect503(app.request("/set/a/1", { method: "POST", headers: jar.headers() }));
      // A generous bound: what matters is that the requests end at all.
      expect(performance.now() - started).toBeLessThan(OPERATION_TIMEOUT_MS * 20);
      server.resume();
      await eventually(async () => (await probe(app, jar)) === "1");
    } finally {
      server.resume();
      await engine.store.close?.();
    }
  }, 60_000);

  test("tables missing and postgres_create_table off: 503 with the migration named", async () => {
    const empty = await createTestDatabase("no_table", server.url);
    const { app, engine, log } = appFor(empty.url, { createTable: false });
    try {
      await expect503(app.request("/set/a/1", { method: "POST" }));
      expect(log.errors.some((e) => /does not exist.*migrate\(\)/.test(e))).toBe(true);
    } finally {
      await engine.store.close?.();
      await empty.drop();
    }
  }, 60_000);
});
