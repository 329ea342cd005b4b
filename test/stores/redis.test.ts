import { createClient } from "redis";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { ConfigError } from "../../src/core/errors.js";
import { generateId } from "../../src/core/id.js";
import { inheritsNothing, type SessionStore } from "../../src/core/store.js";
import { RedisStore } from "../../src/stores/redis.js";
import { describeStoreConformance } from "../conformance/store-suite.js";
import {
  ioredis,
  nodeRedis,
  REDIS_URL,
  requireSharedRedis,
  uniquePrefix,
} from "../support/redis.js";

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
    [
      "short metadata with too few parts",
      (key: string) => node.hSet(key, { "k:a": "1", m: "1:2", i: "0", d: "99999999999999" }),
    ],
    [
      "short metadata that is not numbers",
      (key: string) => node.hSet(key, { "k:a": "1", m: "a:b:c", d: "99999999999999" }),
    ],
    [
      "a readable idle hint beside unreadable metadata",
      (key: string) => node.hSet(key, { "k:a": "1", m: "x:0:0", i: "0", d: "99999999999999" }),
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
    expect(inheritsNothing(got?.fields ?? {})).toBe(true);
    expect("toString" in (got?.fields ?? {})).toBe(false);
    expect(Object.keys(got?.fields ?? {}).sort()).toEqual(["__proto__", "constructor"]);
    expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
  });

  test("a load within a tenth of the idle timeout leaves the record unwritten", async () => {
    const store = new RedisStore(node, { keyPrefix: uniquePrefix("renew") });
    const id = generateId();
    const key = store.keyOf(id);
    const idle = { ...meta, idleMs: 1000 };
    await store.write(id, { set: { a: "1" }, del: [], meta: idle }, "create", T0);
    expect(await node.hGet(key, "d")).toBe(String(T0 + 1000));
    for (const t of [10, 50, 100]) expect(await store.load(id, T0 + t)).not.toBeNull();
    expect(await node.hGet(key, "d")).toBe(String(T0 + 1000));
    expect(await store.load(id, T0 + 101)).not.toBeNull();
    expect(await node.hGet(key, "d")).toBe(String(T0 + 1101));
  });

  test.each([2, 3] as const)(
    "RESP%i: a load that renews nothing is one plain HGETALL; a due renewal or a passed deadline runs the load script",
    async (resp) => {
      const client = createClient({ url: REDIS_URL, RESP: resp, disableOfflineQueue: true });
      await client.connect();
      try {
        const sent: string[] = [];
        const counted = {
          sendCommand: (args: string[]) => {
            sent.push(args[0] as string);
            return client.sendCommand(args);
          },
        };
        const store = new RedisStore(counted, { keyPrefix: uniquePrefix(`plain${resp}`) });
        const idle = { ...meta, idleMs: 1000 };
        const [id, old] = [generateId(), generateId()];
        await store.write(id, { set: { a: '"x"' }, del: [], meta: idle }, "create", T0);
        // The earlier layout (JSON metadata, no idle hint) is judged from its metadata.
        await node.hSet(store.keyOf(old), {
          "k:a": "1",
          m: JSON.stringify(idle),
          d: String(T0 + 1000),
        });
        await node.pExpire(store.keyOf(old), 60_000);
        sent.length = 0;
        expect(await store.load(id, T0 + 100)).toEqual({ fields: { a: '"x"' }, meta: idle });
        expect(await store.load(old, T0 + 100)).toEqual({ fields: { a: "1" }, meta: idle });
        expect(await store.load(generateId(), T0 + 100)).toBeNull();
        expect(sent).toEqual(["HGETALL", "HGETALL", "HGETALL"]);
        expect(await store.load(id, T0 + 101)).not.toBeNull();
        expect(sent.slice(3, 5)).toEqual(["HGETALL", "EVALSHA"]);
        expect(await node.hGet(store.keyOf(id), "d")).toBe(String(T0 + 1101));
        // Past its deadline but not yet evicted: missing, and the script deletes it.
        sent.length = 0;
        expect(await store.load(old, T0 + 1000)).toBeNull();
        expect(sent[0]).toBe("HGETALL");
        expect(sent.length).toBeGreaterThan(1);
        expect(await node.exists(store.keyOf(old))).toBe(0);
      } finally {
        await client.close();
      }
    },
  );

  test("a record in the earlier layout (JSON metadata, no idle hint) is read, renewed and updated", async () => {
    const store = new RedisStore(node, { keyPrefix: uniquePrefix("old") });
    const id = generateId();
    const key = store.keyOf(id);
    const old = { createdAt: T0, absoluteAt: T0 + 3_600_000, idleMs: 1000, maxAgeSecs: 3600 };
    await node.hSet(key, { "k:a": "1", "k:b": "2", m: JSON.stringify(old), d: String(T0 + 1000) });
    await node.pExpire(key, 60_000);
    const got = await store.load(id, T0 + 500);
    expect({ ...got?.fields }).toEqual({ a: "1", b: "2" });
    expect(got?.meta).toEqual(old);
    expect(await node.hGet(key, "d")).toBe(String(T0 + 1500));
    // An update without metadata keeps the stored JSON and renews from it.
    expect(await store.write(id, { set: { c: "3" }, del: ["a"] }, "update", T0 + 600)).toBe(true);
    expect(await node.hGet(key, "d")).toBe(String(T0 + 1600));
    expect(await node.hGet(key, "m")).toBe(JSON.stringify(old));
    // Deleting down to one key keeps the record (no idle hint among its fields yet).
    expect(await store.write(id, { set: {}, del: ["b"] }, "update", T0 + 700)).toBe(true);
    expect({ ...(await store.load(id, T0 + 800))?.fields }).toEqual({ c: "3" });
    // A write with metadata stores the short form and the hint.
    const next = { ...old, maxAgeSecs: 7200 };
    await store.write(id, { set: {}, del: [], meta: next }, "update", T0 + 900);
    expect(await node.hmGet(key, ["m", "i"])).toEqual([
      `${T0}:${T0 + 3_600_000}:1000:7200`,
      "1000",
    ]);
    expect((await store.load(id, T0 + 1000))?.meta).toEqual(next);
  });
});
