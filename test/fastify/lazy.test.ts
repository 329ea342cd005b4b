import { subscribe, unsubscribe } from "node:diagnostics_channel";
import formbody from "@fastify/formbody";
import Fastify, { type FastifyInstance } from "fastify";
import { afterEach, describe, expect, test } from "vitest";
import { coatcheck, getCsrfToken, getSession } from "../../src/adapters/fastify.js";
import type { SessionEngine } from "../../src/core/engine.js";
import { SessionCommittedError, StoreUnavailableError } from "../../src/core/errors.js";
import { EVENTS } from "../../src/core/events.js";
import { createSessionEngine } from "../../src/setup.js";
import { cookieFrom } from "../support/h2.js";

/**
 * The plugin opens a request's session at its first use, or in `onRequest` when the CSRF check
 * runs (before any body parser). Opened sessions are counted at the engine.
 */

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

function counted(options = {}): { engine: SessionEngine; opened: () => number } {
  const engine = createSessionEngine({ env: {}, secure: false, logger: console, ...options });
  let opened = 0;
  const open = engine.open.bind(engine);
  engine.open = (cookie) => {
    opened++;
    return open(cookie);
  };
  return { engine, opened: () => opened };
}

describe("Fastify: a route that never uses its session opens nothing", () => {
  test("GET and a CSRF-off POST open no session; a malformed cookie is reported only when used", async () => {
    const rejected: unknown[] = [];
    const listener = (message: unknown) => rejected.push(message);
    subscribe(EVENTS.cookieRejected, listener);
    try {
      const { engine, opened } = counted({ csrf: { enabled: false } });
      app = Fastify();
      await app.register(coatcheck, { engine });
      app.get("/untouched", async () => "ok");
      app.post("/untouched", async () => "posted");
      app.get("/read", async (request) => String(await request.session.get("n")));
      const cookie = "session_id=not-an-id";
      const get = await app.inject({ method: "GET", url: "/untouched", headers: { cookie } });
      const post = await app.inject({ method: "POST", url: "/untouched", headers: { cookie } });
      expect([get.body, post.body]).toEqual(["ok", "posted"]);
      expect(get.headers.vary).toBeUndefined();
      expect(opened()).toBe(0);
      expect(rejected).toEqual([]);
      const read = await app.inject({ method: "GET", url: "/read", headers: { cookie } });
      expect(read.body).toBe("undefined");
      expect(read.headers.vary).toBe("Cookie");
      expect(opened()).toBe(1);
      expect(rejected).toEqual([{ reason: "malformed" }]);
    } finally {
      unsubscribe(EVENTS.cookieRejected, listener);
    }
  });
});

