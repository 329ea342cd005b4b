import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { afterAll, beforeAll, expect, test } from "vitest";
import { EVENTS, type EventMessages } from "../../src/core/events.js";
import { createSessionEngine } from "../../src/setup.js";
import { Jar, sessionApp } from "../support/hono-app.js";
import { type RedisServer, startRedisServer } from "../support/redis.js";

/**
 * A frozen store under load: a private redis-server is stopped with SIGSTOP while 8 clients keep
 * reading their sessions, then resumed. Without a breaker every request waits the whole operation
 * timeout; with it, after a few timeouts the engine refuses at once until a probe gets an answer.
 * The test asserts the mechanism (most 503s come from the open breaker, not from timeouts; only
 * 200 and 503 are answered; nothing hangs; service comes back by itself) and prints the latencies
 * for docs/RELIABILITY.md; it asserts no timing.
 */

// `BREAKER_FROZEN_MS=6000 BREAKER_OP_TIMEOUT_MS=1000` gives the figures in docs/RELIABILITY.md.
const OPERATION_TIMEOUT_MS = Number(process.env.BREAKER_OP_TIMEOUT_MS ?? 400);
const CLIENTS = 8;
const FROZEN_MS = Number(process.env.BREAKER_FROZEN_MS ?? 3000);
let redis: RedisServer;
const engine = () =>
  createSessionEngine({
    secure: false,
    storage: "redis",
    redisUrl: redis.url,
    operationTimeoutMs: OPERATION_TIMEOUT_MS,
    csrf: { enabled: false },
    logger: { warn() {}, error() {} },
  });

beforeAll(async () => {
  redis = await startRedisServer();
});
afterAll(async () => {
  await redis?.dispose();
});

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

test("Redis frozen under 8-way load: the breaker answers 503 at once, and closes when Redis thaws", {
  timeout: 60_000,
}, async () => {
  const e = engine();
  const app = sessionApp(e);
  const jars = await Promise.all(
    Array.from({ length: CLIENTS }, async (_, i) => {
      const jar = new Jar();
      for (let attempt = 0; attempt < 50 && jar.cookie === ""; attempt++) {
        jar.take(await app.request(`/set/user/u${i}`, { method: "POST" }));
        if (jar.cookie === "") await new Promise((r) => setTimeout(r, 50));
      }
      expect(jar.cookie).not.toBe("");
      return jar;
    }),
  );

  const kinds: Record<string, number> = {};
  const onError = (m: unknown) => {
    const kind = (m as EventMessages["coatcheck:store:error"]).kind;
    kinds[kind] = (kinds[kind] ?? 0) + 1;
  };
  subscribe(EVENTS.storeError, onError);

  const answers: Array<{ status: number; ms: number; at: number; frozen: boolean }> = [];
  const other: number[] = [];
  let hung = 0;
  const state = { frozen: false, stop: false };
  const started = performance.now();
  const loops = jars.map(async (jar, i) => {
    // Bounded in count and time: stops by itself even if the thaw never comes.
    for (let n = 0; n < 20_000 && !state.stop && performance.now() - started < 30_000; n++) {
      const t0 = performance.now();
      const frozen = state.frozen;
      const res = await Promise.race([
        app.request(`/get/user`, { headers: jar.headers() }),
        new Promise<null>((r) => setTimeout(() => r(null), 10_000)),
      ]);
      if (res === null) {
        hung++;
        continue;
      }
      const body = await res.text();
      answers.push({
        status: res.status,
        ms: performance.now() - t0,
        at: performance.now(),
        frozen,
      });
      if (res.status === 200) expect(JSON.parse(body)).toBe(`u${i}`);
      else if (res.status !== 503) other.push(res.status);
      // A client that gets 503 does what Retry-After asks of a browser only roughly: a short pause.
      if (res.status === 503) await new Promise((r) => setTimeout(r, 10));
    }
  });

  await new Promise((r) => setTimeout(r, 500));
  redis.pause();
  state.frozen = true;
  await new Promise((r) => setTimeout(r, FROZEN_MS));
  redis.resume();
  state.frozen = false;
  const thawed = performance.now();
  let recoveredAt = Number.NaN;
  for (let n = 0; n < 400 && Number.isNaN(recoveredAt); n++) {
    await new Promise((r) => setTimeout(r, 25));
    recoveredAt = answers.find((a) => a.at > thawed && a.status === 200)?.at ?? Number.NaN;
  }
  await new Promise((r) => setTimeout(r, 500));
  state.stop = true;
  await Promise.all(loops);
  unsubscribe(EVENTS.storeError, onError);
  await e.close();

  const during = answers.filter((a) => a.frozen && a.status === 503);
  const report = {
    answers: answers.length,
    unavailableWhileFrozen: during.length,
    median503Ms: Math.round(median(during.map((a) => a.ms))),
    slowestMs: Math.round(Math.max(...answers.map((a) => a.ms))),
    recoveryMs: Math.round(recoveredAt - thawed),
    storeErrors: kinds,
  };
  console.log(`breaker under a frozen Redis: ${JSON.stringify(report)}`);

  expect(other).toEqual([]);
  expect(hung).toBe(0);
  expect(Number.isNaN(recoveredAt)).toBe(false);
  // The mechanism: after the first few timeouts, refusals come from the open breaker.
  expect(kinds["breaker-open"] ?? 0).toBeGreaterThan(kinds.timeout ?? 0);
  expect(during.length).toBeGreaterThan(kinds.timeout ?? 0);
});

test("ready() reports the store and the breaker's state", { timeout: 30_000 }, async () => {
  const e = engine();
  expect(await e.ready()).toEqual({ ok: true, breaker: "closed" });
  redis.pause();
  try {
    const first = await e.ready();
    expect(first.ok).toBe(false);
    expect(first.reason).toMatch(/timed out/);
    for (let i = 0; i < 3; i++) await e.ready();
    const refused = await e.ready();
    expect(refused).toMatchObject({ ok: false, breaker: "open" });
    expect(refused.reason).toMatch(/refused at once/);
  } finally {
    redis.resume();
  }
  let health = await e.ready();
  for (let i = 0; i < 100 && !health.ok; i++) {
    await new Promise((r) => setTimeout(r, 50));
    health = await e.ready();
  }
  expect(health).toEqual({ ok: true, breaker: "closed" });
  await e.close();
});
