import { Socket } from "node:net";
import { afterAll, beforeAll, expect, test } from "vitest";
import { createSessionEngine } from "../../src/setup.js";
import { RedisStore } from "../../src/stores/redis.js";
import { fakeClock } from "../support/clock.js";
import { Jar, sessionApp } from "../support/hono-app.js";
import { nodeRedis, type RedisServer, startRedisServer } from "../support/redis.js";

/**
 * Round trips per request, counted by the server: a MONITOR connection on a private redis-server
 * (so no other test file's traffic shows up) sees every command a client sends. Commands that run
 * inside a Lua script show up too, marked "lua"; they cost no round trip and are left out.
 */

let server: RedisServer;
let client: Awaited<ReturnType<typeof nodeRedis>>;
let monitor: Socket;
let lines: string[] = [];

beforeAll(async () => {
  server = await startRedisServer();
  client = await nodeRedis(server.url);
  monitor = new Socket();
  let buffered = "";
  monitor.on("data", (chunk) => {
    buffered += chunk.toString();
    const parts = buffered.split("\r\n");
    buffered = parts.pop() ?? "";
    lines.push(...parts);
  });
  await new Promise<void>((resolve) => monitor.connect(server.port, "127.0.0.1", resolve));
  monitor.write("MONITOR\r\n");
  await waitForLine((l) => l === "+OK");
});
afterAll(async () => {
  monitor?.destroy();
  await client?.close();
  await server?.dispose();
});

async function waitForLine(match: (line: string) => boolean): Promise<void> {
  while (!lines.some(match)) await new Promise((r) => setTimeout(r, 5));
}

/** The MONITOR lines of the commands `action` sent (with `inScripts`, of those its scripts ran). */
async function linesOf(action: () => Promise<unknown>, inScripts = false): Promise<string[]> {
  // MONITOR output lags behind the replies: fence the action with markers on both sides.
  const begin = `begin-${Math.random()}`;
  await client.echo(begin);
  await waitForLine((l) => l.includes(begin));
  lines = [];
  await action();
  const marker = `end-${Math.random()}`;
  await client.echo(marker);
  await waitForLine((l) => l.includes(marker));
  return lines.filter((line) => {
    const m = /^\+[\d.]+ \[\d+ ([^\]]+)\] "/.exec(line);
    return m !== null && (m[1] === "lua") === inScripts && !line.includes(marker);
  });
}

/**
 * The commands `action` sent, as { COMMAND: count }; with `inScripts`, the commands its Lua scripts
 * ran instead.
 */
async function commandsOf(
  action: () => Promise<unknown>,
  inScripts = false,
): Promise<Record<string, number>> {
  const sent: Record<string, number> = {};
  for (const line of await linesOf(action, inScripts)) {
    const name = (/\] "([^"]+)"/.exec(line)?.[1] ?? "").toUpperCase();
    sent[name] = (sent[name] ?? 0) + 1;
  }
  return sent;
}

test("0 round trips untouched, 1 to read (2 for the read that renews the idle deadline), 1 to save", async () => {
  const clock = fakeClock();
  const store = new RedisStore(client, { keyPrefix: "rt:" });
  const app = sessionApp(
    createSessionEngine({
      env: {},
      secure: false,
      csrf: { enabled: false },
      inactivityTimeoutSecs: 600,
      now: clock.now,
      store,
    }),
  );
  // First use of each script on this server: NOSCRIPT, then EVAL caches it. The load script runs
  // only for a read that renews (61 s later, past a tenth of the timeout).
  const warm = new Jar();
  warm.take(await app.request("/set/a/1", { method: "POST" }));
  clock.advance(61_000);
  await app.request("/get/a", { headers: warm.headers() });

  const jar = new Jar();
  expect(
    await commandsOf(async () => jar.take(await app.request("/set/a/1", { method: "POST" }))),
  ).toEqual({ EVALSHA: 1 });
  const key = store.keyOf(jar.cookie.split("=")[1] as string);

  expect(
    await commandsOf(async () => app.request("/untouched", { headers: jar.headers() })),
  ).toEqual({});

  const deadline = Number(await client.hGet(key, "d"));
  // Within a tenth of the timeout (60 s of 600 s) a read is one HGETALL and renews nothing; past
  // it, the HGETALL's record is due for renewal, so the load script follows it and renews.
  clock.advance(60_000);
  expect(await commandsOf(async () => app.request("/get/a", { headers: jar.headers() }))).toEqual({
    HGETALL: 1,
  });
  expect(Number(await client.hGet(key, "d"))).toBe(deadline);
  clock.advance(1_000);
  let value: unknown;
  expect(
    await commandsOf(async () => {
      value = await (await app.request("/get/a", { headers: jar.headers() })).json();
    }),
  ).toEqual({ HGETALL: 1, EVALSHA: 1 });
  expect(value).toBe("1");
  expect(Number(await client.hGet(key, "d"))).toBe(deadline + 61_000);

  expect(
    await commandsOf(async () =>
      app.request("/set/b/2", { method: "POST", headers: jar.headers() }),
    ),
  ).toEqual({ HGETALL: 1, EVALSHA: 1 });
  // Writing the value a key already holds changes nothing, so only the load goes out.
  expect(
    await commandsOf(async () =>
      app.request("/set/b/2", { method: "POST", headers: jar.headers() }),
    ),
  ).toEqual({ HGETALL: 1 });
  expect(await client.hGet(key, "k:b")).toBe('"2"');
});

