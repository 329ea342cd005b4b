/**
 * One cell, one process: check that every route does what it claims, then load each route with
 * autocannon (warm-up, then the measured window) and read the server's CPU time, store records and
 * Redis command counts around the window. A figure whose checks fail is kept but marked void.
 */
import autocannon from "autocannon";
import { startCell } from "./child.mjs";
import { FORM_ROUTES, ROUTES } from "./matrix.mjs";
import { commandStats, monitor, serverCounters } from "./redis.mjs";

const FORM = "application/x-www-form-urlencoded";

/** Cookie header from a response's Set-Cookie lines, merged into `jar`. */
function absorb(jar, response) {
  for (const line of response.headers.getSetCookie()) {
    const pair = line.split(";", 1)[0];
    const eq = pair.indexOf("=");
    const name = pair.slice(0, eq);
    const value = pair.slice(eq + 1);
    if (value === "") jar.delete(name);
    else jar.set(name, value);
  }
  return jar;
}

const cookieHeader = (jar) => [...jar].map(([name, value]) => `${name}=${value}`).join("; ");

/** One request to `route` of a started cell: its status, body text and the response. */
export async function call(base, route, { cookie, body } = {}) {
  const spec = ROUTES[route];
  const headers = {};
  if (cookie) headers.cookie = cookie;
  if (spec.method === "POST") headers["content-type"] = FORM;
  const response = await fetch(`${base}${spec.path}`, {
    method: spec.method,
    headers,
    body: spec.method === "POST" ? body : undefined,
  });
  return { status: response.status, text: await response.text(), response };
}

/** Checks that make a route's figure meaningful; returns a list of failures (empty: valid). */
export async function check(cell, route, ctx) {
  const spec = ROUTES[route];
  const bare = cell.kind === "bare";
  const cookie = spec.cookie ? ctx.cookie : undefined;
  const failures = [];
  if (route === "write") {
    const a = await call(ctx.base, route, { cookie });
    const b = await call(ctx.base, route, { cookie });
    const [x, y] = [Number(a.text), Number(b.text)];
    if (a.status !== 200 || b.status !== 200 || !(y === x + 1))
      failures.push(
        `counter did not increment (${a.status} "${a.text}" → ${b.status} "${b.text}")`,
      );
    ctx.counter = y;
  } else if (FORM_ROUTES.includes(route)) {
    const ok = await call(ctx.base, route, { cookie, body: ctx.formBody });
    if (ok.status !== 200 || ok.text !== spec.expect)
      failures.push(`form post with token answered ${ok.status} "${ok.text.slice(0, 80)}"`);
    if (!bare && cell.csrf !== "off") {
      const forged = await call(ctx.base, route, { cookie, body: "title=hello" });
      if (forged.status !== 403)
        failures.push(`form post WITHOUT token answered ${forged.status}: CSRF not enforced`);
    }
    if (!bare && route === "formSession") {
      // The handler must really read the session: without the cookie there is no user to find
      // (and, where CSRF is on, no secret either), so the post must not be saved.
      const anonymous = await call(ctx.base, route, { body: ctx.formBody });
      if (anonymous.status === 200)
        failures.push(`form post WITHOUT session answered 200: the handler did not read it`);
    }
  } else {
    const got = await call(ctx.base, route, { cookie });
    if (got.status !== 200 || got.text !== spec.expect)
      failures.push(`expected 200 "${spec.expect}", got ${got.status} "${got.text.slice(0, 80)}"`);
  }
  return failures;
}

/** After the load: the session survived it and the counter really moved. */
export async function recheck(cell, route, ctx) {
  if (cell.kind === "bare") return [];
  if (route === "write") {
    const after = await call(ctx.base, route, { cookie: ctx.cookie });
    const n = Number(after.text);
    return n > ctx.counter + 1
      ? []
      : [`counter did not advance under load (${ctx.counter} → ${after.text})`];
  }
  const read = await call(ctx.base, "read", { cookie: ctx.cookie });
  return read.text === "alice" ? [] : [`session lost under load: /read answered "${read.text}"`];
}

/**
 * autocannon on one route of a started cell for `seconds`, or, with `amount`, until that many
 * requests have been answered (the allocation windows, lib/alloc.mjs).
 */
export function load(base, route, ctx, seconds, connections, { amount } = {}) {
  const spec = ROUTES[route];
  const headers = {};
  if (spec.cookie && ctx.cookie) headers.cookie = ctx.cookie;
  if (spec.method === "POST") headers["content-type"] = FORM;
  return autocannon({
    url: `${base}${spec.path}`,
    method: spec.method,
    headers,
    body: spec.method === "POST" ? ctx.formBody : undefined,
    connections,
    ...(amount ? { amount } : { duration: seconds }),
    ...(spec.expect ? { expectBody: spec.expect } : {}),
  });
}

/**
 * The context a cell's routes are loaded with: a signed-in session's cookie and a form body with
 * its CSRF token (bare cells: no cookie, the plain form body).
 */
export async function signIn(cell, server) {
  const ctx = { base: server.base, cookie: undefined, formBody: "title=hello", counter: 0 };
  if (cell.kind === "bare") return ctx;
  const jar = new Map();
  const login = await fetch(`${server.base}/login`);
  absorb(jar, login);
  // Read the whole answer, as a browser would: express-session sends most of the body before
  // its store has saved the session, and a next request sent before the save finds nothing.
  await login.text();
  const token = await fetch(`${server.base}/token`, { headers: { cookie: cookieHeader(jar) } });
  absorb(jar, token);
  const text = await token.text();
  ctx.cookie = cookieHeader(jar);
  ctx.formBody = `_csrf=${encodeURIComponent(text)}&title=hello`;
  return ctx;
}

