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
  expect(await client.type(key)).toBe("zset");
  const members = await client.zRange(key, 0, -1);
  expect(members).toHaveLength(2);
  const agents = members.map((m) => (JSON.parse(m) as { a: string }).a).sort();
  expect(agents).toEqual(["Kept/1", "Kept/2"]);
  // The key expires with its longest entry, never before it.
  const ttl = await client.pTTL(key);
  const scores = await client.zRangeWithScores(key, 0, -1);
  const latest = Math.max(...scores.map((s) => s.score));
  expect(ttl).toBeGreaterThan(0);
  expect(ttl).toBeGreaterThanOrEqual(latest - Date.now() - 5_000);
  expect(ttl).toBeLessThanOrEqual(3600 * 1000);
  // Every session key and the index key live in different slots: the index is a key of its own.
  for (const b of kept) await b.post("/logout");
  expect(await client.exists(key)).toBe(0);
});

test("the index key names no session: a dump of it yields no cookie", async () => {
  const redis = store();
  const app = usersApp(usersEngine(redis));
  const b = browser(app);
  await b.post("/login/dumped");
  const id = b.jar.cookie.split("=")[1] as string;
  const [raw] = await client.zRange(redis.indexKeyOf("dumped"), 0, -1);
  expect(raw).toBeDefined();
  expect(raw).not.toContain(id);
  // It names the record by the hash its key is made of.
  const ref = (JSON.parse(raw as string) as { i: string }).i;
  expect(redis.keyOf(id)).toContain(`{${ref}}`);
  const listed = await b.json<Array<Record<string, unknown>>>("GET", "/sessions");
  expect(JSON.stringify(listed)).not.toContain(id);
});
