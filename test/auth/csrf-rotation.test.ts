import { Hono } from "hono";
import { afterEach, describe, expect, test } from "vitest";
import { getCsrfToken, getSession, session } from "../../src/adapters/hono.js";
import { AuthSession } from "../../src/core/auth.js";
import type { SessionStore } from "../../src/core/store.js";
import { createSessionEngine } from "../../src/setup.js";
import { cartSession, recordingLogger } from "./seed-app.js";
import { storeCases } from "./stores.js";

/**
 * With CSRF on (the default), a token rendered before login stops working at login, and one
 * rendered while signed in stops working at logout: `login` and `logout` rotate the secret.
 */
describe.each(storeCases)("CSRF secret rotation on the $name store", ({ make }) => {
  let store: SessionStore | undefined;
  afterEach(async () => {
    await store?.close?.();
  });

  async function setup() {
    store = await make();
    const engine = createSessionEngine({
      env: {},
      secure: false,
      store,
      logger: recordingLogger().logger,
    });
    const app = new Hono();
    app.use(session(engine));
    app.get("/form", async (c) => c.text((await getCsrfToken(c)).token()));
    app.post("/login/:user", async (c) => {
      await (await AuthSession.open(getSession(c))).login(c.req.param("user"), ["user"]);
      return c.redirect("/dashboard", 303);
    });
    app.post("/logout", async (c) => {
      await (await AuthSession.open(getSession(c))).logout();
      return c.redirect("/", 303);
    });
    app.post("/cart/:item", async (c) => {
      const cart = await cartSession.open(getSession(c));
      cart.dataMut().items.push(c.req.param("item"));
      await cart.save();
      return c.text("Added to cart");
    });
    let cookie = "";
    const request = async (method: string, path: string, token?: string, asCookie = cookie) => {
      const res = await app.request(path, {
        method,
        headers: {
          accept: "application/json",
          ...(asCookie ? { cookie: asCookie } : {}),
          ...(token ? { "x-csrf-token": token } : {}),
        },
      });
      const set = res.headers.get("set-cookie");
      if (set && asCookie === cookie)
        cookie = /Max-Age=0/.test(set) ? "" : (set.split(";")[0] ?? "");
      return res;
    };
    return { request, cookie: () => cookie };
  }

  test("login and logout each make earlier tokens useless", async () => {
    const { request, cookie } = await setup();
    const anonymousToken = await (await request("GET", "/form")).text();
    const anonymousCookie = cookie();
    expect((await request("POST", "/cart/a", anonymousToken)).status).toBe(200);

    const login = await request("POST", "/login/alice", anonymousToken);
    expect(login.status).toBe(303);
    expect(cookie()).not.toBe(anonymousCookie);

    // The pre-login token no longer verifies on the new session…
    expect((await request("POST", "/cart/b", anonymousToken)).status).toBe(403);
    // …and the pre-login cookie is dead, so it carries no secret at all.
    expect((await request("POST", "/cart/b", anonymousToken, anonymousCookie)).status).toBe(403);

    const signedInToken = await (await request("GET", "/form")).text();
    expect(signedInToken).not.toBe(anonymousToken);
    expect((await request("POST", "/cart/c", signedInToken)).status).toBe(200);

    const signedInCookie = cookie();
    expect((await request("POST", "/logout", signedInToken)).status).toBe(303);
    expect(cookie()).not.toBe(signedInCookie);
    expect((await request("POST", "/cart/d", signedInToken)).status).toBe(403);
    expect((await request("POST", "/cart/d", signedInToken, signedInCookie)).status).toBe(403);

    const freshToken = await (await request("GET", "/form")).text();
    expect((await request("POST", "/cart/e", freshToken)).status).toBe(200);
  });
});
