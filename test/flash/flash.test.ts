import { Hono } from "hono";
import { afterEach, describe, expect, test } from "vitest";
import { getSession, session } from "../../src/adapters/hono.js";
import { FLASH_KEY_PREFIX, FlashKind, FlashMessage, FlashMessages } from "../../src/core/flash.js";
import type { SessionStore } from "../../src/core/store.js";
import { createSessionEngine } from "../../src/setup.js";
import { MemoryStore } from "../../src/stores/memory.js";
import { recordingLogger, seedApp } from "../auth/seed-app.js";
import { storeCases } from "../auth/stores.js";
import { Jar } from "../support/hono-app.js";
import { SpyStore } from "../support/spy-store.js";

describe("FlashMessage and FlashKind", () => {
  test.each([
    [FlashMessage.success("ok"), FlashKind.Success, "flash-success", "check-circle"],
    [FlashMessage.info("fyi"), FlashKind.Info, "flash-info", "info-circle"],
    [FlashMessage.warning("careful"), FlashKind.Warning, "flash-warning", "exclamation-triangle"],
    [FlashMessage.error("bad"), FlashKind.Error, "flash-error", "x-circle"],
  ])("%o: kind, cssClass, icon", (message, kind, cssClass, icon) => {
    expect(message.kind).toBe(kind);
    expect(message.cssClass).toBe(cssClass);
    expect(message.icon).toBe(icon);
    expect(JSON.parse(JSON.stringify(message))).toEqual({ kind, message: message.message });
  });

  test("bad kinds and texts are refused with a clear message", () => {
    expect(() => new FlashMessage("fatal" as FlashKind, "x")).toThrow(/unknown flash kind "fatal"/);
    expect(() => new FlashMessage("toString" as FlashKind, "x")).toThrow(/unknown flash kind/);
    expect(() => FlashMessage.info(42 as unknown as string)).toThrow(/must be a string/);
  });
});

function flashApp(store: SessionStore = new MemoryStore()) {
  const log = recordingLogger();
  const engine = createSessionEngine({
    env: {},
    secure: false,
    csrf: { enabled: false },
    store,
    logger: log.logger,
  });
  const app = new Hono();
  app.use(session(engine));
  const jar = new Jar();
  const request = async (path: string, method = "GET") => {
    const res = await app.request(path, { method, headers: jar.headers() });
    jar.take(res);
    return res;
  };
  return { app, request, jar, log };
}

describe("reading", () => {
  test("messages come back oldest first, with byKind and hasErrors; a second read in the request is the same and costs no store call", async () => {
    const store = new SpyStore();
    const { app, request } = flashApp(store);
    app.post("/push", async (c) => {
      const s = getSession(c);
      await FlashMessages.push(s, FlashMessage.success("saved"));
      await FlashMessages.push(s, FlashMessage.error("one field was ignored"));
      await FlashMessages.push(s, FlashMessage.warning("quota 90%"));
      return c.text("ok");
    });
    app.get("/show", async (c) => {
      const flash = FlashMessages.of(getSession(c));
      const first = await flash.messages();
      const second = await FlashMessages.of(getSession(c)).messages();
      return c.json({
        first: first.map((m) => m.message),
        same: JSON.stringify(first) === JSON.stringify(second),
        errors: (await flash.byKind(FlashKind.Error)).map((m) => m.message),
        hasErrors: await flash.hasErrors(),
      });
    });
    await request("/push", "POST");
    store.reset();
    expect(await (await request("/show")).json()).toEqual({
      first: ["saved", "one field was ignored", "quota 90%"],
      same: true,
      errors: ["one field was ignored"],
      hasErrors: true,
    });
    expect(store.calls.filter((c) => c === "take")).toHaveLength(1);
    expect(await (await request("/show")).json()).toMatchObject({ first: [], hasErrors: false });
  });

  test("FlashMessages.of costs nothing until read", async () => {
    const store = new SpyStore();
    const { app, request } = flashApp(store);
    app.post("/push", async (c) => {
      await FlashMessages.push(getSession(c), FlashMessage.info("hi"));
      return c.text("ok");
    });
    app.get("/layout", (c) => {
      FlashMessages.of(getSession(c));
      return c.text("no read");
    });
    app.get("/read", async (c) =>
      c.json((await FlashMessages.of(getSession(c)).messages()).length),
    );
    await request("/push", "POST");
    store.reset();
    await request("/layout");
    expect(store.calls).toEqual([]);
    expect(await (await request("/read")).json()).toBe(1);
  });

  test("now(): shown in this response only, never stored", async () => {
    const { app, request } = flashApp();
    app.post("/now", async (c) => {
      const s = getSession(c);
      FlashMessages.now(s, FlashMessage.error("Please fix the form"));
      return c.json((await FlashMessages.of(s).messages()).map((m) => [m.kind, m.message]));
    });
    app.get("/read", async (c) =>
      c.json((await FlashMessages.of(getSession(c)).messages()).length),
    );
    const res = await request("/now", "POST");
    expect(await res.json()).toEqual([["error", "Please fix the form"]]);
    expect(res.headers.get("set-cookie")).toBeNull();
    expect(await (await request("/read")).json()).toBe(0);
  });

  test("pushed and read in the same request: shown now, not kept; pushed after the read: kept for the next", async () => {
    const { app, request } = flashApp();
    app.post("/both", async (c) => {
      const s = getSession(c);
      await FlashMessages.push(s, FlashMessage.info("now"));
      const shown = (await FlashMessages.of(s).messages()).map((m) => m.message);
      await FlashMessages.push(s, FlashMessage.info("next"));
      return c.json(shown);
    });
    app.get("/read", async (c) =>
      c.json((await FlashMessages.of(getSession(c)).messages()).map((m) => m.message)),
    );
    expect(await (await request("/both", "POST")).json()).toEqual(["now"]);
    expect(await (await request("/read")).json()).toEqual(["next"]);
  });

  test("a stored flash that is not { kind, message } is logged and dropped", async () => {
    const { app, request, log } = flashApp();
    app.post("/forge", async (c) => {
      const s = getSession(c);
      await s.insert(`${FLASH_KEY_PREFIX}000000000`, { kind: "evil", message: "<script>" });
      await s.insert(`${FLASH_KEY_PREFIX}000000001`, "just a string");
      await FlashMessages.push(s, FlashMessage.success("real"));
      return c.text("ok");
    });
    app.get("/read", async (c) =>
      c.json((await FlashMessages.of(getSession(c)).messages()).map((m) => m.message)),
    );
    await request("/forge", "POST");
    expect(await (await request("/read")).json()).toEqual(["real"]);
    expect(
      log.warnings.filter((w) => /flash message .* is not \{ kind, message \}/.test(w)),
    ).toHaveLength(2);
  });

  test("parallel pushes in one request each keep their own key", async () => {
    const { app, request } = flashApp();
    app.post("/many", async (c) => {
      const s = getSession(c);
      await Promise.all(
        Array.from({ length: 50 }, (_, i) => FlashMessages.push(s, FlashMessage.info(`m${i}`))),
      );
      return c.text("ok");
    });
    app.get("/read", async (c) =>
      c.json((await FlashMessages.of(getSession(c)).messages()).map((m) => m.message)),
    );
    await request("/many", "POST");
    const got = (await (await request("/read")).json()) as string[];
    expect(got).toEqual(Array.from({ length: 50 }, (_, i) => `m${i}`));
  });
});

