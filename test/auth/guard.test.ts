import { Hono } from "hono";
import { describe, expect, test } from "vitest";
import { getSession, requireAuth, requireRole, session } from "../../src/adapters/hono.js";
import { AuthSession } from "../../src/core/auth.js";
import { negotiate, type Refusal, requestKind } from "../../src/core/errors.js";
import { accessGuard, guardDecision } from "../../src/core/guard.js";
import { createSessionEngine } from "../../src/setup.js";
import { MemoryStore } from "../../src/stores/memory.js";
import { Jar } from "../support/hono-app.js";

const BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

describe("requestKind", () => {
  test.each([
    [{ accept: BROWSER }, "page"],
    [{ accept: "application/json, text/html" }, "page"],
    [{ accept: undefined }, "api"],
    [{ accept: "*/*" }, "api"],
    [{ accept: "application/json" }, "api"],
    [{ accept: "application/problem+json" }, "api"],
    [{ accept: BROWSER, hx: "true" }, "htmx"],
    [{ accept: "application/json", hx: "true" }, "htmx"],
    [{ accept: BROWSER, hx: "false" }, "page"],
  ] as const)("%o → %s", (request, kind) => {
    expect(requestKind("hx" in request ? request.hx : undefined, request.accept)).toBe(kind);
  });
});

describe("guardDecision, negotiated", () => {
  const base = { loginUrl: "/signin" };
  const signedOut = guardDecision({ ...base, authenticated: false, authorized: false });
  const noRole = guardDecision({ ...base, authenticated: true, authorized: false });
  test("signed in with the role: proceed", () => {
    expect(guardDecision({ ...base, authenticated: true, authorized: true })).toBeNull();
  });
  test("page navigation: 303 to the login page", () => {
    const r = negotiate(signedOut as Refusal, "page");
    expect(r.status).toBe(303);
    expect(r.headers.location).toBe("/signin");
    expect(r.headers["cache-control"]).toBe("no-store");
  });
  test("htmx: 401 with HX-Redirect", () => {
    const r = negotiate(signedOut as Refusal, "htmx");
    expect(r.status).toBe(401);
    expect(r.headers["hx-redirect"]).toBe("/signin");
    expect(r.headers.location).toBeUndefined();
  });
  test("API: 401 JSON", () => {
    const r = negotiate(signedOut as Refusal, "api");
    expect(r.status).toBe(401);
    expect(JSON.parse(r.body)).toMatchObject({ error: "unauthenticated", login: "/signin" });
  });
  test("signed in without the role: 403, an HTML page for a browser, JSON for an API call", () => {
    const page = negotiate(noRole as Refusal, "page");
    expect(page.status).toBe(403);
    expect(page.headers["content-type"]).toBe("text/html; charset=utf-8");
    const api = negotiate(noRole as Refusal, "api");
    expect(api.status).toBe(403);
    expect(JSON.parse(api.body)).toMatchObject({ error: "forbidden" });
  });
});

describe("accessGuard options are checked at construction", () => {
  test.each([
    [{ loginUrl: "" }, /loginUrl/],
    [{ loginUrl: "/login\r\nSet-Cookie: x=1" }, /line breaks/],
    [{ roles: [] }, /roles/],
    [{ roles: ["admin", ""] }, /roles/],
    [{ roles: "" }, /roles/],
    [{ roles: 42 as unknown as string }, /roles/],
  ])("%o throws", (policy, message) => {
    expect(() => accessGuard(policy)).toThrow(message);
  });
  test("requireRole with a bad role throws when the app is built", () => {
    expect(() => requireRole("")).toThrow(TypeError);
  });
});

