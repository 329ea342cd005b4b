import { afterAll, beforeAll, expect, test } from "vitest";
import {
  type AppProcess,
  headersOf,
  login,
  sleep,
  startApp,
  statsOf,
  until,
  type Visitor,
} from "../../scripts/reliability/lib.js";
import { type RedisServer, startRedisServer } from "../support/redis.js";

/**
 * Store outage under load, short version of `npm run reliability:outage`: one app process on a
 * redis-server of its own with AOF on; 16 clients keep reading and writing their sessions while
 * Redis is SIGKILLed and restarted, then SIGSTOPped and resumed. Every answer must be 200 or 503
 * with Retry-After, every request must end (an abort after 10 s counts as a hang), the app must not
 * crash or leak an unhandled rejection, and sessions written before the kill must survive it.
 */

const OP_TIMEOUT_MS = 300;
const CLIENTS = 16;
let redis: RedisServer;
let app: AppProcess;
let visitors: Visitor[] = [];

beforeAll(async () => {
  redis = await startRedisServer({ args: ["--appendonly", "yes", "--appendfsync", "always"] });
  app = await startApp({ REDIS_URL: redis.url, OP_TIMEOUT_MS: String(OP_TIMEOUT_MS) });
  if (!(await until(async () => (await fetch(`${app.base}/token`)).ok, 20_000)))
    throw new Error("the app never reached Redis");
  visitors = await Promise.all(
    Array.from({ length: CLIENTS }, (_, i) => login(app.base, `user${i}`)),
  );
}, 60_000);

afterAll(async () => {
  await app?.stop();
  await redis?.dispose();
});

interface Tally {
  ok: number;
  unavailable: number;
  other: string[];
  hung: number;
}

/** Every client POSTs /hit in a loop until `stop.now`; bounded by `limitMs` in any case. */
async function underLoad(stop: { now: boolean }, limitMs: number): Promise<Tally> {
  const tally: Tally = { ok: 0, unavailable: 0, other: [], hung: 0 };
  const end = performance.now() + limitMs;
  await Promise.all(
    visitors.map(async (v) => {
      while (!stop.now && performance.now() < end) {
        try {
          const res = await fetch(`${app.base}/hit`, {
            method: "POST",
            headers: headersOf(v),
            signal: AbortSignal.timeout(10_000),
          });
          await res.arrayBuffer();
          if (res.status === 200) tally.ok++;
          else if (res.status === 503 && res.headers.get("retry-after") !== null)
            tally.unavailable++;
          else tally.other.push(String(res.status));
        } catch {
          tally.hung++;
        }
      }
    }),
  );
  return tally;
}

async function outage(down: () => Promise<void> | void, up: () => Promise<void> | void) {
  const stop = { now: false };
  const load = underLoad(stop, 30_000);
  await sleep(1000);
  await down();
  await sleep(1500);
  await up();
  const back = performance.now();
  const recovered = await until(async () => {
    const res = await fetch(`${app.base}/session`, { headers: headersOf(visitors[0] as Visitor) });
    return res.status === 200;
  }, 15_000);
  const recoverySecs = (performance.now() - back) / 1000;
  await sleep(500);
  stop.now = true;
  return { tally: await load, recovered, recoverySecs };
}

test("Redis SIGKILLed and restarted under load: 200 or 503 + Retry-After only, sessions survive", {
  timeout: 60_000,
}, async () => {
  const { tally, recovered, recoverySecs } = await outage(
    () => redis.kill(),
    () => redis.start(),
  );
  console.log(`outage (kill): ${JSON.stringify(tally)}, recovered in ${recoverySecs.toFixed(2)} s`);
  expect(tally.other).toEqual([]);
  expect(tally.hung).toBe(0);
  expect(tally.unavailable).toBeGreaterThan(0);
  expect(recovered).toBe(true);
  for (const v of visitors) {
    const res = await fetch(`${app.base}/session`, { headers: headersOf(v) });
    expect(((await res.json()) as { user: string }).user).toBe(v.user);
  }
});

test("Redis SIGSTOPped under load: requests end in 503 after the timeout, then recover", {
  timeout: 60_000,
}, async () => {
  const { tally, recovered, recoverySecs } = await outage(
    () => redis.pause(),
    () => redis.resume(),
  );
  console.log(`outage (stop): ${JSON.stringify(tally)}, recovered in ${recoverySecs.toFixed(2)} s`);
  expect(tally.other).toEqual([]);
  expect(tally.hung).toBe(0);
  expect(tally.unavailable).toBeGreaterThan(0);
  expect(recovered).toBe(true);
  const stats = await statsOf(app.base);
  expect(stats.unhandled).toBe(0);
  expect(app.unhandled).toEqual([]);
  expect(app.exits).toEqual([]);
});
