/**
 * Bytes allocated per request: each memory-store cell in its own process with a young generation
 * large enough (512 MB semi-spaces) that a window of requests triggers no collection at all. Per
 * route: the route's checks (as in the matrix), a warm-up, then `repeats` windows of: full GC
 * inside the cell, used heap, `requests` requests, used heap again. Every byte the window
 * allocated is still on the heap, so (after − before) ÷ requests is what one request allocated.
 * A window in which the cell collected anyway (counted with v8.GCProfiler inside the cell) would
 * undercount, so it voids the figure, as does any failed check, error or wrong body.
 */
import { startCell } from "./child.mjs";
import { call, check, load, recheck, signIn } from "./measure.mjs";

/**
 * Node flags of an allocation cell: gc() for the runner, no scavenge inside a window, and a large
 * old-generation start limit: Express puts about 2.5 KB per request straight into old space (bare
 * Express too), and without it the ~8 MB a window adds there often started a mark-compact.
 */
export const ALLOC_FLAGS = [
  "--expose-gc",
  "--max-semi-space-size=512",
  "--min-semi-space-size=512",
  "--initial-old-space-size=512",
];

/** Requests per route before the first window (JIT, caches and lazy module work settle). */
export const ALLOC_WARMUP = 2000;
/** Windows per route; the page shows their median and min–max. */
export const ALLOC_REPEATS = 3;
/**
 * Connections the requests are spread over: a few keep-alive connections, so each window opens
 * only these and (unlike one sequential connection) a route's requests do not wait on each other.
 */
export const ALLOC_CONNECTIONS = 4;

/** The cells measured for allocation: every memory-store cell (bare cells included). */
export const allocCells = (cells) => cells.filter((cell) => cell.store === "memory");

/**
 * Start one cell with {@link ALLOC_FLAGS} and measure every route of it; returns, per route, the
 * bytes per request of each window, the collections in each window, and a void reason or null.
 */
export async function measureAlloc(cell, { requests, warmup = ALLOC_WARMUP }) {
  const server = await startCell(cell, { execArgv: ALLOC_FLAGS });
  const results = {};
  try {
    const ctx = await signIn(cell, server);
    for (const route of cell.routes) {
      const failures = await check(cell, route, ctx);
      const run = (amount) => load(server.base, route, ctx, null, ALLOC_CONNECTIONS, { amount });
      await run(warmup);
      if (route === "write")
        ctx.counter = Number((await call(server.base, "write", { cookie: ctx.cookie })).text);
      const bytes = [];
      const gcs = [];
      for (let i = 0; i < ALLOC_REPEATS; i++) {
        const before = await server.heap("start");
        const result = await run(requests);
        const after = await server.heap("end");
        const served = result.requests.total;
        const bad = result.errors + result.timeouts + result.non2xx + result.mismatches;
        if (bad > 0) failures.push(`window ${i + 1}: ${bad} errors, non-2xx or wrong bodies`);
        if (after.gcs.length > 0)
          failures.push(`window ${i + 1}: collected in the window (${after.gcs.join(", ")})`);
        bytes.push(served > 0 ? (after.used - before.used) / served : Number.NaN);
        gcs.push(after.gcs.length);
      }
      failures.push(...(await recheck(cell, route, ctx)));
      results[route] = { bytes, gcs, void: failures.length > 0 ? failures.join("; ") : null };
    }
  } finally {
    await server.stop();
  }
  return results;
}