function guardedApp() {
  const engine = createSessionEngine({
    env: {},
    secure: false,
    csrf: { enabled: false },
    store: new MemoryStore(),
  });
  const app = new Hono();
  app.use(session(engine));
  app.post("/as/:user/:roles", async (c) => {
    const auth = await AuthSession.open(getSession(c));
    await auth.login(c.req.param("user"), c.req.param("roles").split(","));
    return c.text("signed in");
  });
  app.get("/page", requireAuth(), (c) => c.text("protected content"));
  app.post("/action", requireAuth({ loginUrl: "/auth/signin" }), (c) => c.text("done"));
  app.get("/admin", requireRole("admin"), (c) => c.text("admin"));
  app.get("/staff", requireRole(["admin", "editor"]), (c) => c.text("staff"));
  app.get("/both", requireRole(["admin", "editor"], { all: true }), (c) => c.text("both"));
  return app;
}

describe("Hono guards", () => {
  test("not signed in: page 303, HTMX 401 + HX-Redirect, API 401 JSON; the handler never runs", async () => {
    const app = guardedApp();
    const page = await app.request("/page", { headers: { accept: BROWSER } });
    expect(page.status).toBe(303);
    expect(page.headers.get("location")).toBe("/login");
    expect(await page.text()).not.toContain("protected");

    const htmx = await app.request("/action", {
      method: "POST",
      headers: { "hx-request": "true", accept: "*/*" },
    });
    expect(htmx.status).toBe(401);
    expect(htmx.headers.get("hx-redirect")).toBe("/auth/signin");

    const api = await app.request("/page", { headers: { accept: "application/json" } });
    expect(api.status).toBe(401);
    expect(api.headers.get("content-type")).toContain("application/json");
    expect(await api.json()).toEqual({
      error: "unauthenticated",
      message: "Sign in to continue.",
      login: "/login",
    });
    // A refused anonymous request creates no session.
    expect(api.headers.get("set-cookie")).toBeNull();
  });

  test("missing role: 403 for page, HTMX and API; any-of and all-of role lists", async () => {
    const app = guardedApp();
    const jar = new Jar();
    jar.take(await app.request("/as/ed/editor", { method: "POST" }));
    const as = (accept: string, extra: Record<string, string> = {}) => ({
      headers: { ...jar.headers(), accept, ...extra },
    });
    expect((await app.request("/admin", as(BROWSER))).status).toBe(403);
    expect((await app.request("/admin", as(BROWSER, { "hx-request": "true" }))).status).toBe(403);
    const api = await app.request("/admin", as("application/json"));
    expect(api.status).toBe(403);
    expect(await api.json()).toMatchObject({ error: "forbidden" });

    expect((await app.request("/staff", as(BROWSER))).status).toBe(200);
    expect((await app.request("/both", as(BROWSER))).status).toBe(403);
    expect((await app.request("/page", as(BROWSER))).status).toBe(200);

    jar.take(await app.request("/as/root/admin,editor", { method: "POST", ...as(BROWSER) }));
    expect(await (await app.request("/both", as(BROWSER))).text()).toBe("both");
    expect(await (await app.request("/admin", as(BROWSER))).text()).toBe("admin");
  });
});

test("a store outage while the guard reads the session answers 503, not a crash", async () => {
  class DownStore extends MemoryStore {
    override async load(): Promise<never> {
      throw new Error("connection refused");
    }
  }
  const errors: string[] = [];
  const engine = createSessionEngine({
    env: {},
    secure: false,
    csrf: { enabled: false },
    store: new DownStore(),
    logger: { warn: () => {}, error: (_f: unknown, m: string) => errors.push(m) },
  });
  const app = new Hono();
  app.onError((_error, c) => c.text("Internal Server Error", 500));
  app.use(session(engine));
  app.get("/page", requireAuth(), (c) => c.text("protected content"));
  const res = await app.request("/page", {
    headers: { accept: BROWSER, cookie: `session_id=${"a".repeat(32)}` },
  });
  expect(res.status).toBe(503);
  expect(res.headers.get("retry-after")).toBe("1");
  // A browser gets a page, like every response coatcheck writes for it.
  expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
  expect(await res.text()).toContain("Service Unavailable");
  expect(errors.join("\n")).toMatch(/connection refused/);
});
