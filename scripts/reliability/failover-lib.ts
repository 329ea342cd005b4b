import { execFileSync } from "node:child_process";
// The demo imports the built package, so the engine comes from it too (one SessionEngine class).
import { createSessionEngine, type Logger, type SessionEngine } from "coatcheck";
import type { RedisStore } from "coatcheck/redis";
import type { Hono } from "hono";
import { createDemoApp, DEMO_CONFIG } from "../../examples/demo/app.js";
import type { ClusterTopology, SentinelTopology } from "../../test/support/topology.js";

/**
 * A primary killed under load on the demo's routes, shared by `npm run reliability:failover` and
 * its short version in test/reliability/failover.test.ts.
 *
 * The demo app runs in this process on the environment configuration a deployment would use
 * (`COATCHECK_SESSION__REDIS_CLUSTER_NODES` or `…__REDIS_SENTINELS`). Signed-in visitors loop over
 * GET /dashboard and POST /cart/items (htmx, CSRF header) while a stream of new visitors signs in
 * through the login form; the primary is SIGKILLed; every answer is tallied by the time it came
 * and by whether the visitor's session lives on the killed primary. Afterwards every visitor who
 * ever got a 303 from the sign-in is checked: a 303 from /dashboard means the session was lost.
 */

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** CRC16/XMODEM, the Cluster's key hash (Redis Cluster spec, "Keys distribution model"). */
export function slotOfKey(key: string): number {
  const open = key.indexOf("{");
  const close = open >= 0 ? key.indexOf("}", open + 1) : -1;
  const part = close > open + 1 ? key.slice(open + 1, close) : key;
  let crc = 0;
  for (const byte of Buffer.from(part)) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++)
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % 16384;
}

interface Answer {
  status: number;
  cookie: string | undefined;
  location: string | null;
  text: string;
}

/** One in-process request through Hono's request path; status 0 = no answer within 10 s. */
export async function send(
  app: Hono,
  method: string,
  path: string,
  cookie: string,
  init: { headers?: Record<string, string>; body?: string } = {},
): Promise<Answer> {
  const pending = (async () => {
    const res = await app.request(path, {
      method,
      headers: { ...(cookie ? { cookie } : {}), accept: "text/html", ...init.headers },
      ...(init.body !== undefined ? { body: init.body } : {}),
    });
    const set = res.headers.get("set-cookie");
    return {
      status: res.status,
      cookie: set ? (set.split(";")[0] as string) : undefined,
      location: res.headers.get("location"),
      text: await res.text(),
    };
  })();
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<Answer>((r) => {
    timer = setTimeout(() => r({ status: 0, cookie: undefined, location: null, text: "" }), 10_000);
  });
  try {
    return await Promise.race([pending, hung]);
  } catch {
    return { status: -1, cookie: undefined, location: null, text: "" }; // a throw = a crash
  } finally {
    clearTimeout(timer);
    // In-process requests that fail at once settle in microtasks only; a loop of them would starve
    // the socket reads of every other request. Over HTTP each request is an I/O event anyway.
    await new Promise((r) => setImmediate(r));
  }
}

export const field = (html: string) => /name="_csrf" value="([^"]+)"/.exec(html)?.[1] ?? "";
export const meta = (html: string) =>
  /<meta name="csrf-token" content="([^"]+)"/.exec(html)?.[1] ?? "";

export interface Visitor {
  cookie: string;
  csrf: string;
  /** The Cluster slot of its record. */
  slot: number;
  /** performance.now() of the 303 that signed it in. */
  signedInAt: number;
}

/** Sign in through the form; null when a step did not answer as it should (e.g. 503). */
export async function signIn(
  app: Hono,
  store: RedisStore,
  record?: (status: number, text: string) => void,
): Promise<Visitor | null> {
  const page = await send(app, "GET", "/login", "");
  record?.(page.status, page.text);
  if (page.status !== 200 || !page.cookie) return null;
  const body = new URLSearchParams({
    username: "bob",
    password: "builder",
    _csrf: field(page.text),
  }).toString();
  const login = await send(app, "POST", "/login", page.cookie, {
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body,
  });
  record?.(login.status, login.text);
  if (login.status !== 303 || login.location !== "/dashboard" || !login.cookie) return null;
  const signedInAt = performance.now();
  const id = login.cookie.slice(login.cookie.indexOf("=") + 1);
  return { cookie: login.cookie, csrf: "", slot: slotOfKey(store.keyOf(id)), signedInAt };
}

