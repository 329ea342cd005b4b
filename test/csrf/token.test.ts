import { Hono } from "hono";
import { describe, expect, test } from "vitest";
import { getCsrfToken, getSession, session } from "../../src/adapters/hono.js";
import { AuthSession } from "../../src/core/auth.js";
import { CsrfToken } from "../../src/core/csrf.js";
import { CSRF_SECRET_KEY } from "../../src/core/session.js";
import { csrfEngine, honoApp, honoDriver, routes, visit } from "./harness.js";

/** The stored secret of the session behind `cookie`, read straight from the store. */
async function storedSecret(
  store: ReturnType<typeof csrfEngine>["store"],
  cookie: string,
): Promise<string> {
  const record = await store.load(cookie.split("=")[1] as string, Date.now());
  return JSON.parse(record?.fields[CSRF_SECRET_KEY] ?? "null") as string;
}

const post = (cookie: string, token: string) => ({
  method: "POST",
  path: "/submit",
  headers: [
    ["cookie", cookie],
    ["x-csrf-token", token],
  ] as Array<[string, string]>,
});

describe("masking", () => {
  test("200 renders: all different, none is the secret, all verify", async () => {
    const { engine, store } = csrfEngine();
    const r = routes();
    const driver = honoDriver(honoApp(engine, r));
    const { cookie, token } = await visit(driver);
    const tokens = [token];
    for (let i = 0; i < 199; i++) {
      const res = await driver.send({
        method: "GET",
        path: "/token",
        headers: [["cookie", cookie]],
      });
      // A render on a session that already has a secret writes nothing.
      expect(res.headers.get("set-cookie")).toBeNull();
      tokens.push(res.text);
    }
    expect(new Set(tokens).size).toBe(200);
    const secret = await storedSecret(store, cookie);
    expect(Buffer.from(secret, "base64url")).toHaveLength(32);
    for (const t of tokens) {
      expect(t).toMatch(/^[A-Za-z0-9_-]{86}$/); // base64url of 64 bytes: pad ‖ masked
      expect(t).not.toContain(secret);
      expect((await driver.send(post(cookie, t))).status).toBe(200);
    }
    expect(r.ran).toHaveLength(200);
  });

  test("the raw secret itself is not accepted as a token", async () => {
    const { engine, store } = csrfEngine();
    const driver = honoDriver(honoApp(engine, routes()));
    const { cookie } = await visit(driver);
    const secret = await storedSecret(store, cookie);
    expect((await driver.send(post(cookie, secret))).status).toBe(403);
  });

  test("token_length sets the secret length, and the token grows with it", async () => {
    const { engine, store } = csrfEngine({ csrf: { tokenLength: 64 } });
    const driver = honoDriver(honoApp(engine, routes()));
    const { cookie, token } = await visit(driver);
    expect(Buffer.from(await storedSecret(store, cookie), "base64url")).toHaveLength(64);
    expect(Buffer.from(token, "base64url")).toHaveLength(128);
    expect((await driver.send(post(cookie, token))).status).toBe(200);
  });

  test("header_name and form_field_name are honoured (and the defaults stop working)", async () => {
    const { engine } = csrfEngine({
      csrf: { headerName: "X-XSRF", formFieldName: "authenticity" },
    });
    const driver = honoDriver(honoApp(engine, routes()));
    const { cookie, token } = await visit(driver);
    const send = (headers: Array<[string, string]>, body?: string) =>
      driver.send({
        method: "POST",
        path: "/submit",
        headers: [["cookie", cookie], ...headers],
        body,
      });
    expect((await send([["x-xsrf", token]])).status).toBe(200);
    expect(
      (await send([["content-type", "application/x-www-form-urlencoded"]], `authenticity=${token}`))
        .status,
    ).toBe(200);
    expect((await send([["x-csrf-token", token]])).status).toBe(403);
    expect(
      (await send([["content-type", "application/x-www-form-urlencoded"]], `_csrf=${token}`))
        .status,
    ).toBe(403);
  });
});