test("a read is one plain HGETALL; a write's script runs one HMGET and one HSET", async () => {
  const store = new RedisStore(client, { keyPrefix: "lua:" });
  const T0 = Date.UTC(2026, 0, 1);
  const absolute = { createdAt: T0, absoluteAt: T0 + 3_600_000, idleMs: 0 };
  const idle = { ...absolute, idleMs: 600_000 };
  const inScripts = (action: () => Promise<unknown>) => commandsOf(action, true);
  const set = { user: '"alice"', n: "0" };
  await store.write("warm", { set, del: [], meta: idle }, "create", T0);
  await store.load("warm", T0 + 60_001);

  expect(
    await inScripts(() => store.write("a", { set, del: [], meta: absolute }, "create", T0)),
  ).toEqual({ HMGET: 1, DEL: 1, HSET: 1, PEXPIRE: 1 });
  expect(await commandsOf(() => store.load("a", T0 + 1))).toEqual({ HGETALL: 1 });
  expect(await inScripts(() => store.load("a", T0 + 1))).toEqual({});
  // Without an idle timeout an update leaves the deadline, so the TTL stands.
  expect(
    await inScripts(() => store.write("a", { set: { n: "1" }, del: [] }, "update", T0 + 2)),
  ).toEqual({ HMGET: 1, HSET: 1 });
  expect(
    await inScripts(() => store.write("a", { set: {}, del: ["n"] }, "update", T0 + 3)),
  ).toEqual({ HMGET: 1, HDEL: 1, HEXISTS: 1, HLEN: 1 });

  await store.write("b", { set, del: [], meta: idle }, "create", T0);
  expect(await commandsOf(() => store.load("b", T0 + 60_000))).toEqual({ HGETALL: 1 });
  // Renewal due: the plain HGETALL, then the load script, which reads again and renews.
  expect(await commandsOf(() => store.load("b", T0 + 60_001))).toEqual({
    HGETALL: 1,
    EVALSHA: 1,
  });
  expect(await inScripts(() => store.load("b", T0 + 120_002))).toEqual({
    HGETALL: 1,
    HSET: 1,
    PEXPIRE: 1,
  });
  expect(
    await inScripts(() => store.write("b", { set: { n: "1" }, del: [] }, "update", T0 + 120_003)),
  ).toEqual({ HMGET: 1, HSET: 1, PEXPIRE: 1 });
});

