import { afterAll, beforeAll, expect, test } from "vitest";
import { RedisStore } from "../../src/stores/redis.js";
import { nodeRedis, requireSharedRedis, uniquePrefix } from "../support/redis.js";
import { browser, usersApp, usersEngine } from "./app.js";
import { userIndexSuite } from "./suite.js";

let client: Awaited<ReturnType<typeof nodeRedis>>;
const prefixes: string[] = [];

beforeAll(async () => {
  await requireSharedRedis();
  client = await nodeRedis();
});

afterAll(async () => {
  for (const prefix of prefixes) {
    for await (const keys of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 200 })) {
      if (keys.length > 0) await client.del(keys);
    }
  }
  await client.close();
});

function store(): RedisStore {
  const keyPrefix = uniquePrefix("users");
  prefixes.push(keyPrefix);
  return new RedisStore(client, { keyPrefix });
}

userIndexSuite("Redis", async () => store());

test("200 sign-ins and sign-outs of one user leave only the live sessions in the user's key", async () => {
  const redis = store();
  const engine = usersEngine(redis, { expirySecs: 3600 });
  const app = usersApp(engine);
  const key = redis.indexKeyOf("heavy");
  const kept = [browser(app, "Kept/1"), browser(app, "Kept/2")];
  for (const b of kept) await b.post("/login/heavy");
  for (let i = 0; i < 200; i++) {
    const b = browser(app, `Churn/${i}`);
    expect((await b.post("/login/heavy")).status).toBe(200);
    expect((await b.post("/logout")).status).toBe(200);
  }
  const [entriesKey, handlesKey] = [key.replace(/:d$/, ":e"), key.replace(/:d$/, ":h")];
  expect(await client.type(key)).toBe("zset");
  expect(await client.type(entriesKey)).toBe("hash");
  expect(await client.type(handlesKey)).toBe("hash");
  const members = await client.zRange(key, 0, -1);
  expect(members).toHaveLength(2);
  const entries = await client.hGetAll(entriesKey);
  expect(Object.keys(entries).sort()).toEqual([...members].sort());
  const agents = Object.values(entries)
    .map((m) => (JSON.parse(m) as { a: string }).a)
    .sort();
  expect(agents).toEqual(["Kept/1", "Kept/2"]);
  expect(Object.values(await client.hGetAll(handlesKey)).sort()).toEqual([...members].sort());
  // Every key expires with the longest entry, never before it.
  const scores = await client.zRangeWithScores(key, 0, -1);
  const latest = Math.max(...scores.map((s) => s.score));
  for (const k of [key, entriesKey, handlesKey]) {
    const ttl = await client.pTTL(k);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeGreaterThanOrEqual(latest - Date.now() - 5_000);
    expect(ttl).toBeLessThanOrEqual(3600 * 1000);
  }
  for (const b of kept) await b.post("/logout");
  expect(await client.exists([key, entriesKey, handlesKey])).toBe(0);
});

test("the index key names no session: a dump of it yields no cookie", async () => {
  const redis = store();
  const app = usersApp(usersEngine(redis));
  const b = browser(app);
  await b.post("/login/dumped");
  const id = b.jar.cookie.split("=")[1] as string;
  const key = redis.indexKeyOf("dumped");
  const [raw] = Object.values(await client.hGetAll(key.replace(/:d$/, ":e")));
  expect(raw).toBeDefined();
  expect(raw).not.toContain(id);
  for (const k of [key, key.replace(/:d$/, ":h")]) {
    expect(JSON.stringify(await client.sendCommand(["DUMP", k]))).not.toContain(id);
  }
  // It names the record by the hash its key is made of.
  const ref = (JSON.parse(raw as string) as { i: string }).i;
  expect(redis.keyOf(id)).toContain(`{${ref}}`);
  const listed = await b.json<Array<Record<string, unknown>>>("GET", "/sessions");
  expect(JSON.stringify(listed)).not.toContain(id);
});

