import { type AppProcess, headersOf, login, startApp, until, type Visitor } from "./lib.js";

/**
 * Scale-out checks: several app processes on their own loopback ports, one Redis or PostgreSQL, no proxy. Requests
 * are spread round-robin by the client itself. Shared by `scripts/reliability/scaleout.ts` (long
 * run) and `test/reliability/scaleout.test.ts` (short run).
 */

/**
 * Start `count` app processes on one Redis (`store` is its URL) or on the store the environment
 * `store` names (e.g. `{ POSTGRES_URL }`), and wait until each serves a session.
 */
export async function startInstances(
  store: string | Record<string, string>,
  count: number,
  prefix = "scaleout:",
) {
  const env = typeof store === "string" ? { REDIS_URL: store, KEY_PREFIX: prefix } : store;
  const apps: AppProcess[] = await Promise.all(Array.from({ length: count }, () => startApp(env)));
  for (const app of apps) {
    if (!(await until(async () => (await fetch(`${app.base}/token`)).ok, 20_000)))
      throw new Error(`${app.base} never reached its store`);
  }
  return apps;
}

async function post(base: string, path: string, v: Visitor) {
  const res = await fetch(`${base}${path}`, { method: "POST", headers: headersOf(v) });
  return { status: res.status, text: await res.text() };
}

async function sessionOf(base: string, v: Visitor) {
  const res = await fetch(`${base}/session`, { headers: headersOf(v) });
  return (await res.json()) as { pid: number; user: string | null; counter: number; keys: number };
}

export interface CounterRun {
  sessions: number;
  requests: number;
  ok: number;
  /** Requests answered with anything but 200. */
  failed: Record<string, number>;
  /** Sessions whose final counter, read through every instance, is not their count of 200s. */
  wrong: number;
  /** Requests served per instance. */
  perInstance: number[];
  seconds: number;
}

/**
 * Each session increments its counter one request at a time, its n-th request going to instance
 * (start + n) mod count, so every step reads what another process wrote. Sessions run in parallel.
 * Stops after `perSession` requests per session or `seconds`, whichever comes first.
 */
export async function roundRobinCounters(
  bases: string[],
  sessions: number,
  perSession: number,
  seconds: number,
): Promise<CounterRun> {
  const visitors = await Promise.all(
    Array.from({ length: sessions }, (_, i) => login(bases[i % bases.length] as string, `rr${i}`)),
  );
  const end = performance.now() + seconds * 1000;
  const failed: Record<string, number> = {};
  const perInstance = bases.map(() => 0);
  const okBy = visitors.map(() => 0);
  const started = performance.now();
  let requests = 0;
  await Promise.all(
    visitors.map(async (v, i) => {
      for (let n = 0; n < perSession && performance.now() < end; n++) {
        const at = (i + n) % bases.length;
        const r = await post(bases[at] as string, "/counter", v);
        requests++;
        perInstance[at] = (perInstance[at] ?? 0) + 1;
        if (r.status === 200) okBy[i] = (okBy[i] ?? 0) + 1;
        else failed[r.status] = (failed[r.status] ?? 0) + 1;
      }
    }),
  );
  const seconds_ = (performance.now() - started) / 1000;
  let wrong = 0;
  for (const [i, v] of visitors.entries()) {
    for (const base of bases) if ((await sessionOf(base, v)).counter !== okBy[i]) wrong++;
  }
  return {
    sessions,
    requests,
    ok: okBy.reduce((a, b) => a + b, 0),
    failed,
    wrong,
    perInstance,
    seconds: seconds_,
  };
}

/** `n` parallel requests on one session, spread over the instances: each sets its own key. */
export async function parallelKeys(bases: string[], n: number) {
  const v = await login(bases[0] as string, "keys");
  const before = (await sessionOf(bases[1 % bases.length] as string, v)).keys;
  const replies = await Promise.all(
    Array.from({ length: n }, (_, i) => post(bases[i % bases.length] as string, `/set/${i}`, v)),
  );
  const after = (await sessionOf(bases[2 % bases.length] as string, v)).keys;
  return {
    requests: n,
    failed: replies.filter((r) => r.status !== 200).length,
    lost: n - (after - before),
  };
}

/** `n` parallel increments of one session's counter, spread over the instances, under sessionLock(). */
export async function parallelLockedCounter(bases: string[], n: number) {
  const v = await login(bases[0] as string, "locked");
  const replies = await Promise.all(
    Array.from({ length: n }, (_, i) => post(bases[i % bases.length] as string, "/counter", v)),
  );
  const counter = (await sessionOf(bases[1 % bases.length] as string, v)).counter;
  const seen = replies.map((r) => Number(r.text)).sort((a, b) => a - b);
  return {
    requests: n,
    failed: replies.filter((r) => r.status !== 200).length,
    counter,
    /** Every count from 1 to n was handed out exactly once. */
    distinct: seen.every((x, i) => x === i + 1),
  };
}

/**
 * Sign in, check every instance knows the user, sign out through the first instance, then at once
 * ask every other instance: who am I (must be 401), and write with the old cookie (must be
 * refused, and must not bring the session back).
 */
export async function logoutEverywhere(bases: string[]) {
  const v = await login(bases[0] as string, "leaving");
  const before = await Promise.all(
    bases.map(async (b) => (await fetch(`${b}/whoami`, { headers: headersOf(v) })).status),
  );
  const logout = await post(bases[0] as string, "/logout", v);
  const others = bases.slice(1);
  const whoami = await Promise.all(
    others.map(async (b) => (await fetch(`${b}/whoami`, { headers: headersOf(v) })).status),
  );
  const writes = await Promise.all(
    others.map(async (b) => (await post(b, "/set/again", v)).status),
  );
  const after = await Promise.all(bases.map((b) => sessionOf(b, v)));
  return {
    signedInEverywhere: before.every((s) => s === 200),
    logoutStatus: logout.status,
    whoamiAfter: whoami,
    writesAfter: writes,
    resurrected: after.some((s) => s.user !== null || s.keys !== 0),
  };
}
