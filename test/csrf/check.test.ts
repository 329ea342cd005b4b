import fc from "fast-check";
import { Hono } from "hono";
import { methodOverride } from "hono/method-override";
import { describe, expect, test } from "vitest";
import { getSession, session, sessionLock } from "../../src/adapters/hono.js";
import { type CsrfRequest, CsrfToken, verifyCsrf } from "../../src/core/csrf.js";
import { CsrfBodyError } from "../../src/core/csrf-form.js";
import { MemoryStore } from "../../src/stores/memory.js";
import { csrfEngine, FORM, honoApp, honoDriver, routes, visit } from "./harness.js";

async function primed(options: Parameters<typeof csrfEngine>[0] = {}) {
  const { engine, store } = csrfEngine(options);
  const r = routes();
  const app = honoApp(engine, r);
  const driver = honoDriver(app);
  const { cookie, token } = await visit(driver);
  return { engine, store, r, app, driver, cookie, token };
}

describe("rejection responses", () => {
  test("API callers get the JSON error shape", async () => {
    const { driver, cookie } = await primed();
    const res = await driver.send({
      method: "POST",
      path: "/submit",
      headers: [["cookie", cookie]],
    });
    expect(res.status).toBe(403);
    expect(res.headers.get("content-type")).toBe("application/json; charset=utf-8");
    expect(res.headers.get("cache-control")).toBe("no-store");
    const body = JSON.parse(res.text);
    expect(body).toEqual({
      error: "csrf_validation_failed",
      message: expect.any(String),
      reason: "token_missing",
    });
    expect(body.message).toContain("X-CSRF-Token");
  });

  test("a plain form post (Accept: text/html) gets a short HTML page", async () => {
    const { driver, cookie } = await primed();
    const res = await driver.send({
      method: "POST",
      path: "/submit",
      headers: [
        ["cookie", cookie],
        ["accept", "text/html,application/xhtml+xml,*/*;q=0.8"],
        ["content-type", FORM],
      ],
      body: "a=1",
    });
    expect(res.status).toBe(403);
    expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(res.text).toMatch(/^<!doctype html>.*<h1>Form not accepted<\/h1>.*reload the page/s);
  });

  test("HTMX gets an event and no swap, and no page content", async () => {
    const { driver, cookie } = await primed();
    const res = await driver.send({
      method: "POST",
      path: "/submit",
      headers: [
        ["cookie", cookie],
        ["hx-request", "true"],
        ["accept", "text/html"],
      ],
    });
    expect(res.status).toBe(403);
    expect(res.headers.get("hx-trigger")).toBe(
      JSON.stringify({ "coatcheck:csrf-failed": { reason: "token_missing" } }),
    );
    expect(res.headers.get("hx-reswap")).toBe("none");
    expect(res.headers.get("content-type")).toBe("text/plain; charset=utf-8");
    expect(res.text).not.toContain("<");
  });
});

describe("methods", () => {
  test("lower-case and unknown methods are checked; only exact GET, HEAD, OPTIONS are safe", async () => {
    const { driver, cookie, r } = await primed();
    for (const method of ["patch", "PURGE", "PROPFIND", "Delete"]) {
      const res = await driver.send({ method, path: "/submit", headers: [["cookie", cookie]] });
      expect(res.status, method).toBe(403);
    }
    expect(r.ran).toEqual([]);
    for (const method of ["GET", "HEAD", "OPTIONS"]) {
      const res = await driver.send({ method, path: "/submit", headers: [["cookie", cookie]] });
      expect(res.status, method).toBe(200);
    }
  });

  test("the check decides on the method it is given, not on its case-folded form", async () => {
    const { engine } = csrfEngine();
    const s = engine.open(undefined);
    const request = (method: string): CsrfRequest => ({
      method,
      path: "/x",
      header: () => undefined,
      formField: async () => undefined,
    });
    for (const method of ["get", "Get", "head", "options", "GET ", "POST"])
      expect(await verifyCsrf(engine, s, request(method)), method).not.toBeNull();
    for (const method of ["GET", "HEAD", "OPTIONS"])
      expect(await verifyCsrf(engine, s, request(method)), method).toBeNull();
  });

  test("Hono's methodOverride after session(): a POST cannot become a GET without a token", async () => {
    const { engine } = csrfEngine();
    const r = routes();
    const app = new Hono();
    app.use(session(engine));
    app.use("/submit", methodOverride({ app }));
    app.get("/token", async (c) => c.text(await r.token(getSession(c))));
    app.all("/submit", async (c) => c.text(await r.submit(getSession(c), c.req.method)));
    const driver = honoDriver(app);
    const { cookie, token } = await visit(driver);
    const bad = await driver.send({
      method: "POST",
      path: "/submit",
      headers: [
        ["cookie", cookie],
        ["content-type", FORM],
      ],
      body: "_method=GET",
    });
    expect(bad.status).toBe(403);
    const good = await driver.send({
      method: "POST",
      path: "/submit",
      headers: [
        ["cookie", cookie],
        ["content-type", FORM],
      ],
      body: `_method=DELETE&_csrf=${token}`,
    });
    expect(good.status).toBe(200);
    expect(r.ran).toEqual(["DELETE"]);
  });
});