describe("Fastify: the session opened at its first use", () => {
  test("is the one the cookie names, in later hooks, route hooks and the handler alike", async () => {
    const { engine, opened } = counted({ csrf: { enabled: false } });
    app = Fastify();
    await app.register(coatcheck, { engine });
    const seen: unknown[] = [];
    app.addHook("preHandler", async (request) => {
      if (request.url === "/read") seen.push(await request.session.get("n"));
    });
    app.post("/set", async (request) => {
      await request.session.insert("n", 1);
      return "set";
    });
    app.get(
      "/read",
      { onRequest: async (request) => void seen.push(await getSession(request).get("n")) },
      async (request) => String(await request.session.get("n")),
    );
    const set = await app.inject({ method: "POST", url: "/set" });
    const cookie = cookieFrom(set.headers["set-cookie"]);
    const read = await app.inject({ method: "GET", url: "/read", headers: { cookie } });
    expect(read.body).toBe("1");
    expect(seen).toEqual([1, 1]);
    expect(opened()).toBe(2); // one per request, however many places use it
  });

  test("first used after the plugin's onSend: readable, and changes throw as after any commit", async () => {
    const { engine } = counted({ csrf: { enabled: false } });
    app = Fastify();
    await app.register(coatcheck, { engine });
    let late: unknown;
    app.addHook("onResponse", async (request) => {
      try {
        await request.session.insert("late", true);
      } catch (error) {
        late = error;
      }
    });
    app.get("/", async () => "ok");
    const res = await app.inject({ method: "GET", url: "/" });
    expect(res.body).toBe("ok");
    expect(res.headers["set-cookie"]).toBeUndefined();
    await new Promise((resolve) => setImmediate(resolve));
    expect(late).toBeInstanceOf(SessionCommittedError);
  });

  test("a store outage thrown by a handler that never used its session still answers 503", async () => {
    const { engine } = counted({ csrf: { enabled: false } });
    app = Fastify();
    await app.register(coatcheck, { engine });
    app.get("/", async () => {
      throw new StoreUnavailableError("down", { retryAfter: 7 });
    });
    const res = await app.inject({ method: "GET", url: "/" });
    expect(res.statusCode).toBe(503);
    expect(res.headers["retry-after"]).toBe("7");
  });

  test("a hijacked reply whose handler took the lock itself releases it once finished", async () => {
    const { engine } = counted({ csrf: { enabled: false }, lockTimeoutMs: 200 });
    app = Fastify();
    await app.register(coatcheck, { engine });
    app.post("/set", async (request) => {
      await request.session.insert("n", 1);
      return "set";
    });
    app.post("/raw", async (request, reply) => {
      await request.session.lock();
      await request.session.insert("n", 2);
      reply.hijack();
      reply.raw.end("raw");
    });
    app.post("/locked", async (request) => {
      await request.session.lock();
      return String(await request.session.get("n"));
    });
    const set = await app.inject({ method: "POST", url: "/set" });
    const cookie = cookieFrom(set.headers["set-cookie"]);
    const raw = await app.inject({ method: "POST", url: "/raw", headers: { cookie } });
    expect(raw.body).toBe("raw");
    await new Promise((resolve) => setImmediate(resolve));
    const after = await app.inject({ method: "POST", url: "/locked", headers: { cookie } });
    expect(after.statusCode).toBe(200);
    expect(after.body).toBe("1"); // the hijacked request saved nothing
  });
});

describe("Fastify: a checked request opens its session before the body parser", () => {
  test("the parser runs after the check; the handler and the commit use the same session", async () => {
    const { engine, opened } = counted();
    app = Fastify();
    await app.register(coatcheck, { engine });
    await app.register(formbody);
    const openedAtParse: number[] = [];
    app.addHook("preParsing", async (request, _reply, payload) => {
      if (request.method === "POST") openedAtParse.push(opened());
      return payload;
    });
    app.get("/token", async (request) => (await getCsrfToken(request)).token());
    app.post("/save", async (request) => {
      await request.session.insert("title", (request.body as { title: string }).title);
      return "saved";
    });
    app.get("/title", async (request) => String(await request.session.get("title")));
    const first = await app.inject({ method: "GET", url: "/token" });
    const cookie = cookieFrom(first.headers["set-cookie"]);
    const form = "application/x-www-form-urlencoded";
    const post = (body: string) =>
      app?.inject({
        method: "POST",
        url: "/save",
        headers: { cookie, "content-type": form },
        payload: body,
      });
    const before = opened();
    const forged = await post("title=forged&_csrf=nope");
    expect(forged?.statusCode).toBe(403);
    const saved = await post(`title=hello&_csrf=${encodeURIComponent(first.body)}`);
    expect(saved?.body).toBe("saved");
    expect(saved?.headers.vary).toBe("Cookie, Origin, Sec-Fetch-Site");
    expect(opened() - before).toBe(2);
    // The forged post never reached the parser; the genuine one was opened (and checked) first.
    expect(openedAtParse).toEqual([before + 2]);
    const title = await app.inject({ method: "GET", url: "/title", headers: { cookie } });
    expect(title.body).toBe("hello");
  });
});
