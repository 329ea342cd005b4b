/**
 * A paired comparison of two cells (a PAIRS entry of matrix.mjs): both servers start at once, both
 * are checked and warmed, then short windows alternate between them in the order A B B A A B B A…,
 * so slow drift of the machine (other work, CPU frequency, a noisy neighbour) falls on both sides
 * alike. Window i of A and window i of B are adjacent in time; their ratio is one observation, and
 * the pair's figure is the median of those ratios with their min–max.
 */
import { startCell } from "./child.mjs";
import { CELLS } from "./matrix.mjs";
import { check, load, recheck, signIn } from "./measure.mjs";
import { serverCounters } from "./redis.mjs";
import { median } from "./util.mjs";

/** The cells of `pair`, looked up in the matrix. */
export const cellsOf = (pair) =>
  [pair.a, pair.b].map((side) => CELLS.find((c) => c.id === side.cell));

/**
 * Measure one pair: `windows` windows of `duration` seconds per side. Returns every window's
 * figures per side (req/s, server CPU µs/req, redis-server CPU µs/req on Redis cells) and a void
 * reason when a check failed or a window had errors.
 */
export async function measurePair(pair, options) {
  const { redis, windows, duration, warmup, connections, primer = 0.5 } = options;
  const cells = cellsOf(pair);
  const routes = [pair.a.route, pair.b.route];
  const usesRedis = cells.some((cell) => cell.store === "redis");
  if (usesRedis) await redis.client.sendCommand(["FLUSHALL"]);
  const servers = await Promise.all(cells.map((cell) => startCell(cell, { redisUrl: redis?.url })));
  const failures = [];
  const figures = [[], []];
  try {
    const ctxs = await Promise.all(cells.map((cell, i) => signIn(cell, servers[i])));
    for (const i of [0, 1]) {
      const found = await check(cells[i], routes[i], ctxs[i]);
      failures.push(...found.map((f) => `${cells[i].id} ${routes[i]}: ${f}`));
    }
    const run = (i, seconds) => load(servers[i].base, routes[i], ctxs[i], seconds, connections);
    for (const i of [0, 1]) await run(i, primer);
    // Two rounds of warm-up each, alternating: the first pair of a `--paired-only` run also warms
    // the runner itself (its first seconds of autocannon measured several times the server CPU
    // per request of the later windows).
    for (const i of [0, 1, 0, 1]) await run(i, warmup);
    for (let w = 0; w < windows; w++) {
      for (const i of w % 2 === 0 ? [0, 1] : [1, 0]) {
        const redisBefore = usesRedis ? await serverCounters(redis.client) : null;
        const cpuBefore = await servers[i].cpuMicros();
        const result = await run(i, duration);
        const cpuAfter = await servers[i].cpuMicros();
        const redisAfter = usesRedis ? await serverCounters(redis.client) : null;
        const served = result.requests.total;
        const bad = result.errors + result.timeouts + result.non2xx + result.mismatches;
        if (bad > 0)
          failures.push(
            `${cells[i].id} ${routes[i]}: window ${w + 1} had ${bad} errors, non-2xx or wrong bodies`,
          );
        figures[i].push({
          rps: served / result.duration,
          cpuUs: served > 0 ? (cpuAfter - cpuBefore) / served : Number.NaN,
          redisCpuUs:
            usesRedis && served > 0
              ? (redisAfter.cpuMicros - redisBefore.cpuMicros) / served
              : null,
        });
      }
    }
    for (const i of [0, 1]) {
      const found = await recheck(cells[i], routes[i], ctxs[i]);
      failures.push(...found.map((f) => `${cells[i].id} ${routes[i]}: ${f}`));
    }
  } finally {
    await Promise.all(servers.map((server) => server.stop()));
  }
  return {
    id: pair.id,
    windows: figures[0].map((a, w) => ({ a, b: figures[1][w] })),
    void: failures.length > 0 ? failures.join("; ") : null,
  };
}

/** Median and min–max of a list of numbers (NaN dropped). */
function spread(values) {
  const list = values.filter((v) => v !== null && !Number.isNaN(v));
  if (list.length === 0) return null;
  return { median: median(list), min: Math.min(...list), max: Math.max(...list) };
}

/**
 * The figures of one measured pair: per-window ratios A ÷ B of req/s and of server CPU µs/req,
 * per-window differences A − B of server CPU µs/req (each median, min–max), and each side's own
 * medians.
 */
export function summarisePair(result) {
  if (!result || result.windows.length === 0) return null;
  const side = (key) => ({
    rps: spread(result.windows.map((w) => w[key].rps)),
    cpuUs: spread(result.windows.map((w) => w[key].cpuUs)),
    redisCpuUs: spread(result.windows.map((w) => w[key].redisCpuUs)),
  });
  return {
    windows: result.windows.length,
    rpsRatio: spread(result.windows.map((w) => w.a.rps / w.b.rps)),
    cpuRatio: spread(result.windows.map((w) => w.a.cpuUs / w.b.cpuUs)),
    cpuDiff: spread(result.windows.map((w) => w.a.cpuUs - w.b.cpuUs)),
    a: side("a"),
    b: side("b"),
    void: result.void,
  };
}