test("an index in the earlier layout (one sorted set of JSON members) is moved over on first use", async () => {
  const redis = store();
  const clock = { now: Date.now() };
  const engine = usersEngine(redis, { expirySecs: 3600 }, () => clock.now);
  const app = usersApp(engine);
  // Two live sessions signed in now; their entries then rewritten as the earlier layout had them.
  const [a, b] = [browser(app, "Old/A"), browser(app, "Old/B")];
  for (const x of [a, b]) await x.post("/login/legacy");
  const key = redis.indexKeyOf("legacy");
  const old = key.replace(/:d$/, "");
  const deadlines = await client.zRangeWithScores(key, 0, -1);
  const entries = await client.hGetAll(key.replace(/:d$/, ":e"));
  await client.del([key, key.replace(/:d$/, ":e"), key.replace(/:d$/, ":h")]);
  for (const { value: ref, score } of deadlines) {
    await client.zAdd(old, { score, value: entries[ref] as string });
  }
  // What else such a key may hold: garbage, an entry past its deadline, a JSON non-entry.
  const stale = JSON.stringify({
    i: "x".repeat(43),
    h: "S".repeat(22),
    c: 1,
    u: 1,
    a: null,
    d: null,
  });
  await client.zAdd(old, [
    { score: clock.now + 60_000, value: "not json" },
    { score: clock.now - 1, value: stale },
    { score: clock.now + 60_000, value: '{"i":1}' },
  ]);
  await client.pExpire(old, 3_600_000);
  const listed = await a.json<Array<{ userAgent: string; current: boolean }>>("GET", "/sessions");
  expect(listed.map((s) => s.userAgent).sort()).toEqual(["Old/A", "Old/B"]);
  expect(await client.exists(old)).toBe(0);
  expect((await client.zRange(key, 0, -1)).sort()).toEqual(deadlines.map((d) => d.value).sort());
  expect(Object.keys(await client.hGetAll(key.replace(/:d$/, ":h")))).toHaveLength(2);
  // Revocation and sign-in work on the moved entries.
  expect(await a.json("POST", "/revoke-others")).toEqual({ revoked: 1 });
  expect(await b.me()).toBeNull();
  await browser(app, "New/C").post("/login/legacy");
  expect(await engine.listUserSessions("legacy")).toHaveLength(2);
  // A later write in the earlier layout (an instance not yet upgraded) is merged on next use.
  const late = JSON.stringify({
    i: "y".repeat(43),
    h: "L".repeat(22),
    c: 5,
    u: 5,
    a: "Late",
    d: null,
  });
  await client.zAdd(old, { score: clock.now + 60_000, value: late });
  const merged = await redis.indexList("legacy", clock.now);
  expect(merged.map((e) => e.userAgent).sort()).toEqual(["Late", "New/C", "Old/A"]);
  expect(await client.exists(old)).toBe(0);
});

test("keys of the wrong type are replaced; entries that are not ours are dropped, never returned", async () => {
  const redis = store();
  const now = Date.now();
  const key = redis.indexKeyOf("hostile");
  const [entriesKey, handlesKey] = [key.replace(/:d$/, ":e"), key.replace(/:d$/, ":h")];
  await client.set(key, "a string");
  await client.lPush(entriesKey, "a list");
  await client.set(handlesKey, "x");
  await client.set(key.replace(/:d$/, ""), "the old key as a string");
  const good = {
    ref: "r".repeat(43),
    handle: "G".repeat(22),
    createdAt: now,
    updatedAt: now,
    deadline: now + 60_000,
    userAgent: null,
    address: null,
  };
  expect(await redis.indexPut("hostile", good, "id", null, now)).toBe(1);
  expect(await redis.indexList("hostile", now)).toEqual([good]);
  // Written behind the store's back: garbage, an entry under another ref, a deadline without entry.
  await client.zAdd(key, [
    { score: now + 60_000, value: "garbage" },
    { score: now + 60_000, value: "other" },
    { score: now + 60_000, value: "missing" },
  ]);
  await client.hSet(entriesKey, {
    garbage: "{not json",
    other: JSON.stringify({ i: "else", h: "H" }),
  });
  expect(await redis.indexList("hostile", now)).toEqual([good]);
  expect((await client.zRange(key, 0, -1)).sort()).toEqual([good.ref]);
  expect(Object.keys(await client.hGetAll(entriesKey))).toEqual([good.ref]);
  expect(await redis.indexRemove("hostile", { allExcept: null }, now, false)).toEqual([good]);
  expect(await client.exists([key, entriesKey, handlesKey])).toBe(0);
});