describe("HTML helpers", () => {
  test("the seed's exact shapes, field named after form_field_name", async () => {
    const { engine } = csrfEngine();
    const driver = honoDriver(honoApp(engine, routes()));
    const res = await driver.send({ method: "GET", path: "/form" });
    const html = res.text;
    expect(html).toMatch(/<meta name="csrf-token" content="[A-Za-z0-9_-]{86}">/);
    expect(html).toMatch(/<input type="hidden" name="_csrf" value="[A-Za-z0-9_-]{86}">/);
    const meta = /content="([^"]+)"/.exec(html)?.[1];
    const field = /value="([^"]+)"/.exec(html)?.[1];
    expect(meta).not.toBe(field);
    const cookie = (res.headers.get("set-cookie") ?? "").split(";")[0] as string;
    for (const t of [meta, field])
      expect((await driver.send(post(cookie, t as string))).status).toBe(200);
  });

  test("asHiddenFieldNamed escapes the name; the configured field name is used by asHiddenField", async () => {
    const { engine } = csrfEngine({ csrf: { formFieldName: "a[b]" } });
    const s = engine.open(undefined);
    const csrf = await CsrfToken.from(s);
    expect(csrf.asHiddenField()).toMatch(
      /^<input type="hidden" name="a\[b\]" value="[A-Za-z0-9_-]{86}">$/,
    );
    expect(csrf.asHiddenFieldNamed(`x" onfocus="alert(1)'<>&`)).toMatch(
      /^<input type="hidden" name="x&quot; onfocus=&quot;alert\(1\)&#39;&lt;&gt;&amp;" value="[A-Za-z0-9_-]{86}">$/,
    );
  });
});

describe("no token rendered, no session", () => {
  test("a page without a form sets no cookie and stores nothing", async () => {
    const { engine, store } = csrfEngine();
    const driver = honoDriver(honoApp(engine, routes()));
    const res = await driver.send({ method: "GET", path: "/page" });
    expect(res.headers.get("set-cookie")).toBeNull();
    expect(store.calls).toEqual([]);
  });

  test("getting the token object without rendering creates nothing", async () => {
    const { engine, store } = csrfEngine();
    const app = new Hono();
    app.use(session(engine));
    app.get("/maybe", async (c) => {
      await getCsrfToken(c);
      return c.text("no render");
    });
    const res = await app.request("/maybe");
    expect(res.headers.get("set-cookie")).toBeNull();
    expect(store.calls.filter((c) => c.startsWith("write"))).toEqual([]);
  });
});

