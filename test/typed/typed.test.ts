import { Hono } from "hono";
import * as v from "valibot";
import { describe, expect, expectTypeOf, test } from "vitest";
import { z } from "zod";
import { getSession, session } from "../../src/adapters/hono.js";
import { AuthSession } from "../../src/core/auth.js";
import type { Session } from "../../src/core/session.js";
import type { SessionStore } from "../../src/core/store.js";
import {
  type StandardSchema,
  type TypedSession,
  type TypedSessionDefinition,
  typedSession,
} from "../../src/core/typed.js";
import { createSessionEngine } from "../../src/setup.js";
import { MemoryStore } from "../../src/stores/memory.js";
import { recordingLogger } from "../auth/seed-app.js";
import { storeCases } from "../auth/stores.js";
import { Jar } from "../support/hono-app.js";
import { SpyStore } from "../support/spy-store.js";

const ZodCart = z.object({ items: z.array(z.string()).default([]), total: z.number().default(0) });
const zodCart = typedSession("cart", ZodCart);

const CartItem = v.object({ sku: v.string(), qty: v.pipe(v.number(), v.integer(), v.minValue(1)) });
const ValibotCart = v.optional(v.object({ items: v.array(CartItem) }), { items: [] });
const valibotCart = typedSession("vcart", ValibotCart);

const prefs = typedSession("prefs", () => ({ theme: "light", pageSize: 20 }));

/** A Standard Schema whose validate answers with a Promise (allowed by the spec). */
const asyncCounter: StandardSchema<unknown, { n: number }> = {
  "~standard": {
    version: 1,
    vendor: "test",
    validate: async (value) => {
      await new Promise((r) => setTimeout(r, 1));
      const n = (value as { n?: unknown } | undefined)?.n;
      if (value === undefined) return { value: { n: 0 } };
      return typeof n === "number"
        ? { value: { n } }
        : { issues: [{ message: "n: not a number", path: ["n"] }] };
    },
  },
};
const counter = typedSession("counter", asyncCounter);

