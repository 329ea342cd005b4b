/**
 * coatcheck as the cells use it: imported from the built package (`npm run build` → dist/), the
 * way an application would get it, so the figures are those of the code that ships.
 */
import { pathToFileURL } from "node:url";
import { idleSecs, keyPrefix, postgresPool, redisClient, storeKind } from "./cell.mjs";

/**
 * A module of the built package. `BENCH_DIST` (the runner's `--dist`) points at another build, to
 * compare a candidate change with the current one in the same run.
 */
export function fromDist(path) {
  const dir = process.env.BENCH_DIST;
  return import(dir ? pathToFileURL(`${dir}/${path}`).href : `../../dist/${path}`);
}

/** The store of a coatcheck cell, with its record count, statement count and its shutdown. */
export async function coatcheckStore() {
  if (storeKind === "postgres") {
    const { PostgresStore } = await fromDist("stores/postgres.js");
    const pg = await postgresPool();
    const store = new PostgresStore(pg.counted, { sweepIntervalMs: 0 });
    return {
      store,
      entries: () => pg.rows(store.tables.sessions),
      statements: pg.statements,
      close: () => pg.pool.end(),
    };
  }
  if (storeKind === "redis") {
    const { RedisStore } = await fromDist("stores/redis.js");
    const client = await redisClient();
    return {
      store: new RedisStore(client, { keyPrefix }),
      entries: async () => null,
      close: () => client.close(),
    };
  }
  const { MemoryStore } = await fromDist("index.js");
  const store = new MemoryStore();
  return { store, entries: async () => store.size, close: async () => {} };
}

/** A CSRF token for `session`, as a form would carry it ("none" before CSRF was built). */
export async function csrfTokenOf(session) {
  const index = await fromDist("index.js");
  const csrf = index.CsrfToken ? index : await fromDist("core/csrf.js").catch(() => null);
  return csrf?.CsrfToken ? (await csrf.CsrfToken.from(session)).token() : "none";
}

/**
 * Session options of a coatcheck cell: `BENCH_CSRF=off` (the "CSRF off" cells) measures the same
 * form post with the check disabled, the denominator of the check's cost; `BENCH_IDLE_SECS` (the
 * "inactivity timeout" cells) sets an idle timeout that reads renew.
 */
export const sessionOptions = (store) => ({
  store,
  secure: false,
  ...(process.env.BENCH_CSRF === "off" ? { csrf: { enabled: false } } : {}),
  ...(idleSecs > 0 ? { inactivityTimeoutSecs: idleSecs } : {}),
});
