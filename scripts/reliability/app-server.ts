import { serve } from "@hono/node-server";
import { Hono } from "hono";
import { getCsrfToken, getSession, session, sessionLock } from "../../src/adapters/hono.js";
import type { SessionStore } from "../../src/core/store.js";
import { createSessionEngine } from "../../src/setup.js";
import { MemoryStore } from "../../src/stores/memory.js";

/**
 * One coatcheck app process for the reliability scripts and tests: Hono on @hono/node-server, on a
 * loopback port it prints as `listening <port>`. `REDIS_URL` set: `storage = "redis"` (the client
 * coatcheck builds itself); `POSTGRES_URL` set: `storage = "postgres"` (tables created at start-up
 * when missing); neither: a MemoryStore capped at `MAX_SESSIONS`. CSRF stays on; the
 * token travels in the `X-CSRF-Token` header. Unhandled rejections are counted and reported by
 * `/stats` and on stderr, so the parent can prove there were none.
 */

const env = process.env;
const redisUrl = env.REDIS_URL;
const postgresUrl = env.POSTGRES_URL;
const memory =
  redisUrl || postgresUrl
    ? null
    : new MemoryStore({ maxSessions: Number(env.MAX_SESSIONS ?? 100_000) });
const logged = { errors: 0, warnings: 0 };
const quiet = env.QUIET_LOGS === "1";
const engine = createSessionEngine({
  env: {},
  secure: false,
  expirySecs: Number(env.EXPIRY_SECS ?? 3600),
  operationTimeoutMs: Number(env.OP_TIMEOUT_MS ?? 1000),
  lockTimeoutMs: Number(env.LOCK_TIMEOUT_MS ?? 5000),
  ...(redisUrl
    ? { storage: "redis" as const, redisUrl, keyPrefix: env.KEY_PREFIX ?? "reliability:" }
    : postgresUrl
      ? { storage: "postgres" as const, postgresUrl, postgresCreateTable: true }
      : { store: memory as SessionStore }),
  logger: {
    // One line per failed request would flood the parent's terminal during an outage.
    error(_f: unknown, message: string) {
      logged.errors++;
      if (!quiet) process.stderr.write(`${message}\n`);
    },
    warn(_f: unknown, message: string) {
      logged.warnings++;
      if (!quiet) process.stderr.write(`${message}\n`);
    },
  },
});

let unhandled = 0;
process.on("unhandledRejection", (reason) => {
  unhandled++;
  process.stderr.write(`UNHANDLED REJECTION ${String(reason)}\n`);
});

let maxRecords = 0;
const app = new Hono();
// Registered before session(), so it runs after the commit: the record count includes the write.
app.use(async (_c, next) => {
  await next();
  if (memory) maxRecords = Math.max(maxRecords, memory.stats().records);
});
app.get("/health", (c) => c.text("ok"));
app.get("/stats", (c) => {
  const m = process.memoryUsage();
  return c.json({
    pid: process.pid,
    rss: m.rss,
    heapUsed: m.heapUsed,
    unhandled,
    logged,
    maxRecords,
    ...(memory ? memory.stats() : {}),
  });
});
app.use(session(engine));
// The sign-in page: starts a session holding only the CSRF secret.
app.get("/token", async (c) => c.text((await getCsrfToken(c)).token()));
app.post("/login/:user", async (c) => {
  const s = getSession(c);
  await s.insert("user", c.req.param("user"));
  await s.cycleId();
  return c.json({ token: (await getCsrfToken(c)).token() });
});
app.get("/session", async (c) => {
  const s = getSession(c);
  return c.json({
    pid: process.pid,
    user: (await s.get("user")) ?? null,
    hits: (await s.get("hits")) ?? 0,
    counter: (await s.get("counter")) ?? 0,
    keys: (await s.keys()).length,
  });
});
app.get("/whoami", async (c) => {
  const user = await getSession(c).get<string>("user");
  return user === undefined ? c.text("signed out", 401) : c.text(user);
});
// Reads and writes the session on every request: the route the outage load hits.
app.post("/hit", async (c) => {
  const s = getSession(c);
  const hits = ((await s.get<number>("hits")) ?? 0) + 1;
  await s.insert("hits", hits);
  return c.text(String(hits));
});
app.post("/counter", sessionLock(), async (c) => {
  const s = getSession(c);
  const n = ((await s.get<number>("counter")) ?? 0) + 1;
  await s.insert("counter", n);
  return c.text(String(n));
});
app.post("/set/:key", async (c) => {
  const s = getSession(c);
  if ((await s.get("user")) === undefined) return c.text("signed out", 401);
  await s.insert(`k:${c.req.param("key")}`, c.req.param("key"));
  return c.text("set");
});
app.post("/logout", async (c) => {
  await getSession(c).destroy();
  return c.text("bye");
});
// A new visitor: one session per request, for the soak.
app.get("/visit", async (c) => {
  await getSession(c).insert("cart", { items: [1, 2, 3], note: "x".repeat(200) });
  return c.text("welcome");
});

serve({ fetch: app.fetch, port: Number(env.PORT ?? 0), hostname: "127.0.0.1" }, (info) => {
  process.stdout.write(`listening ${info.port}\n`);
});
