// The demo imports the built package, so the engine must come from it too (one SessionEngine class).
import { createSessionEngine, type SessionEngine } from "coatcheck";
import { afterAll, describe, expect, test } from "vitest";
import { createDemoApp, DEMO_CONFIG } from "../../examples/demo/app.js";
import { migrate } from "../../src/stores/postgres.js";
import { createTestDatabase, type TestDatabase } from "../support/postgres.js";
import { nodeRedis, REDIS_URL, requireSharedRedis, uniquePrefix } from "../support/redis.js";

/**
 * The demo's routes are a stable surface anyone can script against: this drives them over HTTP
 * (Hono's request path) on the memory store and, switched by the environment alone, on Redis and
 * on PostgreSQL (in a database of this run's own, migrated first as a deploy would).
 */
const engines: SessionEngine[] = [];
let postgres: Promise<TestDatabase> | undefined;
afterAll(async () => {
  for (const e of engines) await e.store.close?.();
  await (await postgres)?.drop();
});

async function postgresDatabase(): Promise<TestDatabase> {
  postgres ??= createTestDatabase("demo").then(async (db) => {
    const pool = db.pool({ max: 1 });
    await migrate(pool);
    return db;
  });
  return postgres;
}

const backends: Array<[string, () => Promise<Record<string, string>>]> = [
  ["memory", async () => ({})],
  [
    "redis (COATCHECK_SESSION__STORAGE=redis)",
    async () => {
      await requireSharedRedis();
      return {
        COATCHECK_SESSION__STORAGE: "redis",
        COATCHECK_SESSION__REDIS_URL: REDIS_URL,
        COATCHECK_SESSION__KEY_PREFIX: uniquePrefix("demo").replace(/[{}]/g, ""),
      };
    },
  ],
  [
    "postgres (COATCHECK_SESSION__STORAGE=postgres)",
    async () => ({
      COATCHECK_SESSION__STORAGE: "postgres",
      COATCHECK_SESSION__POSTGRES_URL: (await postgresDatabase()).url,
    }),
  ],
];

/** Records the engine's store holds: the memory store counts them, Redis and PostgreSQL are asked. */
async function recordsOf(engine: SessionEngine): Promise<number> {
  const memory = engine.store as { stats?: () => { records: number } };
  if (memory.stats) return memory.stats().records;
  if (engine.config.storage === "postgres") {
    const { postgresSchema: schema, postgresTable: table } = engine.config;
    const pool = (await postgresDatabase()).pool({ max: 1 });
    const result = await pool.query(`SELECT count(*)::int AS n FROM "${schema}"."${table}"`);
    return (result.rows[0] as { n: number }).n;
  }
  const client = await nodeRedis();
  try {
    const keys = await client.keys(`${engine.config.keyPrefix}*`);
    return keys.filter((k) => !k.endsWith(":lock")).length;
  } finally {
    client.destroy();
  }
}