describe.each(storeCases)("flash across requests on the $name store", ({ make }) => {
  let store: SessionStore;
  afterEach(async () => {
    await store?.close?.();
  });

  async function setup() {
    store = await make();
    const { app } = seedApp(store, recordingLogger().logger);
    const jar = new Jar();
    const request = async (path: string, method = "GET") => {
      const res = await app.request(path, { method, headers: jar.headers() });
      jar.take(res);
      return res;
    };
    return { app, jar, request };
  }

  test("20 parallel requests race for one flash: exactly one sees it", async () => {
    const { app, jar, request } = await setup();
    await request("/flash/success/only-once", "POST");
    const results = await Promise.all(
      Array.from({ length: 20 }, () =>
        Promise.resolve(app.request("/flash", { headers: jar.headers() })).then(
          (r) => r.json() as Promise<string[]>,
        ),
      ),
    );
    const seen = results.filter((r) => r.length > 0);
    expect(seen).toEqual([["only-once"]]);
    expect(await (await request("/flash")).json()).toEqual([]);
  });

  test("parallel pushes from parallel requests all arrive, once each", async () => {
    const { app, jar, request } = await setup();
    await request("/flash/success/first", "POST");
    await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        app.request(`/flash/success/p${i}`, { method: "POST", headers: jar.headers() }),
      ),
    );
    const got = (await (await request("/flash")).json()) as string[];
    expect(got[0]).toBe("first");
    expect([...got].sort()).toEqual(
      ["first", ...Array.from({ length: 10 }, (_, i) => `p${i}`)].sort(),
    );
  });

  test("a 5xx response does not consume the flash", async () => {
    const { request } = await setup();
    await request("/flash/error/kept", "POST");
    expect((await request("/flash-then-fail")).status).toBe(500);
    expect((await request("/flash-then-throw")).status).toBe(500);
    expect(await (await request("/flash")).json()).toEqual(["kept"]);
    expect(await (await request("/flash")).json()).toEqual([]);
  });
});

test("a failed take is not remembered: reading again in the request tries again", async () => {
  let failures = 1;
  class FlakyStore extends MemoryStore {
    override async take(id: string, keys: readonly string[]) {
      if (failures-- > 0) throw new Error("timeout");
      return super.take(id, keys);
    }
  }
  const engine = createSessionEngine({
    env: {},
    secure: false,
    store: new FlakyStore(),
    logger: recordingLogger().logger,
  });
  const first = engine.open(undefined);
  await FlashMessages.push(first, FlashMessage.warning("still here"));
  const cookie = (await engine.commit(first, 303)).setCookie?.split(";")[0];

  const s = engine.open(cookie);
  const flash = FlashMessages.of(s);
  await expect(flash.messages()).rejects.toThrow(/session store unavailable: timeout/);
  expect((await flash.messages()).map((m) => m.message)).toEqual(["still here"]);
});