/** The demo app and its engine, configured from `env` as a deployment would be. */
export function demoOn(
  env: Record<string, string>,
  logger: Logger = { error() {}, warn() {} },
): {
  app: Hono;
  engine: SessionEngine;
  store: RedisStore;
} {
  const engine = createSessionEngine({
    configFile: DEMO_CONFIG,
    // Every visitor signs in as the same demo user: the demo's per-user limit (10 sessions) would
    // end the oldest visitors' sessions, which is not what this run measures.
    env: {
      COATCHECK_SESSION__STORAGE: "redis",
      COATCHECK_SESSION__MAX_SESSIONS_PER_USER: "0",
      ...env,
    },
    logger,
  });
  return { app: createDemoApp(engine), engine, store: engine.store as unknown as RedisStore };
}

/** Answers of one group of visitors. */
export interface Tally {
  statuses: Record<string, number>;
  /** Answers other than 200, 303 and 503 (0 = no answer within 10 s, -1 = threw). */
  bad: number;
  /**
   * ms after the kill of the first and last 503 "store unavailable" (the promotion window), and of
   * the first 200 after the last one.
   */
  first503: number | null;
  last503: number | null;
  recoveredAt: number | null;
  /** Why the 503s came, by message. */
  reasons: Record<string, number>;
  /**
   * 503 "session locked": a request that held its session's lock when the primary died could not
   * release it, so locked routes of that session wait until the lock's TTL ends.
   */
  locked: number;
}

function tally(): Tally {
  return {
    statuses: {},
    bad: 0,
    first503: null,
    last503: null,
    recoveredAt: null,
    reasons: {},
    locked: 0,
  };
}

function note(t: Tally, status: number, at: number | null, text = ""): void {
  t.statuses[status] = (t.statuses[status] ?? 0) + 1;
  if (status === 503) {
    const reason = /"message":"([^"]*)"/.exec(text)?.[1]?.replace(/\d+/g, "N") ?? text.slice(0, 80);
    t.reasons[reason] = (t.reasons[reason] ?? 0) + 1;
  }
  if (status !== 200 && status !== 303 && status !== 503) t.bad++;
  if (at === null) return;
  if (status === 503 && text.includes("session_locked")) t.locked++;
  else if (status === 503) {
    t.first503 ??= at;
    t.last503 = at;
    t.recoveredAt = null;
  } else if (status === 200 && t.last503 !== null && t.recoveredAt === null) t.recoveredAt = at;
}

export interface Target {
  isHit(slot: number): boolean;
  kill(): Promise<void>;
}

export interface FailoverOptions {
  app: Hono;
  store: RedisStore;
  /** Signed-in visitors looping over the pages. */
  visitors: number;
  /** Load before the kill. */
  leadMs: number;
  /** Load after the killed group answered 200 again. */
  tailMs: number;
  /** Give up waiting for recovery after this long. */
  limitMs: number;
  /** The primary to kill: which slots it serves (all, for Sentinel), and how to kill it. */
  target(): Promise<Target>;
}

export interface FailoverResult {
  /** Sessions on the killed primary, and on the others. */
  hit: Tally;
  other: Tally;
  /** The sign-in stream (GET /login, POST /login), on any slot. */
  signin: Tally;
  /** Visitors whose session lived on the killed primary / elsewhere. */
  hitVisitors: number;
  otherVisitors: number;
  /** The killed group answered 200 again. */
  recovered: boolean;
  /** Sign-ins that answered 303 before the kill, during the window, and how many of them were lost. */
  signIns: { before: number; during: number; after: number; lost: number; lostHit: number };
  /** Looping visitors whose session was gone after the failover. */
  lostVisitors: number;
  /** Looping visitors whose /dashboard answered 200 at the end. */
  servedAtEnd: number;
  requests: number;
}