describe("rotation", () => {
  test("cycleId (login) invalidates tokens of the old secret; the new token works", async () => {
    const { engine } = csrfEngine();
    const driver = honoDriver(honoApp(engine, routes()));
    const { cookie, token } = await visit(driver);
    const login = await driver.send({
      method: "POST",
      path: "/login",
      headers: [
        ["cookie", cookie],
        ["x-csrf-token", token],
      ],
    });
    expect(login.status).toBe(200);
    const next = (login.headers.get("set-cookie") ?? "").split(";")[0] as string;
    expect(next).not.toBe(cookie);
    expect((await driver.send(post(next, token))).status).toBe(403);
    expect((await driver.send(post(next, login.text))).status).toBe(200);
  });

  test("destroy (logout) invalidates the old tokens and the old cookie", async () => {
    const { engine } = csrfEngine();
    const driver = honoDriver(honoApp(engine, routes()));
    const { cookie, token } = await visit(driver);
    const out = await driver.send({
      method: "POST",
      path: "/logout",
      headers: [
        ["cookie", cookie],
        ["x-csrf-token", token],
      ],
    });
    expect(out.status).toBe(200);
    expect(out.headers.get("set-cookie")).toMatch(/Max-Age=0/);
    expect((await driver.send(post(cookie, token))).status).toBe(403);
  });

  test("AuthSession login and logout each invalidate the tokens rendered before", async () => {
    const { engine } = csrfEngine();
    const app = honoApp(engine, routes());
    app.post("/auth/:action", async (c) => {
      const auth = await AuthSession.open(getSession(c));
      if (c.req.param("action") === "login") await auth.login("alice", ["admin"]);
      else await auth.logout();
      return c.text((await getCsrfToken(c)).token());
    });
    const driver = honoDriver(app);
    let { cookie, token } = await visit(driver);
    for (const action of ["login", "logout"]) {
      const res = await driver.send({
        method: "POST",
        path: `/auth/${action}`,
        headers: [
          ["cookie", cookie],
          ["x-csrf-token", token],
        ],
      });
      expect(res.status, action).toBe(200);
      cookie = (res.headers.get("set-cookie") ?? "").split(";")[0] as string;
      expect((await driver.send(post(cookie, token))).status, action).toBe(403);
      token = res.text;
      expect((await driver.send(post(cookie, token))).status, action).toBe(200);
    }
  });

  test("CsrfToken.regenerate drops the secret: old tokens fail, the next render works", async () => {
    const { engine } = csrfEngine();
    const app = honoApp(engine, routes());
    app.post("/regenerate", async (c) => {
      await CsrfToken.regenerate(getSession(c), 32);
      return c.text((await getCsrfToken(c)).token());
    });
    const driver = honoDriver(app);
    const { cookie, token } = await visit(driver);
    const res = await driver.send({
      method: "POST",
      path: "/regenerate",
      headers: [
        ["cookie", cookie],
        ["x-csrf-token", token],
      ],
    });
    expect(res.status).toBe(200);
    expect((await driver.send(post(cookie, token))).status).toBe(403);
    expect((await driver.send(post(cookie, res.text))).status).toBe(200);
  });

  test("cycleId after the token object was taken: the next render uses a new secret", async () => {
    const { engine } = csrfEngine();
    const s = engine.open(undefined);
    const csrf = await CsrfToken.from(s);
    csrf.token();
    const before = await s.get(CSRF_SECRET_KEY);
    await s.cycleId();
    expect(await s.get(CSRF_SECRET_KEY)).toBeUndefined();
    csrf.token();
    const after = await s.get(CSRF_SECRET_KEY);
    expect(typeof after).toBe("string");
    expect(after).not.toBe(before);
  });

  test("regenerate rejects a nonsensical length", async () => {
    const { engine } = csrfEngine();
    const s = engine.open(undefined);
    for (const bad of [0, 8, 15, 129, 32.5, Number.NaN])
      await expect(CsrfToken.regenerate(s, bad)).rejects.toThrow(RangeError);
    await expect(CsrfToken.regenerate(s, 16)).resolves.toBeUndefined();
  });

  test("a corrupted stored secret is replaced on the next render and never verifies", async () => {
    const { engine, store } = csrfEngine();
    const driver = honoDriver(honoApp(engine, routes()));
    const { cookie } = await visit(driver);
    const id = cookie.split("=")[1] as string;
    const record = await store.load(id, Date.now());
    for (const corrupt of ['"short"', "12345", '"not base64!!"', "{"]) {
      await store.write(
        id,
        { set: { [CSRF_SECRET_KEY]: corrupt }, del: [], meta: record?.meta as never },
        "update",
        Date.now(),
      );
      // A token made from the corrupt value cannot exist; any well-formed one is refused.
      const fake = Buffer.alloc(64).toString("base64url");
      expect((await driver.send(post(cookie, fake))).status).toBe(403);
      const fresh = await driver.send({
        method: "GET",
        path: "/token",
        headers: [["cookie", cookie]],
      });
      expect((await driver.send(post(cookie, fresh.text))).status).toBe(200);
    }
  });
});
