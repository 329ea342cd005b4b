import { Hono } from "hono";
import { beforeEach, describe, expect, test } from "vitest";
import { getSession, session } from "../../src/adapters/hono.js";
import { readCookie } from "../../src/core/cookie.js";
import { generateId, isWellFormedId } from "../../src/core/id.js";
import { createSessionEngine } from "../../src/setup.js";
import { Jar, sessionApp } from "../support/hono-app.js";
import { SpyStore } from "../support/spy-store.js";

describe("hostile session cookies", () => {
  let store: SpyStore;
  let app: ReturnType<typeof sessionApp>;

  beforeEach(() => {
    store = new SpyStore();
    app = sessionApp(
      createSessionEngine({ store, env: {}, secure: false, csrf: { enabled: false } }),
    );
  });

  const read = async (cookie: string) => {
    const res = await app.request("/get/user", { headers: { cookie } });
    return { status: res.status, body: await res.text(), setCookie: res.headers.get("set-cookie") };
  };

  const malformed: Array<[string, string]> = [
    ["empty", "session_id="],
    ["too short", "session_id=abc"],
    ["one character too long", `session_id=${generateId()}x`],
    ["bad alphabet", `session_id=${"+".repeat(32)}`],
    ["quoted", `session_id="${generateId()}"`],
    ["percent-encoded", `session_id=${"%41".repeat(32)}`],
    ["100 kB value", `session_id=${"a".repeat(100_000)}`],
    ["__proto__ value", "session_id=__proto__"],
    ["constructor value", "session_id=constructor"],
    ["tab inside", `session_id=${generateId().slice(0, 31)}\t`],
    ["unicode", `session_id=${"é".repeat(32)}`],
  ];

  test.each(malformed)("%s: no session, no store call, no crash", async (_name, cookie) => {
    const r = await read(cookie);
    expect(r.status).toBe(200);
    expect(r.body).toBe("null");
    expect(r.setCookie).toBeNull();
    expect(store.calls).toEqual([]);
  });

  test("duplicated session cookie (shadowing attempt): no session, no store call", async () => {
    const jar = new Jar();
    jar.take(await app.request("/set/user/alice", { method: "POST" }));
    store.reset();
    const r = await read(`${jar.cookie}; ${jar.cookie.replace(/=.*/, `=${generateId()}`)}`);
    expect(r.body).toBe("null");
    expect(store.calls).toEqual([]);
  });

  test("look-alike names are not our cookie", async () => {
    const jar = new Jar();
    jar.take(await app.request("/set/user/alice", { method: "POST" }));
    const value = jar.cookie.split("=")[1] as string;
    for (const name of [
      "SESSION_ID",
      "session_id2",
      "__Host-session_id",
      "xsession_id",
      "session-id",
    ]) {
      store.reset();
      const r = await read(`${name}=${value}`);
      expect(r.body, name).toBe("null");
      expect(store.calls, name).toEqual([]);
    }
    // Surrounding spaces are optional whitespace, not part of the name.
    expect((await read(`  session_id = ${value} `)).body).toBe('"alice"');
  });

  test("an unknown well-formed id is looked up once and never adopted", async () => {
    const forged = generateId();
    const res = await app.request("/set/user/mallory", {
      method: "POST",
      headers: { cookie: `session_id=${forged}` },
    });
    const set = res.headers.get("set-cookie") ?? "";
    expect(set).toMatch(/^session_id=[A-Za-z0-9_-]{32};/);
    expect(set).not.toContain(forged);
    expect(store.calls).toEqual(["load", "write:create"]);
    const replay = await read(`session_id=${forged}`);
    expect(replay.body).toBe("null");
  });

  test("an oversized Cookie header with many cookies is rejected without a store call", async () => {
    const many = Array.from({ length: 5000 }, (_, i) => `c${i}=${"v".repeat(20)}`).join("; ");
    const r = await read(`${many}; session_id=${generateId()}`);
    expect(r.body).toBe("null");
    expect(store.calls).toEqual([]);
  });

  test("session keys named __proto__ and constructor are plain keys", async () => {
    const jar = new Jar();
    jar.take(await app.request("/set/__proto__/polluted", { method: "POST" }));
    jar.take(await app.request("/set/constructor/x", { method: "POST", headers: jar.headers() }));
    const res = await app.request("/get/__proto__", { headers: jar.headers() });
    expect(await res.text()).toBe('"polluted"');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty("polluted");
  });
});

describe("readCookie", () => {
  test.each([
    [undefined, { kind: "absent" }],
    ["", { kind: "absent" }],
    ["a=1; b=2", { kind: "absent" }],
    ["sid=x", { kind: "present", value: "x" }],
    ["a=1;sid=x;b=2", { kind: "present", value: "x" }],
    ["sid=x; sid=y", { kind: "duplicate" }],
    ["sid", { kind: "absent" }],
    [";;;=;sid=;", { kind: "present", value: "" }],
    ["sid\u0000=x", { kind: "absent" }],
    ["sid=x\u0000", { kind: "present", value: "x\u0000" }],
  ])("%j", (header, expected) => {
    expect(readCookie(header, "sid")).toEqual(expected);
  });
});

describe("ids", () => {
  test("are 32 url-safe characters and distinct", () => {
    const ids = new Set(Array.from({ length: 1000 }, generateId));
    expect(ids.size).toBe(1000);
    for (const id of ids) expect(isWellFormedId(id)).toBe(true);
  });
  test.each([
    null,
    42,
    {},
    "",
    "a".repeat(31),
    "a".repeat(33),
    `${"a".repeat(31)}=`,
    `${"a".repeat(31)}/`,
  ])("%j is not well formed", (value) => {
    expect(isWellFormedId(value)).toBe(false);
  });
});

describe("missing middleware", () => {
  test("a handler asking for the session without the middleware gets an error naming it", async () => {
    const bare = new Hono();
    let message = "";
    bare.get("/", (c) => c.text(String(getSession(c))));
    bare.onError((err, c) => {
      message = err.message;
      return c.text("error", 500);
    });
    await bare.request("/");
    expect(message).toMatch(/Register the coatcheck Hono middleware/);
    expect(message).toMatch(/app\.use\(session\(\)\)/);
    expect(session).toBeTypeOf("function");
  });
});