function harness(store: SessionStore) {
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
  const request = async (path: string, method = "GET", body?: unknown) => {
    const res = await app.request(path, {
      method,
      headers: { ...jar.headers(), ...(body ? { "content-type": "application/json" } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    jar.take(res);
    return res;
  };
  /** Put a raw value under a session key, as an old deploy or a tampered store would have. */
  app.post("/raw/:key", async (c) => {
    await getSession(c).insert(c.req.param("key"), await c.req.json());
    return c.text("ok");
  });
  app.get("/raw/:key", async (c) => c.json((await getSession(c).get(c.req.param("key"))) ?? null));
  app.get("/keys", async (c) => c.json((await getSession(c).keys()).sort()));
  return { app, request, log, jar, store };
}

describe("types", () => {
  test("data() is inferred from the schema or the default, without casts", async () => {
    expectTypeOf(zodCart).toEqualTypeOf<
      TypedSessionDefinition<{ items: string[]; total: number }>
    >();
    expectTypeOf(valibotCart).toEqualTypeOf<
      TypedSessionDefinition<{ items: { sku: string; qty: number }[] }>
    >();
    expectTypeOf(prefs).toEqualTypeOf<
      TypedSessionDefinition<{ theme: string; pageSize: number }>
    >();
    expectTypeOf(counter.open).returns.resolves.toEqualTypeOf<TypedSession<{ n: number }>>();
    expectTypeOf<TypedSession<{ items: string[] }>["data"]>().returns.toEqualTypeOf<
      Readonly<{ items: string[] }>
    >();
  });
});

describe("definition", () => {
  test("names: reserved prefix, empty, too long", () => {
    expect(() => typedSession("_auth", ZodCart)).toThrow(/reserved/);
    expect(() => typedSession("", ZodCart)).toThrow(TypeError);
    expect(() => typedSession("x".repeat(257), ZodCart)).toThrow(TypeError);
  });
  test("a schema that gives no default fails at definition, naming the fix", () => {
    expect(() => typedSession("user", z.object({ name: z.string() }))).toThrow(
      /gives no default value; pass one/,
    );
    expect(() => typedSession("user", v.object({ name: v.string() }))).toThrow(/no default/);
    expect(() => typedSession("user", z.string().optional())).toThrow(/no default/);
  });
  test("neither a schema nor a function", () => {
    expect(() => typedSession("x", 42 as unknown as () => number)).toThrow(
      /Standard Schema or a function/,
    );
  });
  test("an explicit default wins over the schema's", async () => {
    const named = typedSession("named", z.object({ name: z.string() }), () => ({ name: "guest" }));
    const { app, request } = harness(new MemoryStore());
    app.get("/named", async (c) => c.json((await named.open(getSession(c))).data()));
    expect(await (await request("/named")).json()).toEqual({ name: "guest" });
  });
});

describe.each(storeCases)("read and write through Hono on the $name store", ({ make }) => {
  const fresh = async () => harness(await make());

  test("zod: the seed's cart, dataMut + save, then view", async () => {
    const { app, request } = await fresh();
    app.post("/cart/:id", async (c) => {
      const cart = await zodCart.open(getSession(c));
      cart.dataMut().items.push(c.req.param("id"));
      cart.dataMut().total += 9.99;
      await cart.save();
      return c.text("Added to cart");
    });
    app.get("/cart", async (c) => c.json((await zodCart.open(getSession(c))).data()));
    expect(await (await request("/cart")).json()).toEqual({ items: [], total: 0 });
    await request("/cart/a", "POST");
    await request("/cart/b", "POST");
    expect(await (await request("/cart")).json()).toEqual({ items: ["a", "b"], total: 19.98 });
  });

  test("valibot: the seed's second cart (JSON item in, count out)", async () => {
    const { app, request } = await fresh();
    app.post("/items", async (c) => {
      const item = v.parse(CartItem, await c.req.json());
      const cart = await valibotCart.open(getSession(c));
      cart.dataMut().items.push(item);
      await cart.save();
      return c.json(cart.data().items.length);
    });
    expect(await (await request("/items", "POST", { sku: "A1", qty: 2 })).json()).toBe(1);
    expect(await (await request("/items", "POST", { sku: "B2", qty: 1 })).json()).toBe(2);
  });

  test("an async Standard Schema is awaited on read and on save", async () => {
    const { app, request } = await fresh();
    app.post("/inc", async (c) => {
      const n = await counter.open(getSession(c));
      n.dataMut().n += 1;
      await n.save();
      return c.json(n.data().n);
    });
    await request("/inc", "POST");
    expect(await (await request("/inc", "POST")).json()).toBe(2);
  });

  test("two typed sessions (and auth) in one request never overwrite each other", async () => {
    const { app, request } = await fresh();
    app.post("/all", async (c) => {
      const s = getSession(c);
      const [cart, p, auth] = await Promise.all([
        zodCart.open(s),
        prefs.open(s),
        AuthSession.open(s),
      ]);
      cart.dataMut().items.push("tea");
      p.dataMut().theme = "dark";
      await Promise.all([cart.save(), p.save()]);
      await auth.login("alice", ["user"]);
      return c.text("ok");
    });
    app.get("/all", async (c) => {
      const s = getSession(c);
      return c.json({
        cart: (await zodCart.open(s)).data(),
        prefs: (await prefs.open(s)).data(),
        user: (await AuthSession.open(s)).userId(),
      });
    });
    await request("/all", "POST");
    expect(await (await request("/all")).json()).toEqual({
      cart: { items: ["tea"], total: 0 },
      prefs: { theme: "dark", pageSize: 20 },
      user: "alice",
    });
  });

  test("opening twice in a request gives one view and one store read", async () => {
    const store = new SpyStore();
    const { app, request } = harness(store);
    let same = false;
    app.get("/twice", async (c) => {
      const s = getSession(c);
      const [a, b] = await Promise.all([zodCart.open(s), zodCart.open(s)]);
      same = a === b && a === (await zodCart.open(s));
      return c.text("ok");
    });
    await request("/raw/other", "POST", 1);
    store.reset();
    await request("/twice");
    expect(same).toBe(true);
    expect(store.calls.filter((call) => call === "load")).toHaveLength(1);
  });

  test("two definitions with one name in one session is a clear error", async () => {
    const { app, request } = await fresh();
    const clash = typedSession("cart", () => ({ other: true }));
    app.get("/clash", async (c) => {
      await zodCart.open(getSession(c));
      try {
        await clash.open(getSession(c));
        return c.text("no error");
      } catch (error) {
        return c.text((error as Error).message);
      }
    });
    expect(await (await request("/clash")).text()).toMatch(
      /two typed sessions use the name "cart"/,
    );
  });

  test("save() refuses data that does not fit the schema", async () => {
    const { app, request } = await fresh();
    app.post("/bad", async (c) => {
      const cart = await zodCart.open(getSession(c));
      (cart.dataMut().items as unknown[]).push(42);
      try {
        await cart.save();
        return c.text("saved");
      } catch (error) {
        return c.text((error as Error).message, 400);
      }
    });
    const res = await request("/bad", "POST");
    expect(res.status).toBe(400);
    expect(await res.text()).toMatch(/typed session "cart" does not fit its schema: items\.0/);
    expect(res.headers.get("set-cookie")).toBeNull();
  });

  test("clear() resets to the default and removes the key", async () => {
    const { app, request } = await fresh();
    app.post("/theme", async (c) => {
      const p = await prefs.open(getSession(c));
      p.dataMut().theme = "dark";
      await p.save();
      await getSession(c).insert("keep", 1);
      return c.text("ok");
    });
    app.post("/clear", async (c) => {
      const p = await prefs.open(getSession(c));
      await p.clear();
      return c.json(p.data());
    });
    await request("/theme", "POST");
    expect(await (await request("/clear", "POST")).json()).toEqual({
      theme: "light",
      pageSize: 20,
    });
    expect(await (await request("/keys")).json()).toEqual(["keep"]);
  });

  test("destroy() ends the session and resets every view of it", async () => {
    const { app, request, jar } = await fresh();
    app.post("/fill", async (c) => {
      const s = getSession(c);
      const cart = await zodCart.open(s);
      cart.dataMut().items.push("x");
      await cart.save();
      const p = await prefs.open(s);
      p.dataMut().pageSize = 50;
      await p.save();
      return c.text("ok");
    });
    app.post("/destroy", async (c) => {
      const s = getSession(c);
      const cart = await zodCart.open(s);
      const p = await prefs.open(s);
      await p.destroy();
      return c.json({ cart: cart.data(), prefs: p.data() });
    });
    await request("/fill", "POST");
    const before = jar.cookie;
    const res = await request("/destroy", "POST");
    expect(await res.json()).toEqual({
      cart: { items: [], total: 0 },
      prefs: { theme: "light", pageSize: 20 },
    });
    expect(res.headers.get("set-cookie")).toMatch(/Max-Age=0/);
    jar.cookie = before;
    expect(await (await request("/keys")).json()).toEqual([]);
  });

  test("regenerate() moves the data to a new id; the old id is dead", async () => {
    const { app, request, jar } = await fresh();
    app.post("/fill", async (c) => {
      const p = await prefs.open(getSession(c));
      p.dataMut().theme = "dark";
      await p.save();
      return c.text("ok");
    });
    app.post("/regen", async (c) => {
      await (await prefs.open(getSession(c))).regenerate();
      return c.text("ok");
    });
    await request("/fill", "POST");
    const before = jar.cookie;
    await request("/regen", "POST");
    expect(jar.cookie).not.toBe(before);
    expect(await (await request("/raw/prefs")).json()).toEqual({ theme: "dark", pageSize: 20 });
    jar.cookie = before;
    expect(await (await request("/raw/prefs")).json()).toBeNull();
  });
});

describe.each(storeCases)(
  "schema drift on the $name store: a stored value that no longer fits",
  ({ make }) => {
    const fresh = async () => harness(await make());

    async function drift(def: TypedSessionDefinition<unknown>, stored: unknown) {
      const h = await fresh();
      h.app.get("/read", async (c) => c.json((await def.open(getSession(c))).data()));
      await h.request(`/raw/${def.name}`, "POST", stored);
      const res = await h.request("/read");
      return { ...h, res, data: await res.json() };
    }

    test.each([
      ["zod", zodCart, { items: "not-a-list", total: 1 }, { items: [], total: 0 }],
      ["valibot", valibotCart, { items: [{ sku: "A", qty: 0 }] }, { items: [] }],
      ["default-shape", prefs, { theme: 3, pageSize: 20 }, { theme: "light", pageSize: 20 }],
      ["default-shape, missing key", prefs, { theme: "dark" }, { theme: "light", pageSize: 20 }],
      ["default-shape, wrong kind", prefs, [1, 2], { theme: "light", pageSize: 20 }],
      ["async schema", counter, { n: "1" }, { n: 0 }],
    ] as const)(
      "%s: logged, replaced by the default, and dropped from the session",
      async (_, def, stored, expected) => {
        const { data, log, request } = await drift(def as TypedSessionDefinition<unknown>, stored);
        expect(data).toEqual(expected);
        expect(log.warnings).toHaveLength(1);
        expect(log.warnings[0]).toMatch(
          new RegExp(`typed session "${def.name}" holds a value that does not fit its schema`),
        );
        expect(await (await request(`/raw/${def.name}`)).json()).toBeNull();
      },
    );

    test("a value that still fits is read as stored", async () => {
      const { data, log } = await drift(zodCart as TypedSessionDefinition<unknown>, {
        items: ["a"],
        total: 2,
      });
      expect(data).toEqual({ items: ["a"], total: 2 });
      expect(log.warnings).toEqual([]);
    });

    test("a value with extra keys: the schema decides (zod strips them)", async () => {
      const { data } = await drift(zodCart as TypedSessionDefinition<unknown>, {
        items: [],
        total: 1,
        admin: true,
      });
      expect(data).toEqual({ items: [], total: 1 });
    });
  },
);

test("a typed view works on a Session obtained outside an adapter", async () => {
  const engine = createSessionEngine({ env: {}, secure: false, store: new MemoryStore() });
  const s: Session = engine.open(undefined);
  const p = await prefs.open(s);
  p.dataMut().pageSize = 5;
  await p.save();
  const result = await engine.commit(s, 200);
  expect(result.action).toBe("create");
});

test("a failed read is not remembered: opening again in the request reads again", async () => {
  let failures = 1;
  class FlakyStore extends MemoryStore {
    override async load(id: string, now: number) {
      if (failures-- > 0) throw new Error("timeout");
      return super.load(id, now);
    }
  }
  const store = new FlakyStore();
  const engine = createSessionEngine({
    env: {},
    secure: false,
    store,
    logger: recordingLogger().logger,
  });
  const first = engine.open(undefined);
  const p = await prefs.open(first);
  p.dataMut().theme = "dark";
  await p.save();
  const created = await engine.commit(first, 200);
  const cookie = created.setCookie?.split(";")[0];

  const s = engine.open(cookie);
  await expect(prefs.open(s)).rejects.toThrow(/session store unavailable: timeout/);
  expect((await prefs.open(s)).data().theme).toBe("dark");
});

test("a schema that throws on a stored value is treated like one that rejects it", async () => {
  const throwing: StandardSchema<unknown, { ok: boolean }> = {
    "~standard": {
      version: 1,
      vendor: "test",
      validate: (value) => {
        if (value === undefined) return { value: { ok: true } };
        throw new Error("boom");
      },
    },
  };
  const fragile = typedSession("fragile", throwing);
  const { app, request, log } = harness(new MemoryStore());
  app.get("/read", async (c) => c.json((await fragile.open(getSession(c))).data()));
  await request("/raw/fragile", "POST", { ok: "yes" });
  const res = await request("/read");
  expect(res.status).toBe(200);
  expect(await res.json()).toEqual({ ok: true });
  expect(log.warnings.join("\n")).toMatch(/"fragile".*the schema threw: boom/);
});
