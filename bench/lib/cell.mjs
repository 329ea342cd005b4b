/**
 * The runner's side of a server cell. A cell is a small file that builds one framework app with one
 * session setup and hands it to {@link serveCell}. Every cell answers the same routes:
 *
 *   GET  /login      store user="alice" and n=0 (makes the pre-created cookie)
 *   GET  /token      a CSRF token for the session ("none" where the cell has no CSRF)
 *   GET  /untouched  "ok", session middleware on the path but never used
 *   GET  /read       the stored user ("alice")
 *   GET  /write      increment n, answer the new value
 *   GET  /visit      read the user of a visitor without a cookie, answer "anon", write nothing
 *   POST /form       urlencoded form behind the CSRF check, answer "saved"
 *   POST /form-session  the same post whose handler also reads the session: "saved" when the
 *                    session's user is "alice", else 401 (bare cells: "saved", no session)
 *
 * The runner talks to the cell over IPC: CPU time, store size and (cells started with
 * `--expose-gc`) the used heap around an allocation window are read inside the server process, so
 * the load generator's own work is never counted.
 */
import { GCProfiler, getHeapStatistics } from "node:v8";

/** Port the runner picked for this cell. */
export const port = Number(process.env.BENCH_PORT);
/** "memory", "redis" or "postgres". */
export const storeKind = process.env.BENCH_STORE ?? "memory";
/** The bench's own redis-server, never the shared one. */
export const redisUrl = process.env.BENCH_REDIS_URL;
/** The bench's own database (bench/postgres.mjs creates it and drops it afterwards). */
export const postgresUrl = process.env.BENCH_POSTGRES_URL;
/** Inactivity timeout the cell configures, in seconds (0: none, the default). */
export const idleSecs = Number(process.env.BENCH_IDLE_SECS ?? 0);
/** Key prefix for every store of every cell, so the runner can count records by prefix. */
export const keyPrefix = "bench:";

/**
 * Start answering the runner. `listen` starts the server on {@link port} and resolves once it
 * accepts connections; `entries` counts the records the cell's store holds (null: unknown);
 * `statements` counts the SQL statements sent so far (PostgreSQL cells; null: not one);
 * `close` releases clients so the process can exit and flush a CPU profile.
 */
export async function serveCell({
  listen,
  entries = async () => null,
  statements = () => null,
  close = async () => {},
}) {
  await listen(port);
  process.on("message", async (message) => {
    if (message.type === "cpu") {
      const { user, system } = process.cpuUsage();
      process.send({ type: "cpu", id: message.id, micros: user + system });
    } else if (message.type === "entries") {
      process.send({ type: "entries", id: message.id, count: await entries() });
    } else if (message.type === "statements") {
      process.send({ type: "statements", id: message.id, count: statements() });
    } else if (message.type === "heap-start" || message.type === "heap-end") {
      process.send({ type: message.type, id: message.id, ...heapWindow(message.type) });
    } else if (message.type === "exit") {
      await close();
      process.exit(0);
    }
  });
  process.send({ type: "ready" });
}

let collections = null;

/**
 * An allocation window (bench/lib/alloc.mjs), only in a cell started with `--expose-gc`:
 * "heap-start" collects all garbage, starts counting collections and answers the used heap;
 * "heap-end" answers the used heap (collecting nothing first) and the kind of each collection that
 * ran since "heap-start" (any at all: the bytes of the window are not all counted).
 */
function heapWindow(type) {
  if (typeof globalThis.gc !== "function")
    return { error: "allocation windows need a cell started with --expose-gc" };
  if (type === "heap-start") {
    collections?.stop();
    globalThis.gc();
    collections = new GCProfiler();
    collections.start();
    return { used: getHeapStatistics().used_heap_size };
  }
  const used = getHeapStatistics().used_heap_size;
  if (collections === null) return { error: "heap-end without heap-start" };
  const gcs = collections.stop().statistics.map((gc) => gc.gcType);
  collections = null;
  return { used, gcs };
}

/** Redis client for cells that use Redis (node-redis 5, what connect-redis expects). */
export async function redisClient() {
  const { createClient } = await import("redis");
  const client = createClient({ url: redisUrl });
  client.on("error", (error) => console.error("[bench cell] redis:", error.message));
  await client.connect();
  return client;
}

/**
 * A node-postgres pool on the bench database whose `query` calls are counted: each call is one
 * statement and one round trip.
 */
export async function postgresPool() {
  const { default: pg } = await import("pg");
  const pool = new pg.Pool({ connectionString: postgresUrl, max: 10 });
  pool.on("error", (error) => console.error("[bench cell] postgres:", error.message));
  let sent = 0;
  return {
    pool,
    counted: {
      query(...args) {
        sent++;
        return pool.query(...args);
      },
    },
    statements: () => sent,
    rows: async (table) =>
      Number((await pool.query(`SELECT count(*) AS n FROM ${table}`)).rows[0].n),
  };
}
