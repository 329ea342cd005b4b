import { expect, test } from "vitest";
import { AuthSession } from "../../../src/core/auth.js";
import { FlashMessage, FlashMessages } from "../../../src/core/flash.js";
import { describeMatrix } from "./matrix.js";
import type { Route } from "./scenario.js";

/**
 * The responses coatcheck writes or amends, the same on every framework: negotiated refusals
 * (403, 401, 503), headers applied deliberately, cache headers from what the request did with its
 * session, and the htmx answer to a rotation.
 */

const BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
const HTMX = { "hx-request": "true", accept: "*/*" };
const FORM = "application/x-www-form-urlencoded";

const routes: Route[] = [
  {
    method: "GET",
    path: "/token",
    handler: async ({ csrfToken }) => ({ body: (await csrfToken()).token() }),
  },
  {
    method: "GET",
    path: "/token/public",
    handler: async ({ csrfToken }) => ({
      body: (await csrfToken()).token(),
      headers: { "cache-control": "public, max-age=60" },
    }),
  },
  {
    method: "GET",
    path: "/read",
    handler: async ({ session }) => ({ body: String(await session.get("user")) }),
  },
  {
    method: "POST",
    path: "/flash",
    handler: async ({ session }) => {
      await FlashMessages.push(session, FlashMessage.info("hello"));
      return { body: "pushed" };
    },
  },
  {
    method: "GET",
    path: "/flash",
    handler: async ({ session }) => {
      const messages = await FlashMessages.of(session).messages();
      return { body: messages.map((m) => m.message).join(",") };
    },
  },
  {
    method: "POST",
    path: "/save",
    handler: async ({ session }) => {
      await session.insert("user", "alice");
      return {
        body: "saved with app headers",
        headers: {
          etag: '"v1"',
          "cache-control": "public, max-age=600",
          "set-cookie": "theme=dark; Path=/",
          "x-app": "yes",
        },
      };
    },
  },
  {
    method: "POST",
    path: "/login/:roles",
    handler: async ({ session, params }) => {
      await (await AuthSession.open(session)).login("alice", (params.roles ?? "").split(","));
      return { body: "signed in" };
    },
  },
  {
    method: "POST",
    path: "/login-redirect",
    handler: async ({ session }) => {
      await (await AuthSession.open(session)).login("alice", []);
      return { redirect: "/home" };
    },
  },
  { method: "GET", path: "/private", guard: {}, handler: async () => ({ body: "private" }) },
  {
    method: "GET",
    path: "/admin",
    guard: { roles: ["admin"] },
    handler: async () => ({ body: "admin" }),
  },
];

