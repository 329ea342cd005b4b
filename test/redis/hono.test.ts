import { Hono } from "hono";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { getSession, session, sessionLock } from "../../src/adapters/hono.js";
import type { SessionStore } from "../../src/core/store.js";
import { createSessionEngine } from "../../src/setup.js";
import { MemoryStore } from "../../src/stores/memory.js";
import { RedisStore } from "../../src/stores/redis.js";
import { Jar, sessionApp } from "../support/hono-app.js";
import { nodeRedis, requireSharedRedis, uniquePrefix } from "../support/redis.js";

/** End to end through Hono's request path, on the shared Redis. */

let client: Awaited<ReturnType<typeof nodeRedis>>;

beforeAll(async () => {
  await requireSharedRedis();
  client = await nodeRedis();
});
afterAll(async () => {
  await client?.close();
});

function redisStore(): RedisStore {
  return new RedisStore(client, { keyPrefix: uniquePrefix("hono") });
}

function engineWith(store: SessionStore) {
  return createSessionEngine({
    env: {},
    secure: false,
    csrf: { enabled: false },
    expirySecs: 3600,
    lockTimeoutMs: 15_000,
    store,
  });
}

function idOf(jar: Jar): string {
  return jar.cookie.split("=")[1] ?? "";
}

/** A promise with its resolver, to hold a request at a chosen point. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((r) => {
    open = r;
  });
  return { open, opened };
}

describe("Hono on the Redis store", () => {
  test("create, read, change, cycle and destroy a session", async () => {
    const store = redisStore();
    const app = sessionApp(engineWith(store));
    const jar = new Jar();
    expect(jar.take(await app.request("/set/user/alice", { method: "POST" }))).toMatch(
      /^session_id=/,
    );
    const first = idOf(jar);
    expect(await (await app.request("/get/user", { headers: jar.headers() })).json()).toBe("alice");

    const set = await app.request("/set/theme/dark", { method: "POST", headers: jar.headers() });
    expect(set.headers.get("set-cookie")).toBeNull();

    jar.take(await app.request("/cycle", { method: "POST", headers: jar.headers() }));
    expect(idOf(jar)).not.toBe(first);
    expect(await client.exists(store.keyOf(first))).toBe(0);
    expect(await (await app.request("/get/theme", { headers: jar.headers() })).json()).toBe("dark");

    const destroyed = await app.request("/destroy", { method: "POST", headers: jar.headers() });
    expect(destroyed.headers.get("set-cookie")).toMatch(/Max-Age=0/);
    expect(await (await app.request("/get/user", { headers: jar.headers() })).json()).toBeNull();
    jar.take(destroyed);
    expect(jar.cookie).toBe("");
  });

  test("every write sets a TTL matching the session's expiry", async () => {
    const store = redisStore();
    const app = sessionApp(engineWith(store));
    const jar = new Jar();
    const ttl = async () => Number(await client.pTTL(store.keyOf(idOf(jar))));
    jar.take(await app.request("/set/a/1", { method: "POST" }));
    const created = await ttl();
    expect(created > 3_500_000 && created <= 3_600_000).toBe(true);
    await app.request("/set/b/2", { method: "POST", headers: jar.headers() });
    expect((await ttl()) > 3_500_000).toBe(true);
    jar.take(await app.request("/cycle", { method: "POST", headers: jar.headers() }));
    expect((await ttl()) > 3_500_000).toBe(true);
    jar.take(await app.request("/remember/120", { method: "POST", headers: jar.headers() }));
    const remembered = await ttl();
    expect(remembered > 100_000 && remembered <= 120_000).toBe(true);
  });

  test("a corrupt record is logged and the request sees an empty session", async () => {
    const warnings: string[] = [];
    const store = new RedisStore(client, {
      keyPrefix: uniquePrefix("corrupt"),
      logger: { warn: (_f: unknown, m: string) => warnings.push(m) },
    });
    const app = sessionApp(engineWith(store));
    const jar = new Jar();
    jar.take(await app.request("/set/user/alice", { method: "POST" }));
    const key = store.keyOf(idOf(jar));
    await client.hSet(key, "m", "not json");
    const read = await app.request("/get/user", { headers: jar.headers() });
    expect(read.status).toBe(200);
    expect(await read.json()).toBeNull();
    expect(warnings.join("\n")).toContain(key);
    // Deleted when found, so it is logged once, not on every read.
    expect(await client.exists(key)).toBe(0);
    expect(warnings).toHaveLength(1);
    await client.set(key, "a string, not a hash");
    expect((await app.request("/get/user", { headers: jar.headers() })).status).toBe(200);
    expect(await client.exists(key)).toBe(0);
    const fresh = await app.request("/set/user/bob", { method: "POST", headers: jar.headers() });
    expect(fresh.status).toBe(200);
    expect(fresh.headers.get("set-cookie")).toMatch(/^session_id=/);
    expect(warnings).toHaveLength(2);
  });

  test("two parallel requests changing different keys both persist", async () => {
    const app = sessionApp(engineWith(redisStore()));
    const jar = new Jar();
    jar.take(await app.request("/set/base/0", { method: "POST" }));
    await Promise.all(
      ["a", "b", "c", "d"].map((k) =>
        app.request(`/set/${k}/${k}`, { method: "POST", headers: jar.headers() }),
      ),
    );
    for (const k of ["base", "a", "b", "c", "d"]) {
      const value = await (await app.request(`/get/${k}`, { headers: jar.headers() })).json();
      expect(value).toBe(k === "base" ? "0" : k);
    }
  });

  describe("a save after a parallel destroy or cycleId does not resurrect the session", () => {
    function racingApp(store: SessionStore) {
      const loaded = gate();
      const release = gate();
      const app = new Hono();
      app.use(session(engineWith(store)));
      app.post("/set/:key/:value", async (c) => {
        await getSession(c).insert(c.req.param("key"), c.req.param("value"));
        return c.text("set");
      });
      app.post("/slow/:key", async (c) => {
        const s = getSession(c);
        await s.load();
        loaded.open();
        await release.opened;
        await s.insert(c.req.param("key"), "late");
        return c.text("late write");
      });
      app.post("/destroy", async (c) => {
        await getSession(c).destroy();
        return c.text("destroyed");
      });
      app.post("/cycle", async (c) => {
        await getSession(c).cycleId();
        return c.text("cycled");
      });
      app.get("/keys", async (c) => c.json(await getSession(c).keys()));
      return { app, loaded, release };
    }

    test.each(["destroy", "cycle"])("%s wins over a slower writer", async (op) => {
      const store = redisStore();
      const { app, loaded, release } = racingApp(store);
      const jar = new Jar();
      jar.take(await app.request("/set/user/alice", { method: "POST" }));
      const oldId = idOf(jar);
      const oldCookie = jar.headers();

      const slow = app.request("/slow/extra", { method: "POST", headers: oldCookie });
      await loaded.opened;
      jar.take(await app.request(`/${op}`, { method: "POST", headers: oldCookie }));
      release.open();
      const late = await slow;
      expect(late.status).toBe(200);
      // No Set-Cookie at all: clearing by name would also wipe the cookie the winner just set.
      expect(late.headers.get("set-cookie")).toBeNull();

      expect(await client.exists(store.keyOf(oldId))).toBe(0);
      const old = await app.request("/keys", { headers: oldCookie });
      expect(await old.json()).toEqual([]);
      if (op === "cycle") {
        expect(idOf(jar)).not.toBe(oldId);
        expect(await (await app.request("/keys", { headers: jar.headers() })).json()).toEqual([
          "user",
        ]);
      }
    });
  });

  describe("the per-session lock serialises read-modify-write routes", () => {
    function cartApp(store: SessionStore) {
      const app = new Hono();
      app.use(session(engineWith(store)));
      app.post("/items/:item", sessionLock(), async (c) => {
        const s = getSession(c);
        const items = (await s.get<string[]>("items")) ?? [];
        // Yield so that, without the lock, the other requests would read the same list.
        await new Promise((r) => setTimeout(r, 1));
        items.push(c.req.param("item"));
        await s.insert("items", items);
        return c.json(items.length);
      });
      app.get("/items", async (c) => c.json((await getSession(c).get<string[]>("items")) ?? []));
      return app;
    }

    test.each([
      ["Redis", () => redisStore()],
      ["memory", () => new MemoryStore()],
    ])("on %s: 50 parallel appends leave 50 entries", async (_name, makeStore) => {
      const app = cartApp(makeStore());
      const jar = new Jar();
      jar.take(await app.request("/items/first", { method: "POST" }));
      const responses = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          app.request(`/items/i${i}`, { method: "POST", headers: jar.headers() }),
        ),
      );
      expect(responses.map((r) => r.status)).toEqual(Array(50).fill(200));
      const items = (await (
        await app.request("/items", { headers: jar.headers() })
      ).json()) as string[];
      expect(items).toHaveLength(51);
      expect(new Set(items).size).toBe(51);
    });

    test("the lock works across two engines (two app instances) sharing Redis", async () => {
      const prefix = uniquePrefix("two-engines");
      const one = cartApp(new RedisStore(client, { keyPrefix: prefix }));
      const two = cartApp(new RedisStore(client, { keyPrefix: prefix }));
      const jar = new Jar();
      jar.take(await one.request("/items/first", { method: "POST" }));
      await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          (i % 2 ? one : two).request(`/items/i${i}`, { method: "POST", headers: jar.headers() }),
        ),
      );
      const items = await (await two.request("/items", { headers: jar.headers() })).json();
      expect(items).toHaveLength(31);
    });
  });
});
