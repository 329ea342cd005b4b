/**
 * Memory per stored session, one store per process (run with --expose-gc by run.mjs):
 *   node --expose-gc memory.mjs <store> [sessions]
 * Stores 100k small sessions (user "alice", counter 0) the way each library stores them, then lets
 * them expire (20 s lifetime) and sends 20k requests that carry unknown ids, as a site's traffic
 * would, and reports whether the expired records were given back. Prints one JSON line.
 */
import { randomBytes } from "node:crypto";
import { fromDist } from "./lib/coatcheck.mjs";
import { sleep } from "./lib/util.mjs";

const which = process.argv[2];
const count = Number(process.argv[3] ?? 100_000);
// Long enough that no session expires while 100k are being created, on a slow machine too.
const LIFETIME_SECS = 20;
const TRAFFIC = 20_000;

/** Live heap after full collections; yields between them so finalizers (undici's) can run. */
async function heap() {
  for (let i = 0; i < 4; i++) {
    globalThis.gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
  const m = process.memoryUsage();
  return m.heapUsed + m.external + m.arrayBuffers;
}

const setups = {
  async coatcheck() {
    const { createSessionEngine, MemoryStore } = await fromDist("index.js");
    // generateId moved from the root entry to coatcheck/adapter-kit; older builds have it at the root.
    const generateId =
      (await fromDist("adapter-kit.js").catch(() => ({}))).generateId ??
      (await fromDist("index.js")).generateId;
    const store = new MemoryStore({ maxSessions: count * 2 });
    const engine = createSessionEngine({ store, expirySecs: LIFETIME_SECS, secure: false });
    return {
      async create() {
        const s = engine.open(null);
        await s.insert("user", "alice");
        await s.insert("n", 0);
        await engine.commit(s, 200);
      },
      async visit() {
        const s = engine.open(`${engine.config.cookieName}=${generateId()}`);
        await s.get("user");
        await engine.commit(s, 200);
      },
      size: () => store.size,
    };
  },
  async "express-session"() {
    const { default: session } = await import("express-session");
    const store = new session.MemoryStore();
    const put = (id, value) => new Promise((resolve) => store.set(id, value, resolve));
    const get = (id) => new Promise((resolve) => store.get(id, resolve));
    return {
      // What express-session hands its store for such a session (it keeps it as JSON text).
      create: () =>
        put(randomBytes(24).toString("base64url"), {
          cookie: {
            originalMaxAge: LIFETIME_SECS * 1000,
            expires: new Date(Date.now() + LIFETIME_SECS * 1000),
            httpOnly: true,
            path: "/",
            sameSite: "lax",
          },
          user: "alice",
          n: 0,
        }),
      visit: () => get(randomBytes(24).toString("base64url")),
      size: () => Object.keys(store.sessions).length,
      keys: () => Object.keys(store.sessions),
    };
  },
  async "@fastify/session"() {
    const { default: Fastify } = await import("fastify");
    const { default: fastifyCookie } = await import("@fastify/cookie");
    const { default: fastifySession } = await import("@fastify/session");
    const store = new fastifySession.MemoryStore();
    const app = Fastify();
    await app.register(fastifyCookie);
    await app.register(fastifySession, {
      store,
      secret: "a benchmark secret of at least thirty-two characters",
      saveUninitialized: false,
      cookie: { secure: false, maxAge: LIFETIME_SECS * 1000 },
    });
    app.get("/login", async (request) => {
      request.session.set("user", "alice");
      request.session.set("n", 0);
      return "ok";
    });
    app.get("/read", async (request) => request.session.get("user") ?? "anon");
    await app.ready();
    return {
      create: () => app.inject({ url: "/login" }),
      visit: () =>
        app.inject({
          url: "/read",
          headers: { cookie: `sessionId=${randomBytes(24).toString("base64url")}` },
        }),
      size: () => store.store.size,
      keys: () => store.store.keys(),
    };
  },
  async "hono-sessions"() {
    const { Hono } = await import("hono");
    const { MemoryStore, sessionMiddleware } = await import("hono-sessions");
    const store = new MemoryStore();
    const app = new Hono();
    app.use(sessionMiddleware({ store, expireAfterSeconds: LIFETIME_SECS }));
    app.get("/login", (c) => {
      c.get("session").set("user", "alice");
      c.get("session").set("n", 0);
      return c.text("ok");
    });
    app.get("/read", (c) => c.text(c.get("session").get("user") ?? "anon"));
    // It stores a session for every visitor it does not know, so the traffic below adds records;
    // what is given back is judged on the records created here.
    return {
      create: async () => (await app.request("/login")).text(),
      visit: async () =>
        (
          await app.request("/read", { headers: { cookie: `session=${crypto.randomUUID()}` } })
        ).text(),
      size: () => store.data.size,
      keys: () => store.data.keys(),
    };
  },
};

const setup = await setups[which]();
const before = await heap();
for (let i = 0; i < count; i++) await setup.create();
const filledAt = Date.now();
const filled = await heap();
const stored = setup.size();
// coatcheck has no key listing, and its traffic below creates no record, so its size tells.
const created = setup.keys ? new Set(setup.keys()) : null;
// Every record must be past its lifetime before the traffic starts: the last one was made at filledAt.
await sleep(Math.max(0, filledAt + LIFETIME_SECS * 1000 + 500 - Date.now()));
for (let i = 0; i < TRAFFIC; i++) await setup.visit();
let left = setup.size();
if (created !== null) {
  left = 0;
  for (const id of setup.keys()) if (created.has(id)) left++;
  created.clear();
}
process.stdout.write(
  `${JSON.stringify({
    store: which,
    sessions: count,
    stored,
    bytesPerSession: (filled - before) / count,
    // Some sessions expired before the last was created (a machine too slow or too busy): the
    // bytes per session would be understated, so the figure is void.
    void:
      stored === count
        ? null
        : `only ${stored} of ${count} sessions held after creating them: some expired during the ${LIFETIME_SECS} s creation window; rerun on a quieter machine or with fewer --memory-sessions`,
    afterExpiry: {
      traffic: TRAFFIC,
      recordsLeft: left,
    },
  })}\n`,
);
