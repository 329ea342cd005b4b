import { Hono } from "hono";
import { describe, expect, test } from "vitest";
import { getSession, session, sessionLock } from "../../src/adapters/hono.js";
import { createSessionEngine } from "../../src/setup.js";
import { Jar } from "../support/hono-app.js";

function cartApp(readFirst: boolean, locked: boolean) {
  const engine = createSessionEngine({
    env: {},
    secure: false,
    lockTimeoutMs: 10_000,
    csrf: { enabled: false },
  });
  const app = new Hono();
  app.use(session(engine));
  if (readFirst) {
    // Like the CSRF check: the session is read before the route's lock.
    app.use(async (c, next) => {
      await getSession(c).get("anything");
      await next();
    });
  }
  const append = async (c: import("hono").Context) => {
    const s = getSession(c);
    const items = (await s.get<string[]>("items")) ?? [];
    await new Promise((r) => setTimeout(r, 1)); // let the others interleave
    items.push(c.req.param("item") as string);
    await s.insert("items", items);
    return c.json(items.length);
  };
  if (locked) app.post("/items/:item", sessionLock(), append);
  else app.post("/items/:item", append);
  app.get("/items", async (c) => c.json((await getSession(c).get<string[]>("items")) ?? []));
  return app;
}

describe("per-session lock on the memory store", () => {
  test.each([
    ["lock taken before the first read", false],
    ["session already read before the lock", true],
  ])("%s: 50 parallel appends leave 50 entries", async (_name, readFirst) => {
    const app = cartApp(readFirst, true);
    const jar = new Jar();
    jar.take(await app.request("/items/first", { method: "POST" }));
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        app.request(`/items/i${i}`, { method: "POST", headers: jar.headers() }),
      ),
    );
    expect(results.map((r) => r.status)).toEqual(Array(50).fill(200));
    const items = (await (
      await app.request("/items", { headers: jar.headers() })
    ).json()) as string[];
    expect(items).toHaveLength(51);
    expect(new Set(items).size).toBe(51);
  });

  test("without the lock, same-key writes are last-write-wins (documented), so entries are lost", async () => {
    const app = cartApp(false, false);
    const jar = new Jar();
    jar.take(await app.request("/items/first", { method: "POST" }));
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        app.request(`/items/i${i}`, { method: "POST", headers: jar.headers() }),
      ),
    );
    const items = (await (
      await app.request("/items", { headers: jar.headers() })
    ).json()) as string[];
    expect(items.length).toBeLessThan(21);
  });

  test("a lock that cannot be had within lock_timeout_ms gives 503 with Retry-After", async () => {
    const engine = createSessionEngine({
      env: {},
      secure: false,
      lockTimeoutMs: 50,
      csrf: { enabled: false },
    });
    const app = new Hono();
    app.use(session(engine));
    let release: () => void = () => {};
    const held = new Promise<void>((r) => {
      release = r;
    });
    let entered: () => void = () => {};
    const inside = new Promise<void>((r) => {
      entered = r;
    });
    app.post("/seed", async (c) => {
      await getSession(c).insert("x", 1);
      return c.text("seeded");
    });
    app.post("/slow", sessionLock(), async (c) => {
      await getSession(c).insert("x", 2);
      entered();
      await held;
      return c.text("slow");
    });
    app.post("/fast", sessionLock(), async (c) => c.text(String(await getSession(c).get("x"))));
    const jar = new Jar();
    jar.take(await app.request("/seed", { method: "POST" }));
    const slow = app.request("/slow", { method: "POST", headers: jar.headers() });
    await inside;
    const fast = await app.request("/fast", { method: "POST", headers: jar.headers() });
    expect(fast.status).toBe(503);
    expect(fast.headers.get("retry-after")).toBe("1");
    expect(await fast.json()).toMatchObject({ error: "session_locked" });
    release();
    expect((await slow).status).toBe(200);
    const after = await app.request("/fast", { method: "POST", headers: jar.headers() });
    expect(await after.text()).toBe("2");
  });
});