test("an update of a record without idle timeout that carries the loaded metadata is one short script", async () => {
  const store = new RedisStore(client, { keyPrefix: "short:" });
  const T0 = Date.UTC(2026, 0, 1);
  const absolute = { createdAt: T0, absoluteAt: T0 + 3_600_000, idleMs: 0 };
  const inScripts = (action: () => Promise<unknown>) => commandsOf(action, true);
  await store.write(
    "a",
    { set: { n: "0", user: '"alice"' }, del: [], meta: absolute },
    "create",
    T0,
  );
  const key = store.keyOf("a");
  const ttl = await client.pTTL(key);
  // First use on this server: NOSCRIPT, then EVAL; from then on one EVALSHA.
  await store.write("a", { set: { n: "1" }, del: [], loaded: absolute }, "update", T0 + 1);
  expect(
    await commandsOf(() =>
      store.write("a", { set: { n: "2" }, del: [], loaded: absolute }, "update", T0 + 2),
    ),
  ).toEqual({ EVALSHA: 1 });
  expect(
    await inScripts(() =>
      store.write("a", { set: { n: "3", b: "4" }, del: [], loaded: absolute }, "update", T0 + 3),
    ),
  ).toEqual({ HMGET: 1, HSET: 1 });
  expect(await client.hGetAll(key)).toEqual({
    d: String(absolute.absoluteAt),
    m: `${T0}:${absolute.absoluteAt}:0`,
    i: "0",
    "k:n": "3",
    "k:user": '"alice"',
    "k:b": "4",
  });
  // The TTL is the create's: nothing renewed it.
  expect(await client.pTTL(key)).toBeLessThanOrEqual(ttl);

  // A stale hint is checked against the record: the short script changes nothing and the write
  // script decides. Here another request gave the session a new lifetime since it was loaded.
  const later = { ...absolute, absoluteAt: T0 + 7_200_000, maxAgeSecs: 7200 };
  await store.write("a", { set: {}, del: [], meta: later }, "update", T0 + 4);
  expect(
    await commandsOf(() =>
      store.write("a", { set: { n: "5" }, del: [], loaded: absolute }, "update", T0 + 5),
    ),
  ).toEqual({ EVALSHA: 2 });
  expect(await client.hmGet(key, ["d", "k:n"])).toEqual([String(later.absoluteAt), "5"]);
  expect((await store.load("a", T0 + 6))?.meta).toEqual(later);

  // A record that gained an idle timeout, a destroyed record, a deadline that passed: the same.
  const idle = { ...absolute, idleMs: 600_000 };
  await store.write("b", { set: { n: "0" }, del: [], meta: idle }, "create", T0);
  expect(
    await store.write("b", { set: { n: "1" }, del: [], loaded: absolute }, "update", T0 + 100_000),
  ).toBe(true);
  expect(Number(await client.hGet(store.keyOf("b"), "d"))).toBe(T0 + 700_000);
  await store.destroy("a");
  expect(
    await store.write("a", { set: { n: "6" }, del: [], loaded: absolute }, "update", T0 + 7),
  ).toBe(false);
  expect(await client.exists(key)).toBe(0);
  await store.write("c", { set: { n: "0" }, del: [], meta: absolute }, "create", T0);
  expect(
    await commandsOf(() =>
      store.write(
        "c",
        { set: { n: "1" }, del: [], loaded: absolute },
        "update",
        absolute.absoluteAt,
      ),
    ),
  ).toEqual({ EVALSHA: 1 });
  expect(await client.exists(store.keyOf("c"))).toBe(0);
});

test("through the engine, a counter update without idle timeout takes the short script", async () => {
  const T0 = Date.UTC(2026, 0, 1);
  const clock = fakeClock(T0);
  const app = (inactivityTimeoutSecs: number) =>
    sessionApp(
      createSessionEngine({
        env: {},
        secure: false,
        csrf: { enabled: false },
        inactivityTimeoutSecs,
        now: clock.now,
        store: new RedisStore(client, { keyPrefix: `engine${inactivityTimeoutSecs}:` }),
      }),
    );
  // The write script's arguments name the mode ("create", "update"); the short script's do not.
  for (const [secs, script] of [
    [0, "short"],
    [600, "write"],
  ] as const) {
    const served = app(secs);
    const jar = new Jar();
    jar.take(await served.request("/set/n/1", { method: "POST" }));
    for (const n of [2, 3]) {
      const sent = await linesOf(async () =>
        served.request(`/set/n/${n}`, { method: "POST", headers: jar.headers() }),
      );
      const evals = sent.filter((line) => /"EVAL(SHA)?"/i.test(line));
      expect(evals).toHaveLength(1);
      expect(evals[0]?.includes('"update"')).toBe(script === "write");
    }
    expect(await (await served.request("/get/n", { headers: jar.headers() })).json()).toBe("3");
  }
});
