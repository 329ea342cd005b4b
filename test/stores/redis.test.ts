import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { ConfigError } from "../../src/core/errors.js";
import { generateId } from "../../src/core/id.js";
import type { SessionStore } from "../../src/core/store.js";
import { RedisStore } from "../../src/stores/redis.js";
import { describeStoreConformance } from "../conformance/store-suite.js";
import { ioredis, nodeRedis, requireSharedRedis, uniquePrefix } from "../support/redis.js";

let node: Awaited<ReturnType<typeof nodeRedis>>;
let io: Awaited<ReturnType<typeof ioredis>>;

beforeAll(async () => {
  await requireSharedRedis();
  node = await nodeRedis();
  io = await ioredis();
});

afterAll(async () => {
  await node?.close();
  io?.disconnect();
});

const ttlOf = async (store: SessionStore, id: string) => {
  const ttl = Number(await node.pTTL((store as RedisStore).keyOf(id)));
  return ttl === -2 ? null : ttl;
};

describeStoreConformance(
  "RedisStore (node-redis)",
  () => new RedisStore(node, { keyPrefix: uniquePrefix("node") }),
  { ttlOf, userIndex: true },
);
describeStoreConformance(
  "RedisStore (ioredis)",
  () => new RedisStore(io, { keyPrefix: uniquePrefix("io") }),
  { ttlOf, userIndex: true },
);

describe("RedisStore on real Redis", () => {
  const T0 = Date.UTC(2026, 0, 1);
  const meta = { createdAt: T0, absoluteAt: T0 + 3_600_000, idleMs: 0 };

  function logged() {
    const warnings: string[] = [];
    return { warnings, logger: { warn: (_f: unknown, m: string) => warnings.push(m) } };
  }

  test("the key is the prefix plus a hash tag of sha256(id): no id in the store", async () => {
    const store = new RedisStore(node, { keyPrefix: "app1:" });
    const id = generateId();
    const key = store.keyOf(id);
    expect(key).toMatch(/^app1:\{[A-Za-z0-9_-]{43}\}$/);
    expect(key).not.toContain(id);
    expect(new RedisStore(node).keyOf(id)).toBe(`coatcheck:${key.slice(5)}`);
  });

  test.each(["a{b", "has space", "x".repeat(65)])("prefix %j is refused at construction", (p) => {
    expect(() => new RedisStore(node, { keyPrefix: p })).toThrow(ConfigError);
  });

  test("something that is not a Redis client is refused at construction", () => {
    expect(() => new RedisStore({} as never)).toThrow(/node-redis client or cluster/);
  });

  test.each([
    ["a string value", (key: string) => node.set(key, "not a hash")],
    ["a list", (key: string) => node.rPush(key, ["x"])],
    [
      "a hash without metadata",
      (key: string) => node.hSet(key, { "k:a": "1", d: "99999999999999" }),
    ],
    [
      "a hash with unreadable metadata",
      (key: string) => node.hSet(key, { "k:a": "1", m: "{oops", d: "99999999999999" }),
    ],
    [
      "metadata of the wrong shape",
      (key: string) =>
        node.hSet(key, { "k:a": "1", m: '{"idleMs":"x","absoluteAt":1}', d: "99999999999999" }),
    ],
    [
      "metadata with a negative time",
      (key: string) =>
        node.hSet(key, {
          "k:a": "1",
          m: '{"createdAt":-1,"absoluteAt":0,"idleMs":5}',
          d: "99999999999999",
        }),
    ],
  ])("a corrupt record (%s) is logged and treated as missing", async (_name, plant) => {
    const { warnings, logger } = logged();
    const store = new RedisStore(node, { keyPrefix: uniquePrefix("corrupt"), logger });
    const id = generateId();
    await plant(store.keyOf(id));
    await node.pExpire(store.keyOf(id), 60_000);
    expect(await store.load(id, T0)).toBeNull();
    expect(await store.claim(id, T0)).toBeNull();
    expect(warnings.length).toBeGreaterThanOrEqual(1);
    expect(warnings[0]).toContain(store.keyOf(id));
    expect(await store.write(id, { set: { a: "1" }, del: [], meta }, "update", T0)).toBe(false);
    if ((await node.type(store.keyOf(id))) !== "hash") {
      expect({ ...(await store.take(id, ["a"])) }).toEqual({});
    }
  });

  test("a value of another type under a new id is never overwritten by create", async () => {
    const { warnings, logger } = logged();
    const store = new RedisStore(node, { keyPrefix: uniquePrefix("foreign"), logger });
    const id = generateId();
    await node.set(store.keyOf(id), "someone else's", { PX: 60_000 });
    expect(await store.write(id, { set: { a: "1" }, del: [], meta }, "create", T0)).toBe(false);
    expect(await node.get(store.keyOf(id))).toBe("someone else's");
    expect(warnings[0]).toMatch(/not a session/);
  });

  test("a record with a __proto__ field written by someone else stays a plain key", async () => {
    const store = new RedisStore(node, { keyPrefix: uniquePrefix("proto") });
    const id = generateId();
    await node.hSet(store.keyOf(id), {
      "k:__proto__": '{"isAdmin":true}',
      "k:constructor": '{"prototype":{"isAdmin":true}}',
      m: JSON.stringify(meta),
      d: String(T0 + 3_600_000),
    });
    const got = await store.load(id, T0);
    expect(Object.getPrototypeOf(got?.fields)).toBeNull();
    expect(Object.keys(got?.fields ?? {}).sort()).toEqual(["__proto__", "constructor"]);
    expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
  });
});