/** Steady load, one kill, recovery, then the check of every session that was ever signed in. */
export async function runFailover(o: FailoverOptions): Promise<FailoverResult> {
  const hit = tally();
  const other = tally();
  const signin = tally();
  let killedAt: number | null = null;
  let isHit: (slot: number) => boolean = () => false;
  const since = () => (killedAt === null ? null : performance.now() - killedAt);
  const groupOf = (slot: number) => (killedAt !== null && isHit(slot) ? hit : other);
  let requests = 0;

  const looping: Visitor[] = [];
  while (looping.length < o.visitors) {
    const v = await signIn(o.app, o.store);
    if (!v) throw new Error("sign-in failed before the kill");
    looping.push(v);
  }
  const stop = { now: false };
  const lost = new Set<Visitor>();
  const loops = looping.map(async (v, i) => {
    for (let n = 0; !stop.now && !lost.has(v); n++) {
      if (n > 0 && n % 400 === 0) {
        // The demo's cart holds 500 items: start over as a new visitor well before that.
        const again = await signIn(o.app, o.store);
        if (again) Object.assign(v, again);
        continue;
      }
      const dash = await send(o.app, "GET", "/dashboard", v.cookie);
      requests++;
      if (dash.status === 200 && !v.csrf) v.csrf = meta(dash.text);
      if (dash.status === 303) lost.add(v);
      note(groupOf(v.slot), dash.status, since(), dash.text);
      if (!v.csrf) continue;
      const cart = await send(o.app, "POST", "/cart/items", v.cookie, {
        headers: {
          "x-csrf-token": v.csrf,
          "hx-request": "true",
          "content-type": "application/x-www-form-urlencoded",
        },
        body: `item=item-${i}-${n}`,
      });
      requests++;
      note(groupOf(v.slot), cart.status, since(), cart.text);
    }
  });
  // New visitors sign in all the time: the records a failover can lose are the newest ones.
  const signedIn: Visitor[] = [];
  const stream = (async () => {
    while (!stop.now) {
      const v = await signIn(o.app, o.store, (status, text) => {
        requests++;
        note(signin, status, since(), text);
      });
      if (v) signedIn.push(v);
    }
  })();

  await sleep(o.leadMs);
  // Answers are grouped and timed when they arrive: from here on, by the victim's slots.
  const target = await o.target();
  isHit = target.isHit;
  killedAt = performance.now();
  await target.kill();
  const end = performance.now() + o.limitMs;
  while (performance.now() < end && (hit.last503 === null || hit.recoveredAt === null))
    await sleep(50);
  const recovered = hit.recoveredAt !== null;
  await sleep(o.tailMs);
  stop.now = true;
  await Promise.all([...loops, stream]);

  let servedAtEnd = 0;
  for (const v of looping) {
    if (lost.has(v)) continue;
    const check = await send(o.app, "GET", "/dashboard", v.cookie);
    if (check.status === 200) servedAtEnd++;
    else if (check.status === 303) lost.add(v);
  }
  // Every session that ever got a 303 from the sign-in: still signed in?
  const kill = killedAt as number;
  const window = hit.last503 === null ? 0 : (hit.last503 as number);
  const signIns = { before: 0, during: 0, after: 0, lost: 0, lostHit: 0 };
  for (const v of signedIn) {
    const t = v.signedInAt - kill;
    if (t < 0) signIns.before++;
    else if (t <= window) signIns.during++;
    else signIns.after++;
    const check = await send(o.app, "GET", "/dashboard", v.cookie);
    if (check.status === 303) {
      signIns.lost++;
      if (isHit(v.slot)) signIns.lostHit++;
    }
  }
  return {
    hit,
    other,
    signin,
    hitVisitors: looping.filter((v) => isHit(v.slot)).length,
    otherVisitors: looping.filter((v) => !isHit(v.slot)).length,
    recovered,
    signIns,
    lostVisitors: lost.size,
    servedAtEnd,
    requests,
  };
}

/** The primary that serves `slot`, and the slots it serves. */
export async function clusterPrimary(cluster: ClusterTopology, slot = 0): Promise<Target> {
  const victim = await cluster.primaryOf(slot);
  const stdout = execFileSync(
    "redis-cli",
    ["-p", String(victim.port), "--json", "CLUSTER", "SLOTS"],
    { encoding: "utf8" },
  );
  const ranges = (JSON.parse(stdout) as Array<[number, number, [string, number]]>)
    .filter((r) => r[2][1] === victim.port)
    .map(([from, to]) => [from, to] as const);
  return {
    isHit: (slot) => ranges.some(([from, to]) => slot >= from && slot <= to),
    kill: () => victim.kill(),
  };
}

/** Sentinel's primary: every session lives there. */
export async function sentinelPrimary(sentinel: SentinelTopology): Promise<Target> {
  const victim = await sentinel.currentPrimary();
  return { isHit: () => true, kill: () => victim.kill() };
}