describe.each(backends)("demo routes on %s", (_name, envFor) => {
  /** A browser of its own (one cookie jar); several clients share an engine to share a store. */
  async function client(shared?: SessionEngine) {
    const engine = shared ?? createSessionEngine({ configFile: DEMO_CONFIG, env: await envFor() });
    if (!shared) engines.push(engine);
    const app = createDemoApp(engine);
    let cookie = "";
    const send = async (
      method: string,
      path: string,
      init: { headers?: Record<string, string>; body?: BodyInit } = {},
    ) => {
      const res = await app.request(path, {
        method,
        headers: { ...(cookie ? { cookie } : {}), accept: "text/html", ...init.headers },
        ...(init.body !== undefined ? { body: init.body } : {}),
      });
      const set = res.headers.get("set-cookie");
      if (set) cookie = /Max-Age=0/.test(set) ? "" : (set.split(";")[0] as string);
      return { res, text: await res.text(), set };
    };
    const token = (html: string) => /name="_csrf" value="([^"]+)"/.exec(html)?.[1] ?? "";
    const meta = (html: string) =>
      /<meta name="csrf-token" content="([^"]+)"/.exec(html)?.[1] ?? "";
    return { engine, send, token, meta, cookie: () => cookie };
  }

  test("an anonymous visitor who only reads gets no token, no cookie and no record", async () => {
    const c = await client();
    const before = await recordsOf(c.engine);
    for (const path of ["/", "/static/csrf-htmx.js", "/"]) {
      const visit = await c.send("GET", path);
      expect(visit.res.status).toBe(200);
      expect(visit.set).toBeNull();
      expect(visit.text).not.toMatch(/<meta name="csrf-token"|name="_csrf"/);
    }
    expect(await recordsOf(c.engine)).toBe(before);
    // A page with a form still renders its token, and starts the session then.
    const login = await c.send("GET", "/login");
    expect(c.token(login.text)).not.toBe("");
    expect(c.meta(login.text)).not.toBe("");
    expect(login.set).toMatch(/^session_id=/);
    expect(await recordsOf(c.engine)).toBe(before + 1);
  });

  test("login (multipart) → dashboard with a flash once → cart via HTMX → logout", async () => {
    const c = await client();
    const loginPage = await c.send("GET", "/login");
    expect(loginPage.text).toContain('<input type="hidden" name="_csrf" value="');
    const form = new FormData();
    form.set("username", "alice");
    form.set("password", "wonderland");
    form.set("_csrf", c.token(loginPage.text));
    const login = await c.send("POST", "/login", { body: form });
    expect(login.res.status).toBe(303);
    expect(login.res.headers.get("location")).toBe("/dashboard");
    expect(login.set).toMatch(/Max-Age=86400;/);

    const dash = await c.send("GET", "/dashboard");
    expect(dash.text).toContain(
      '<div class="flash flash-success" role="status" data-icon="check-circle">',
    );
    expect(dash.res.headers.get("cache-control")).toBe("no-store");
    expect((await c.send("GET", "/dashboard")).text).not.toContain(`class="flash flash-success"`);

    const cartPage = await c.send("GET", "/cart");
    const headers = {
      "x-csrf-token": c.meta(cartPage.text),
      "hx-request": "true",
      "content-type": "application/x-www-form-urlencoded",
    };
    const adds = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        c.send("POST", "/cart/items", { headers, body: `item=thing-${i}` }),
      ),
    );
    expect(adds.map((a) => a.res.status)).toEqual(Array(20).fill(200));
    expect((await c.send("GET", "/cart")).text).toContain('<strong id="cart-count">20</strong>');

    const bad = await c.send("POST", "/cart/items", { headers, body: "item=" });
    expect(bad.res.status).toBe(422);

    const old = c.cookie();
    const logoutPage = await c.send("GET", "/dashboard");
    const out = await c.send("POST", "/logout", {
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: `_csrf=${encodeURIComponent(c.token(logoutPage.text))}`,
    });
    expect(out.res.status).toBe(303);
    expect(out.res.headers.get("location")).toBe("/");
    expect((await c.send("GET", "/")).text).toContain(`class="flash flash-info"`);
    const app = createDemoApp(c.engine);
    const replay = await app.request("/dashboard", {
      headers: { cookie: old, accept: "text/html" },
    });
    expect(replay.status).toBe(303);
    expect(replay.headers.get("location")).toBe("/login");
  });

  test("wrong password: back to /login with an error flash; bob gets 403 on /admin; remember-me is 30 days", async () => {
    const c = await client();
    const t1 = c.token((await c.send("GET", "/login")).text);
    const wrong = await c.send("POST", "/login", {
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: `username=bob&password=nope&_csrf=${encodeURIComponent(t1)}`,
    });
    expect(wrong.res.headers.get("location")).toBe("/login");
    const again = await c.send("GET", "/login");
    expect(again.text).toContain(`class="flash flash-error"`);
    const ok = await c.send("POST", "/login", {
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: `username=bob&password=builder&remember_me=on&_csrf=${encodeURIComponent(c.token(again.text))}`,
    });
    expect(ok.res.status).toBe(303);
    expect(ok.set).toMatch(/Max-Age=2592000;/);
    const admin = await c.send("GET", "/admin");
    expect(admin.res.status).toBe(403);
    expect(admin.text).not.toContain("Admin content");
  });

  test("a post without a token is rejected with 403 and saves nothing", async () => {
    const c = await client();
    await c.send("GET", "/cart");
    const res = await c.send("POST", "/cart/items", {
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "item=sneaky",
    });
    expect(res.res.status).toBe(403);
    expect((await c.send("GET", "/cart")).text).toContain('<strong id="cart-count">0</strong>');
  });

  /**
   * A client on a store where alice and bob have no session: on PostgreSQL every test shares one
   * table, so the earlier tests' sign-ins are ended first.
   */
  async function clientWithoutSessions() {
    const c = await client();
    for (const user of ["alice", "bob"]) await c.engine.revokeUserSessions(user);
    return c;
  }

  /** Sign `c` in as `user` from a browser that says `agent`; the dashboard answers afterwards. */
  async function signIn(
    c: Awaited<ReturnType<typeof client>>,
    user: "alice" | "bob",
    agent = `agent of ${user}`,
  ) {
    const password = user === "alice" ? "wonderland" : "builder";
    const t = c.token((await c.send("GET", "/login")).text);
    const res = await c.send("POST", "/login", {
      headers: { "content-type": "application/x-www-form-urlencoded", "user-agent": agent },
      body: `username=${user}&password=${password}&_csrf=${encodeURIComponent(t)}`,
    });
    expect(res.res.headers.get("location")).toBe("/dashboard");
    expect((await c.send("GET", "/dashboard")).res.status).toBe(200);
  }

  /** The sessions page's entries: handle (unescaped), current, and the entry's HTML. */
  function entries(html: string) {
    const fromHtml = (v: string) =>
      v.replace(
        /&quot;|&#39;|&lt;|&gt;|&amp;/g,
        (e) =>
          ({ "&quot;": '"', "&#39;": "'", "&lt;": "<", "&gt;": ">", "&amp;": "&" })[e] as string,
      );
    return [
      ...html.matchAll(
        /<li data-session-handle="([^"]*)"( data-current="true")?>([\s\S]*?)<\/li>/g,
      ),
    ].map((m) => ({
      handle: fromHtml(m[1] as string),
      current: m[2] !== undefined,
      html: m[3] as string,
    }));
  }

  /** Post a form of the sessions page (with its token) and follow the 303 back to it. */
  async function postFromSessionsPage(
    c: Awaited<ReturnType<typeof client>>,
    path: string,
    fields = "",
  ) {
    const t = c.token((await c.send("GET", "/account/sessions")).text);
    const res = await c.send("POST", path, {
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: `${fields}${fields ? "&" : ""}_csrf=${encodeURIComponent(t)}`,
    });
    expect(res.res.status).toBe(303);
    expect(res.res.headers.get("location")).toBe("/account/sessions");
    return (await c.send("GET", "/account/sessions")).text;
  }

  test("/account/sessions: signed-out visitors go to /login; its posts need the CSRF token", async () => {
    const c = await clientWithoutSessions();
    const page = await c.send("GET", "/account/sessions");
    expect(page.res.status).toBe(303);
    expect(page.res.headers.get("location")).toBe("/login");
    for (const path of ["/account/sessions/revoke", "/account/sessions/revoke-others"]) {
      const anonymous = await c.send("POST", path, {
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: "session=x",
      });
      expect(anonymous.res.status).toBe(403);
    }
    // Signed in on two browsers: a post without the token is refused and ends nothing.
    await signIn(c, "alice");
    const other = await client(c.engine);
    await signIn(other, "alice");
    const list = entries((await c.send("GET", "/account/sessions")).text);
    expect(list).toHaveLength(2);
    const theirs = list.find((e) => !e.current)?.handle as string;
    for (const [path, body] of [
      ["/account/sessions/revoke", `session=${encodeURIComponent(theirs)}`],
      ["/account/sessions/revoke-others", ""],
    ] as const) {
      const forged = await c.send("POST", path, {
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body,
      });
      expect(forged.res.status).toBe(403);
    }
    expect((await other.send("GET", "/dashboard")).res.status).toBe(200);
    // An anonymous post that carries a valid token is sent to /login, also ending nothing.
    const anon = await client(c.engine);
    const t = anon.token((await anon.send("GET", "/login")).text);
    const guarded = await anon.send("POST", "/account/sessions/revoke", {
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: `session=${encodeURIComponent(theirs)}&_csrf=${encodeURIComponent(t)}`,
    });
    expect(guarded.res.status).toBe(303);
    expect(guarded.res.headers.get("location")).toBe("/login");
    expect((await other.send("GET", "/dashboard")).res.status).toBe(200);
  });

  test("/account/sessions lists each session once, revokes one by handle, never another user's", async () => {
    const a = await clientWithoutSessions();
    const b = await client(a.engine);
    const bob = await client(a.engine);
    await signIn(a, "alice", "Browser A");
    await signIn(b, "alice", '<script>alert("B")</script>');
    await signIn(bob, "bob");

    const page = await a.send("GET", "/account/sessions");
    expect(page.res.status).toBe(200);
    expect(page.res.headers.get("cache-control")).toBe("no-store");
    const list = entries(page.text);
    expect(list).toHaveLength(2);
    expect(list.filter((e) => e.current)).toHaveLength(1);
    const mine = list.find((e) => e.current);
    const theirs = list.find((e) => !e.current);
    expect(mine?.html).toContain("Browser A");
    expect(mine?.html).not.toContain('name="session"');
    // The other browser's agent is shown as text; its entry has the revoke form.
    expect(theirs?.html).toContain("&lt;script&gt;alert(&quot;B&quot;)&lt;/script&gt;");
    expect(page.text).not.toContain("<script>alert");
    expect(theirs?.html).toContain('action="/account/sessions/revoke"');
    expect(theirs?.html).toMatch(/<time datetime="\d{4}-\d\d-\d\dT/);
    // No handle is the session id, and no cookie value appears on the page.
    const ids = [a.cookie(), b.cookie()].map((cookie) => cookie.split("=")[1] as string);
    for (const id of ids) expect(page.text).not.toContain(id);

    // Bob's handle, a handle of nobody, hostile values and a missing field: 303 with an error
    // flash, nothing ended.
    const bobsHandle = entries((await bob.send("GET", "/account/sessions")).text)[0]?.handle;
    expect(bobsHandle).toMatch(/./);
    for (const fields of [
      `session=${encodeURIComponent(bobsHandle as string)}`,
      `session=${"A".repeat(22)}`,
      "session=",
      `session=${"x".repeat(20_000)}`,
      `session=${encodeURIComponent('"><script>alert(1)</script>')}`,
      "session=%00%ff%fe",
      "other=1",
    ]) {
      const html = await postFromSessionsPage(a, "/account/sessions/revoke", fields);
      expect(html).toContain('class="flash flash-error"');
      expect(entries(html)).toHaveLength(2);
    }
    expect((await bob.send("GET", "/dashboard")).res.status).toBe(200);
    expect((await b.send("GET", "/dashboard")).res.status).toBe(200);

    // The other browser's handle: it is signed out at once, this one stays.
    const html = await postFromSessionsPage(
      a,
      "/account/sessions/revoke",
      `session=${encodeURIComponent(theirs?.handle as string)}`,
    );
    expect(html).toContain('class="flash flash-success"');
    expect(entries(html).map((e) => e.handle)).toEqual([mine?.handle]);
    const gone = await b.send("GET", "/dashboard");
    expect(gone.res.status).toBe(303);
    expect(gone.res.headers.get("location")).toBe("/login");
    expect((await a.send("GET", "/dashboard")).res.status).toBe(200);
    expect((await bob.send("GET", "/dashboard")).res.status).toBe(200);
    // The same handle again names nothing now.
    const again = await postFromSessionsPage(
      a,
      "/account/sessions/revoke",
      `session=${encodeURIComponent(theirs?.handle as string)}`,
    );
    expect(again).toContain('class="flash flash-error"');
  });

  test("sign out everywhere else ends every other session of the user, and only those", async () => {
    const a = await clientWithoutSessions();
    const others = [await client(a.engine), await client(a.engine)];
    const bob = await client(a.engine);
    await signIn(a, "alice");
    for (const o of others) await signIn(o, "alice");
    await signIn(bob, "bob");
    expect(entries((await a.send("GET", "/account/sessions")).text)).toHaveLength(3);

    const html = await postFromSessionsPage(a, "/account/sessions/revoke-others");
    expect(html).toContain('class="flash flash-success"');
    expect(html).toContain("Signed out everywhere else (2 sessions).");
    expect(entries(html).map((e) => e.current)).toEqual([true]);
    for (const o of others) {
      const res = await o.send("GET", "/dashboard");
      expect(res.res.status).toBe(303);
      expect(res.res.headers.get("location")).toBe("/login");
    }
    expect((await bob.send("GET", "/dashboard")).res.status).toBe(200);
    expect((await a.send("GET", "/dashboard")).res.status).toBe(200);

    // Nothing left to end: an info flash.
    const none = await postFromSessionsPage(a, "/account/sessions/revoke-others");
    expect(none).toContain('class="flash flash-info"');
  });

  test("the demo's max_sessions_per_user = 10: the 11th sign-in of a user ends the oldest", async () => {
    const first = await clientWithoutSessions();
    await signIn(first, "bob", "the first browser");
    const later = [];
    for (let i = 0; i < 10; i++) {
      const c = await client(first.engine);
      await signIn(c, "bob", `browser ${i}`);
      later.push(c);
    }
    const gone = await first.send("GET", "/dashboard");
    expect(gone.res.headers.get("location")).toBe("/login");
    const list = entries((await later[9]?.send("GET", "/account/sessions"))?.text ?? "");
    expect(list).toHaveLength(10);
    expect(list.map((e) => e.html).join("")).not.toContain("the first browser");
  });

  test("the dashboard links to /account/sessions", async () => {
    const c = await client();
    await signIn(c, "bob");
    expect((await c.send("GET", "/dashboard")).text).toContain(
      '<a href="/account/sessions" id="sessions-link">',
    );
  });
});