/** Start one cell, check and load each of its routes; returns one sample per route. */
export async function measureCell(cell, options) {
  const { redis, postgresUrl, warmup, duration, connections, primer = 0.5 } = options;
  // Probes (MONITOR, statement counts) run once per cell and route; later rounds reuse them.
  const probes = options.probes ?? {};
  probes[cell.id] ??= {};
  const probed = probes[cell.id];
  const usesRedis = cell.store === "redis";
  const usesPostgres = cell.store === "postgres";
  if (usesRedis) await redis.client.sendCommand(["FLUSHALL"]);
  const server = await startCell(cell, { redisUrl: redis?.url, postgresUrl });
  const samples = {};
  try {
    const ctx = await signIn(cell, server);
    const failuresOf = {};
    const probeOf = {};
    for (const route of cell.routes) {
      failuresOf[route] = await check(cell, route, ctx);
      if (usesRedis && !probed[route])
        probed[route] = await probeRoundTrips(redis, server, route, ctx);
      if (usesPostgres && !probed[route]) probed[route] = await probeStatements(server, route, ctx);
      probeOf[route] = probed[route];
    }
    // Run every route once before any is measured, so the first route measured is not the one
    // that pays for the process's start (JIT, lazy module work, first connections).
    for (const route of cell.routes) await load(server.base, route, ctx, primer, connections);
    for (const route of cell.routes) {
      const failures = failuresOf[route];
      const roundTrips = probeOf[route] ?? null;
      await load(server.base, route, ctx, warmup, connections);
      if (route === "write")
        ctx.counter = Number((await call(server.base, "write", { cookie: ctx.cookie })).text);
      const entriesBefore = usesRedis ? await dbsize(redis) : await server.entries();
      if (usesRedis) await redis.client.sendCommand(["CONFIG", "RESETSTAT"]);
      const statementsBefore = usesPostgres ? await server.statements() : null;
      const redisBefore = usesRedis ? await serverCounters(redis.client) : null;
      const cpuBefore = await server.cpuMicros();
      const result = await load(server.base, route, ctx, duration, connections);
      const cpuAfter = await server.cpuMicros();
      const redisAfter = usesRedis ? await serverCounters(redis.client) : null;
      const statementsAfter = usesPostgres ? await server.statements() : null;
      const stats = usesRedis ? await commandStats(redis.client) : null;
      const calls = stats?.calls ?? null;
      const entriesAfter = usesRedis ? await dbsize(redis) : await server.entries();
      const served = result.requests.total;
      const bad = [];
      if (result.errors || result.timeouts) bad.push(`${result.errors + result.timeouts} errors`);
      if (result.non2xx) bad.push(`${result.non2xx} non-2xx responses`);
      if (result.mismatches) bad.push(`${result.mismatches} wrong bodies`);
      failures.push(...bad, ...(await recheck(cell, route, ctx)));
      samples[route] = {
        rps: served / result.duration,
        p50: result.latency.p50,
        p99: result.latency.p99,
        cpuUs: served > 0 ? (cpuAfter - cpuBefore) / served : Number.NaN,
        entries:
          entriesBefore === null || entriesAfter === null
            ? null
            : (entriesAfter - entriesBefore) / served,
        redisCommands:
          calls === null ? null : Object.values(calls).reduce((a, b) => a + b, 0) / served,
        redisByCommand:
          calls === null
            ? null
            : Object.fromEntries(Object.entries(calls).map(([k, v]) => [k, v / served])),
        redisCpuUs: usesRedis ? (redisAfter.cpuMicros - redisBefore.cpuMicros) / served : null,
        redisUsec: usesRedis ? clientIssuedUsec(stats.usec, roundTrips) / served : null,
        redisWrites: usesRedis ? (redisAfter.changes - redisBefore.changes) / served : null,
        roundTrips,
        pgStatements: usesPostgres ? (statementsAfter - statementsBefore) / served : null,
        void: failures.length > 0 ? failures.join("; ") : null,
      };
    }
  } finally {
    await server.stop();
  }
  return samples;
}

/** Round trips and commands per request of `route`, from 10 sequential requests under MONITOR. */
async function probeRoundTrips(redis, server, route, ctx) {
  const n = 10;
  const spec = ROUTES[route];
  const seen = await monitor(redis.port, async () => {
    for (let i = 0; i < n; i++)
      await call(server.base, route, {
        cookie: spec.cookie ? ctx.cookie : undefined,
        body: ctx.formBody,
      });
  });
  return {
    roundTrips: seen.roundTrips / n,
    commands: (seen.topLevel + seen.inScripts) / n,
    byName: seen.byName,
  };
}

/**
 * Microseconds Redis spent executing what the clients sent: the `usec` of every command, counted
 * only for the share of its calls a client issued (the probe tells, per name), since a script's
 * own usec already includes the commands it ran.
 */
function clientIssuedUsec(usec, probe) {
  let total = 0;
  for (const [name, micros] of Object.entries(usec)) {
    const seen = probe?.byName?.[name];
    const share = seen && seen.client + seen.lua > 0 ? seen.client / (seen.client + seen.lua) : 1;
    total += micros * share;
  }
  return total;
}

/** SQL statements (each one round trip) per request of `route`, from 10 sequential requests. */
async function probeStatements(server, route, ctx) {
  const n = 10;
  const spec = ROUTES[route];
  const before = await server.statements();
  for (let i = 0; i < n; i++)
    await call(server.base, route, {
      cookie: spec.cookie ? ctx.cookie : undefined,
      body: ctx.formBody,
    });
  const sent = ((await server.statements()) - before) / n;
  return { roundTrips: sent, commands: sent };
}

async function dbsize(redis) {
  return Number(await redis.client.sendCommand(["DBSIZE"]));
}
