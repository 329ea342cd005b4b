import { afterEach, describe, expect, test } from "vitest";
import type { SessionStore } from "../../src/core/store.js";
import { fakeClock } from "../support/clock.js";
import { Jar } from "../support/hono-app.js";
import { recordingLogger, seedApp } from "./seed-app.js";
import { storeCases } from "./stores.js";

const HTML = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

describe.each(storeCases)("seed flows on the $name store", ({ make }) => {
  let store: SessionStore;
  afterEach(async () => {
    await store?.close?.();
  });

  async function setup() {
    store = await make();
    const log = recordingLogger();
    const clock = fakeClock();
    const { app } = seedApp(store, log.logger, clock.now);
    const jar = new Jar();
    const request = async (path: string, init: RequestInit = {}) => {
      const res = await app.request(path, {
        ...init,
        headers: { accept: HTML, ...jar.headers(), ...(init.headers as Record<string, string>) },
      });
      jar.take(res);
      return res;
    };
    const login = (user: string, roles = "user") =>
      request("/login", {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ user, roles }).toString(),
      });
    return { app, jar, request, login, log, clock };
  }

  test("login → 303 → dashboard shows the flash once; a reload shows none", async () => {
    const { request, login } = await setup();
    const res = await login("alice");
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/dashboard");

    const first = await (await request("/dashboard")).text();
    expect(first).toContain("<h1>Welcome, alice!</h1>");
    expect(first).toContain(
      '<div class="flash-success" data-icon="check-circle">Welcome back, alice!</div>',
    );

    const reload = await request("/dashboard");
    expect(reload.status).toBe(200);
    const again = await reload.text();
    expect(again).toContain("Welcome, alice!");
    expect(again).not.toContain("flash-success");
  });

  test("authenticatedAt is the engine clock in unix seconds, and the API sees the fields", async () => {
    const { request, login, clock } = await setup();
    await login("alice", "user,admin,user");
    const res = await request("/api/me", { headers: { accept: "application/json" } });
    expect(await res.json()).toEqual({
      userId: "alice",
      roles: ["user", "admin"],
      authenticatedAt: Math.floor(clock.now() / 1000),
      extra: {},
    });
  });

  test("logout → protected page redirects to the login page", async () => {
    const { request, login } = await setup();
    await login("alice");
    expect((await request("/dashboard")).status).toBe(200);

    const out = await request("/logout", { method: "POST" });
    expect(out.status).toBe(303);
    const home = await (await request("/")).text();
    expect(home).toContain(
      '<div class="flash-info" data-icon="info-circle">You have been signed out.</div>',
    );

    const protectedPage = await request("/dashboard");
    expect(protectedPage.status).toBe(303);
    expect(protectedPage.headers.get("location")).toBe("/login");
  });

  test("login rotates the session id and the CSRF secret; the old cookie no longer works", async () => {
    const { request, login, jar } = await setup();
    await request("/cart/apple", { method: "POST" });
    await request("/csrf-secret", { method: "POST" });
    const before = jar.cookie;
    expect(before).not.toBe("");

    await login("alice");
    const after = jar.cookie;
    expect(after).not.toBe(before);

    const keys = (await (await request("/keys")).json()) as string[];
    expect(keys).not.toContain("_csrf_token");
    expect(keys).toContain("cart");
    expect(keys).toContain("_auth");

    // The pre-login cookie is dead: no cart, no user, and it is not adopted.
    const stale = await request("/cart", { headers: { cookie: before } });
    expect(await stale.text()).toBe("<ul></ul><p>0.00</p>");
    const staleDashboard = await request("/dashboard", { headers: { cookie: before } });
    expect(staleDashboard.status).toBe(303);

    jar.cookie = after;
    expect(await (await request("/cart")).text()).toBe("<ul><li>apple</li></ul><p>9.99</p>");
  });

  test("logout rotates the session id and the CSRF secret; the signed-in cookie no longer works", async () => {
    const { request, login, jar } = await setup();
    await login("alice", "admin");
    await request("/csrf-secret", { method: "POST" });
    await request("/cart/pear", { method: "POST" });
    const signedIn = jar.cookie;
    expect((await request("/admin")).status).toBe(200);

    await request("/logout", { method: "POST" });
    const afterLogout = jar.cookie;
    expect(afterLogout).not.toBe("");
    expect(afterLogout).not.toBe(signedIn);

    const keys = (await (await request("/keys")).json()) as string[];
    expect(keys).not.toContain("_csrf_token");
    expect(keys).not.toContain("_auth");
    // The cart survives logout (destroy() is the full wipe); the flash is pending.
    expect(keys).toContain("cart");

    const replay = await request("/admin", { headers: { cookie: signedIn } });
    expect(replay.status).toBe(303);
    expect(replay.headers.get("location")).toBe("/login");
  });

  test("cart add → view, the seed's TypedSession example", async () => {
    const { request } = await setup();
    const add = await request("/cart/book", { method: "POST" });
    expect(await add.text()).toBe("Added to cart");
    await request("/cart/lamp", { method: "POST" });
    expect(await (await request("/cart")).text()).toBe(
      "<ul><li>book</li><li>lamp</li></ul><p>19.98</p>",
    );
  });

  test("role-based access: 403 without the role, 200 with it", async () => {
    const { request, login } = await setup();
    await login("bob", "user");
    const denied = await request("/admin");
    expect(denied.status).toBe(403);
    await login("carol", "user,admin");
    const allowed = await request("/admin");
    expect(allowed.status).toBe(200);
    expect(await allowed.text()).toBe("Admin dashboard");
  });

  test("a tampered auth record is logged and treated as signed out", async () => {
    const { request, login, jar, log, clock } = await setup();
    await login("alice", "admin");
    const id = decodeURIComponent(jar.cookie.split("=")[1] ?? "");
    const record = await store.load(id, clock.now());
    if (record === null) throw new Error("the login was not stored");
    // Roles without a user: never taken for a signed-in admin.
    const forged = { userId: null, roles: ["admin"], authenticatedAt: null, extra: {} };
    const write = { set: { _auth: JSON.stringify(forged) }, del: [], meta: record.meta };
    expect(await store.write(id, write, "update", clock.now())).toBe(true);
    const res = await request("/admin");
    expect(res.status).toBe(303);
    expect(log.warnings.join("\n")).toMatch(/typed session "_auth".*replaced by the default/);
  });
});