describeMatrix("responses coatcheck writes", (t) => {
  const csrfOn = { csrf: { enabled: true } };

  test("a failed CSRF check is negotiated: HTML page, htmx event, JSON; Vary on Origin", async () => {
    const app = await t.mount(csrfOn, routes);
    const client = app.client();
    await client.get("/token");
    const post = (headers: Record<string, string>) =>
      client.post("/flash", { headers: { "content-type": FORM, ...headers }, body: "_csrf=bad" });

    const page = await post({ accept: BROWSER });
    expect(page.status).toBe(403);
    expect(page.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(page.text).toContain("<h1>Form not accepted</h1>");

    const htmx = await post(HTMX);
    expect(htmx.status).toBe(403);
    expect(htmx.headers.get("hx-reswap")).toBe("none");
    expect(JSON.parse(htmx.headers.get("hx-trigger") ?? "")).toEqual({
      "coatcheck:csrf-failed": { reason: "token_malformed" },
    });

    const api = await post({ accept: "application/json" });
    expect(api.status).toBe(403);
    expect(JSON.parse(api.text)).toMatchObject({
      error: "csrf_validation_failed",
      reason: "token_malformed",
    });
    for (const res of [page, htmx, api]) {
      expect(res.headers.get("cache-control")).toBe("no-store");
      expect(res.headers.get("vary")).toMatch(/Origin, Sec-Fetch-Site/);
      expect(res.headers.get("set-cookie")).toBeNull();
    }
  });

  test("a CSRF-checked response that passed carries Vary: Origin, Sec-Fetch-Site", async () => {
    const app = await t.mount(csrfOn, routes);
    const client = app.client();
    const token = (await client.get("/token")).text;
    const res = await client.post("/flash", {
      headers: { [app.engine.config.csrf.headerName]: token },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("vary")).toBe("Cookie, Origin, Sec-Fetch-Site");
  });

  test("a 503 is negotiated like every other refusal", async () => {
    const app = await t.mount({}, routes);
    app.store.failing.add("write");
    const client = app.client();
    const page = await client.post("/login/user", { headers: { accept: BROWSER } });
    expect(page.status).toBe(503);
    expect(page.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(page.text).toContain("Service Unavailable");
    const htmx = await client.post("/login/user", { headers: HTMX });
    expect(htmx.status).toBe(503);
    expect(htmx.headers.get("content-type")).toBe("text/plain; charset=utf-8");
    expect(JSON.parse(htmx.headers.get("hx-trigger") ?? "")).toEqual({
      "coatcheck:unavailable": { retryAfter: 1 },
    });
    const api = await client.post("/login/user");
    expect(JSON.parse(api.text)).toMatchObject({ error: "session_store_unavailable" });
    for (const res of [page, htmx, api]) expect(res.headers.get("retry-after")).toBe("1");
  });

  test("the app's hook replaces the body of the responses coatcheck writes", async () => {
    const app = await t.mount({}, routes, {
      render: (refusal, kind) =>
        kind === "page"
          ? { body: `<p>custom ${refusal.status}</p>`, contentType: "text/html" }
          : undefined,
    });
    app.store.failing.add("write");
    const page = await app.client().post("/login/user", { headers: { accept: BROWSER } });
    expect(page.status).toBe(503);
    expect(page.text).toBe("<p>custom 503</p>");
    expect(page.headers.get("retry-after")).toBe("1");
    const api = await app.client().post("/login/user");
    expect(JSON.parse(api.text)).toMatchObject({ error: "session_store_unavailable" });
  });

  test("a 503 replacing the app's response keeps none of its headers", async () => {
    const app = await t.mount({}, routes);
    app.store.failing.add("write");
    const res = await app.client().post("/save");
    expect(res.status).toBe(503);
    expect(res.headers.get("etag")).toBeNull();
    expect(res.headers.get("x-app")).toBeNull();
    expect(res.headers.get("set-cookie")).toBeNull();
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(Number(res.headers.get("content-length") ?? res.text.length)).toBe(
      Buffer.byteLength(res.text),
    );
  });

  test("the session cookie is added beside the app's cookie; no-store replaces a public policy", async () => {
    const app = await t.mount({}, routes);
    const res = await app.client().post("/save");
    expect(res.status).toBe(200);
    const cookies = res.headers.getSetCookie();
    expect(cookies).toHaveLength(2);
    expect(cookies.some((c) => c.startsWith("theme=dark"))).toBe(true);
    expect(cookies.some((c) => c.startsWith(`${app.engine.config.cookieName}=`))).toBe(true);
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(res.headers.get("etag")).toBe('"v1"');
    expect(res.headers.get("vary")).toBe("Cookie");
  });

  test("a page that renders a token in an existing session is no-store and varies on Cookie", async () => {
    const app = await t.mount({}, routes);
    const client = app.client();
    expect((await client.get("/token")).headers.get("set-cookie")).not.toBeNull();
    const again = await client.get("/token");
    expect(again.headers.get("set-cookie")).toBeNull();
    expect(again.headers.get("cache-control")).toBe("no-store");
    expect(again.headers.get("vary")).toBe("Cookie");
    // A read alone varies on the cookie but may be cached privately as the app decides.
    const read = await client.get("/read");
    expect(read.headers.get("vary")).toBe("Cookie");
    expect(read.headers.get("cache-control")).toBeNull();
    expect((await client.get("/untouched")).headers.get("vary")).toBeNull();
  });

  test("the app's own cache policy is kept, with one warning per route when it is public", async () => {
    const app = await t.mount({}, routes);
    const client = app.client();
    await client.get("/token");
    for (let i = 0; i < 3; i++) {
      const res = await client.get("/token/public");
      expect(res.headers.get("cache-control")).toBe("public, max-age=60");
    }
    expect(app.logs.filter((line) => line.includes("GET /token/public"))).toHaveLength(1);
  });

  test("consuming flash messages makes the page no-store", async () => {
    const app = await t.mount({}, routes);
    const client = app.client();
    await client.post("/flash");
    const res = await client.get("/flash");
    expect(res.text).toBe("hello");
    expect(res.headers.get("cache-control")).toBe("no-store");
  });

  test("requireAuth and requireRole: 303, HX-Redirect or 401 JSON; 403 without the role", async () => {
    const app = await t.mount({}, routes);
    const client = app.client();
    const page = await client.get("/private", { headers: { accept: BROWSER } });
    expect(page.status).toBe(303);
    expect(page.headers.get("location")).toBe("/login");
    const htmx = await client.get("/private", { headers: HTMX });
    expect(htmx.status).toBe(401);
    expect(htmx.headers.get("hx-redirect")).toBe("/login");
    const api = await client.get("/private");
    expect(api.status).toBe(401);
    expect(JSON.parse(api.text)).toMatchObject({ error: "unauthenticated", login: "/login" });
    await client.post("/login/editor");
    expect((await client.get("/private")).text).toBe("private");
    const forbidden = await client.get("/admin", { headers: { accept: BROWSER } });
    expect(forbidden.status).toBe(403);
    expect(forbidden.headers.get("content-type")).toBe("text/html; charset=utf-8");
    await client.post("/login/admin");
    expect((await client.get("/admin")).text).toBe("admin");
  });

  test("an htmx request that rotates the session tells htmx to reload the page", async () => {
    const app = await t.mount({}, routes);
    const client = app.client();
    const res = await client.post("/login/user", { headers: HTMX });
    expect(res.status).toBe(200);
    expect(res.headers.get("hx-refresh")).toBe("true");
    const plain = await app.client().post("/login/user");
    expect(plain.headers.get("hx-refresh")).toBeNull();
  });

  test("an htmx redirect after a rotation becomes HX-Redirect, with the new cookie", async () => {
    const app = await t.mount({}, routes);
    const res = await app.client().post("/login-redirect", { headers: HTMX });
    expect(res.status).toBe(200);
    expect(res.headers.get("hx-redirect")).toBe("/home");
    expect(res.headers.get("location")).toBeNull();
    expect(res.headers.get("set-cookie")).toMatch(new RegExp(`^${app.engine.config.cookieName}=`));
  });
});