describe("configuration", () => {
  test("enabled = false turns the check off", async () => {
    const { driver, cookie } = await primed({ csrf: { enabled: false } });
    const res = await driver.send({
      method: "POST",
      path: "/submit",
      headers: [["cookie", cookie]],
    });
    expect(res.status).toBe(200);
  });

  test("exempt paths cover the prefix and what is under it, nothing else", async () => {
    const { engine } = csrfEngine({ csrf: { exemptPaths: ["/api", "/hooks/"] } });
    const s = engine.open(undefined);
    const check = (path: string) =>
      verifyCsrf(engine, s, {
        method: "POST",
        path,
        header: () => undefined,
        formField: async () => undefined,
      });
    for (const path of ["/api", "/api/", "/api/v1/x", "/hooks/a"])
      expect(await check(path), path).toBeNull();
    for (const path of ["/apix", "/API/x", "/hooks", "/x/api", "//api", "/ap"])
      expect(await check(path), path).not.toBeNull();
  });

  test("a path that normalises out of an exempt prefix is checked", async () => {
    const { driver } = await primed();
    const res = await driver.send({ method: "POST", path: "/api/../submit" });
    expect(res.status).toBe(403);
  });

  test("without secure cookies, the own host is accepted over http and https", async () => {
    const { driver, cookie, token } = await primed({ secure: false });
    for (const origin of ["http://localhost", "https://localhost"]) {
      const res = await driver.send({
        method: "POST",
        path: "/submit",
        headers: [
          ["cookie", cookie],
          ["x-csrf-token", token],
          ["origin", origin],
        ],
      });
      expect(res.status, origin).toBe(200);
    }
  });
});

describe("sessions and the store", () => {
  test("a store outage during the check answers 503, the handler does not run", async () => {
    class FlakyStore extends MemoryStore {
      down = false;
      override load(id: string, now: number) {
        return this.down ? Promise.reject(new Error("down")) : super.load(id, now);
      }
    }
    const store = new FlakyStore();
    const { engine } = csrfEngine({ store });
    const r = routes();
    const driver = honoDriver(honoApp(engine, r));
    const { cookie, token } = await visit(driver);
    store.down = true;
    const res = await driver.send({
      method: "POST",
      path: "/submit",
      headers: [
        ["cookie", cookie],
        ["x-csrf-token", token],
      ],
    });
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("1");
    expect(r.ran).toEqual([]);
  });

  test("a passing request reads the session once: the handler reuses the check's read", async () => {
    const { driver, cookie, token, store } = await primed();
    store.reset();
    const res = await driver.send({
      method: "POST",
      path: "/submit",
      headers: [
        ["cookie", cookie],
        ["x-csrf-token", token],
      ],
    });
    expect(res.status).toBe(200);
    expect(store.calls).toEqual(["load", "write:update"]);
  });

  test("sessionLock() still works on a route the check already read", async () => {
    const { engine } = csrfEngine();
    const app = new Hono();
    app.use(session(engine));
    app.get("/token", async (c) => c.text((await CsrfToken.from(getSession(c))).token()));
    app.post("/append", sessionLock(), async (c) => {
      const s = getSession(c);
      const list = (await s.get<number[]>("list")) ?? [];
      await new Promise((resolve) => setTimeout(resolve, 1));
      await s.insert("list", [...list, list.length]);
      return c.text("ok");
    });
    const driver = honoDriver(app);
    const { cookie, token } = await visit(driver);
    const results = await Promise.all(
      Array.from({ length: 20 }, () =>
        driver.send({
          method: "POST",
          path: "/append",
          headers: [
            ["cookie", cookie],
            ["x-csrf-token", token],
          ],
        }),
      ),
    );
    expect(results.map((x) => x.status)).toEqual(Array(20).fill(200));
    const s = engine.open(cookie);
    expect(await s.get("list")).toHaveLength(20);
  });
});

describe("never throws", () => {
  test("any header and field values: a rejection or null, never an exception", async () => {
    const { engine } = csrfEngine();
    const s = engine.open(undefined);
    const csrf = await CsrfToken.from(s);
    const valid = csrf.token();
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom("POST", "PUT", "DELETE", "patch", "", "GET"),
        fc.dictionary(
          fc.constantFrom("x-csrf-token", "origin", "sec-fetch-site", "host", "accept"),
          fc.oneof(
            fc.string(),
            fc.constant(valid),
            fc.constant("null"),
            fc.string({ unit: "binary" }),
          ),
        ),
        fc.oneof(
          fc.anything(),
          fc.constant(valid),
          fc.array(fc.constant(valid)),
          fc.constant(new File([valid], "t")),
        ),
        async (method, headers, field) => {
          const result = await verifyCsrf(engine, s, {
            method,
            path: "/submit",
            header: (name) => headers[name.toLowerCase()],
            formField: async () => field,
          });
          if (result !== null) expect(result.status).toBe(403);
        },
      ),
      { numRuns: 500 },
    );
  });

  test("a throwing request accessor is a rejection, not a crash", async () => {
    const { engine } = csrfEngine();
    const s = engine.open(undefined);
    const broken: CsrfRequest = {
      method: "POST",
      path: "/x",
      header: () => {
        throw new Error("boom");
      },
      formField: async () => {
        throw new Error("boom");
      },
    };
    const result = await verifyCsrf(engine, s, broken);
    expect(result?.reason).toBe("request_unreadable");
    expect(JSON.parse(result?.body ?? "")).toMatchObject({ error: "csrf_validation_failed" });
  });

  test("a body error from the adapter becomes its reason", async () => {
    const { engine } = csrfEngine();
    const s = engine.open(undefined);
    const result = await verifyCsrf(engine, s, {
      method: "POST",
      path: "/x",
      header: () => undefined,
      formField: async () => {
        throw new CsrfBodyError("body_timeout", "slow");
      },
    });
    expect(result?.reason).toBe("body_timeout");
  });
});
