import { beforeEach, describe, expect, test } from "vitest";
import type { SessionEngine } from "../../src/core/engine.js";
import { DECISION_TABLE, decide } from "../../src/core/lifecycle.js";
import { createSessionEngine } from "../../src/setup.js";
import { Jar, sessionApp } from "../support/hono-app.js";
import { SpyStore } from "../support/spy-store.js";

const quiet = { warn() {}, error() {} };

describe("decision table, through Hono", () => {
  let store: SpyStore;
  let engine: SessionEngine;
  let app: ReturnType<typeof sessionApp>;
  let jar: Jar;

  beforeEach(() => {
    store = new SpyStore();
    engine = createSessionEngine({
      store,
      env: {},
      secure: false,
      logger: quiet,
      csrf: { enabled: false },
    });
    app = sessionApp(engine);
    jar = new Jar();
  });

  const send = async (method: string, path: string) => {
    const res = await app.request(path, { method, headers: jar.headers() });
    return { res, setCookie: jar.take(res), body: await res.text() };
  };

  const login = async () => {
    await send("POST", "/set/user/alice");
    expect(jar.cookie).toMatch(/^session_id=[A-Za-z0-9_-]{32}$/);
    store.reset();
  };

  test("session never used: no store call, no cookie", async () => {
    await login();
    const { res, setCookie } = await send("GET", "/untouched");
    expect(res.status).toBe(200);
    expect(setCookie).toBeNull();
    expect(store.calls).toEqual([]);
    expect(res.headers.get("cache-control")).toBeNull();
  });

  test("new session still empty: one read at most, nothing stored, no cookie", async () => {
    const { setCookie, body } = await send("GET", "/get/user");
    expect(body).toBe("null");
    expect(setCookie).toBeNull();
    expect(store.calls).toEqual([]); // no cookie → nothing to load
    expect(store.size).toBe(0);
  });

  test("new session with data: created, cookie set with no-store and Vary", async () => {
    const { res, setCookie } = await send("POST", "/set/user/alice");
    expect(setCookie).toMatch(
      /^session_id=[A-Za-z0-9_-]{32}; Path=\/; Max-Age=86400; HttpOnly; SameSite=Lax$/,
    );
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(res.headers.get("vary")).toBe("Cookie");
    expect(store.calls).toEqual(["write:create"]);
    expect(store.size).toBe(1);
  });

  test("stored session untouched after a read: one load, no write, no cookie", async () => {
    await login();
    const { body, setCookie } = await send("GET", "/get/user");
    expect(body).toBe('"alice"');
    expect(setCookie).toBeNull();
    expect(store.calls).toEqual(["load"]);
  });

  test("writing the same value again changes nothing", async () => {
    await login();
    await send("POST", "/set/user/alice");
    expect(store.calls).toEqual(["load"]);
  });

  test("stored session changed: update of the changed key only, no cookie", async () => {
    await login();
    const { setCookie } = await send("POST", "/set/theme/dark");
    expect(setCookie).toBeNull();
    expect(store.calls).toEqual(["load", "write:update"]);
    expect((await send("GET", "/get/user")).body).toBe('"alice"');
    expect((await send("GET", "/get/theme")).body).toBe('"dark"');
  });

  test("stored session emptied: deleted, cookie cleared", async () => {
    await login();
    const { setCookie, res } = await send("POST", "/remove/user");
    expect(setCookie).toMatch(
      /^session_id=; Path=\/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT/,
    );
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(store.calls).toEqual(["load", "destroy"]);
    expect(store.size).toBe(0);
  });

  test("destroyed: record deleted without loading it, cookie cleared, old id worthless", async () => {
    await login();
    const old = jar.cookie;
    const { setCookie } = await send("POST", "/destroy");
    expect(setCookie).toMatch(/Max-Age=0/);
    expect(store.calls).toEqual(["destroy"]);
    const replay = await app.request("/get/user", { headers: { cookie: old } });
    expect(await replay.text()).toBe("null");
  });

  test("destroyed then new data: old deleted, new session created", async () => {
    await login();
    const old = jar.cookie;
    const { setCookie } = await send("POST", "/destroy-then-set");
    expect(setCookie).toMatch(/Max-Age=86400/);
    expect(jar.cookie).not.toBe(old);
    expect(store.calls).toEqual(["destroy", "write:create"]);
    expect((await send("GET", "/get/fresh")).body).toBe("true");
    expect((await send("GET", "/get/user")).body).toBe("null");
  });

  test("cycled: data moves to a new id, the old id stops working at once", async () => {
    await login();
    const old = jar.cookie;
    const { setCookie } = await send("POST", "/cycle");
    expect(setCookie).toMatch(/Max-Age=86400/);
    expect(jar.cookie).not.toBe(old);
    // The new record first, then the claim: a claim whose reply is late cannot cost the session.
    expect(store.calls).toEqual(["load", "write:create", "claim"]);
    expect((await send("GET", "/get/user")).body).toBe('"alice"');
    const replay = await app.request("/get/user", { headers: { cookie: old } });
    expect(await replay.text()).toBe("null");
  });

  test("5xx response: nothing saved, no cookie", async () => {
    await login();
    const { res, setCookie } = await send("POST", "/fail/theme");
    expect(res.status).toBe(500);
    expect(setCookie).toBeNull();
    expect(store.calls).toEqual(["load"]);
    expect((await send("GET", "/get/theme")).body).toBe("null");
  });

  test("handler throws: 500, nothing saved, new visitor gets no session", async () => {
    const { res, setCookie } = await send("POST", "/throw/theme");
    expect(res.status).toBe(500);
    expect(setCookie).toBeNull();
    expect(store.size).toBe(0);
  });

  test("save completes before the response leaves, even for an immutable Response.redirect", async () => {
    const { res, setCookie } = await send("GET", "/redirect");
    expect(res.status).toBe(303);
    expect(setCookie).toMatch(/^session_id=/);
    expect(store.size).toBe(1);
    expect((await send("GET", "/get/flash")).body).toBe('"hello"');
  });

  test("Vary keeps existing values and is not duplicated", async () => {
    const { Hono } = await import("hono");
    const { session, getSession } = await import("../../src/adapters/hono.js");
    const app2 = new Hono();
    app2.use(session(engine));
    app2.get("/v", async (c) => {
      await getSession(c).insert("a", 1);
      c.header("Vary", "Accept-Encoding");
      return c.text("v");
    });
    const res = await app2.request("/v");
    expect(res.headers.get("vary")).toBe("Accept-Encoding, Cookie");
  });
});

describe("the table itself", () => {
  test("the first matching row wins and every row is reachable", () => {
    const base = {
      failed: false,
      loaded: true,
      stored: true,
      destroyed: false,
      cycled: false,
      changed: false,
      empty: false,
      vanished: false,
    };
    const seen = new Set<string>();
    for (const failed of [false, true])
      for (const loaded of [false, true])
        for (const stored of [false, true])
          for (const destroyed of [false, true])
            for (const cycled of [false, true])
              for (const changed of [false, true])
                for (const empty of [false, true])
                  for (const vanished of [false, true]) {
                    const facts = { failed, loaded, stored, destroyed, cycled, changed, empty };
                    seen.add(decide({ ...base, ...facts, vanished }).when);
                  }
    expect([...seen].sort()).toEqual(DECISION_TABLE.map((r) => r.when).sort());
  });
});
