import { cpus, loadavg } from "node:os";
import { type RedisServer, startRedisServer } from "../../test/support/redis.js";
import { replicationOf } from "../../test/support/topology.js";
import { demoOn, send, signIn } from "../reliability/failover-lib.js";
import { option, table } from "../reliability/lib.js";

/**
 * What `redis_wait_replicas` costs: `npm run capacity:wait [-- --signins=2000]`.
 *
 * Starts a primary with two replicas on loopback (free ports, persistence off) and runs the demo
 * app in this process on `redis_url` = the primary, with `redis_wait_replicas` 0, 1 and 2. For each:
 * the latency of one sign-in at a time (GET /login + POST /login, two new records, each waiting),
 * sign-ins per second at 16 in flight (each must succeed), and page reads per second (GET /dashboard, which never
 * waits) while sign-ins run beside them: WAIT holds the shared connection until the replicas
 * answer, so other commands queue behind it.
 */

const SIGNINS = option("signins", 2000);
const SEQUENTIAL = Math.min(SIGNINS, 300);

const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0;

async function main() {
  const primary = await startRedisServer();
  const replicas: RedisServer[] = [];
  for (let i = 0; i < 2; i++)
    replicas.push(
      await startRedisServer({ args: ["--replicaof", "127.0.0.1", String(primary.port)] }),
    );
  for (const r of replicas)
    while ((await replicationOf(r)).master_link_status !== "up")
      await new Promise((x) => setTimeout(x, 100));
  console.log(`# Cost of redis_wait_replicas (${new Date().toISOString()})`);
  console.log(
    `\nMachine: ${cpus().length} cores, load average ${loadavg()[0]?.toFixed(1)} at start; one primary and two replicas on loopback.\n`,
  );
  const rows: Array<Array<string | number>> = [];
  try {
    // The knob alone: one create of a typical record at a time, the three settings interleaved so
    // that the machine's load drifts over all of them alike.
    const stores = [0, 1, 2].map(
      (wait) =>
        demoOn({
          COATCHECK_SESSION__REDIS_URL: primary.url,
          COATCHECK_SESSION__KEY_PREFIX: `w${wait}:`,
          COATCHECK_SESSION__REDIS_WAIT_REPLICAS: String(wait),
        }).store,
    );
    await Promise.all(stores.map((st) => st.ready()));
    const times: number[][] = [[], [], []];
    const meta = { createdAt: Date.now(), absoluteAt: 0, idleMs: 3_600_000 };
    const record = {
      set: { user: '{"id":"bob","roles":["user"]}', csrf: JSON.stringify("x".repeat(43)) },
      del: [],
      meta,
    };
    for (let i = 0; i < SIGNINS * 2; i++) {
      for (const [w, st] of stores.entries()) {
        const t = performance.now();
        await st.write(`${i}`.padStart(22, "a"), record, "create", Date.now());
        if (i >= 100) times[w]?.push(performance.now() - t);
      }
    }
    for (const st of stores) await st.close();
    const storeRows = times.map((list, w) => {
      list.sort((a, b) => a - b);
      return [w, pct(list, 0.5).toFixed(3), pct(list, 0.9).toFixed(3), pct(list, 0.99).toFixed(3)];
    });
    console.log("## One new record at a time (RedisStore.write, mode create)\n");
    console.log(table(["redis_wait_replicas", "p50 (ms)", "p90 (ms)", "p99 (ms)"], storeRows));
    console.log("\n## Through the demo app\n");
    for (const wait of [0, 1, 2]) {
      const { app, store } = demoOn({
        COATCHECK_SESSION__REDIS_URL: primary.url,
        COATCHECK_SESSION__KEY_PREFIX: `wait${wait}:`,
        COATCHECK_SESSION__REDIS_WAIT_REPLICAS: String(wait),
      });
      await store.ready();
      for (let i = 0; i < 100; i++) await signIn(app, store); // warm-up, not measured
      const latencies: number[] = [];
      for (let i = 0; i < SEQUENTIAL; i++) {
        const t = performance.now();
        if (!(await signIn(app, store))) throw new Error("sign-in failed");
        latencies.push(performance.now() - t);
      }
      latencies.sort((a, b) => a - b);

      let started = 0;
      let failed = 0;
      const t0 = performance.now();
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          while (started++ < SIGNINS) if (!(await signIn(app, store))) failed++;
        }),
      );
      if (failed > 0)
        throw new Error(`${failed} sign-ins failed with redis_wait_replicas = ${wait}`);
      const signinsPerSec = SIGNINS / ((performance.now() - t0) / 1000);

      const readers = await Promise.all(Array.from({ length: 12 }, () => signIn(app, store)));
      const stop = { now: false };
      let reads = 0;
      const t1 = performance.now();
      const writers = Array.from({ length: 4 }, async () => {
        while (!stop.now) await signIn(app, store);
      });
      const loops = readers.map(async (v) => {
        while (!stop.now) {
          if ((await send(app, "GET", "/dashboard", v?.cookie ?? "")).status === 200) reads++;
        }
      });
      await new Promise((r) => setTimeout(r, 5000));
      stop.now = true;
      await Promise.all([...writers, ...loops]);
      const readsPerSec = reads / ((performance.now() - t1) / 1000);
      rows.push([
        wait,
        pct(latencies, 0.5).toFixed(2),
        pct(latencies, 0.99).toFixed(2),
        signinsPerSec.toFixed(0),
        readsPerSec.toFixed(0),
      ]);
      await store.close();
    }
    console.log(
      table(
        [
          "redis_wait_replicas",
          "sign-in p50 (ms)",
          "sign-in p99 (ms)",
          "sign-ins/s, 16 in flight",
          "page reads/s beside 4 sign-in loops",
        ],
        rows,
      ),
    );
  } finally {
    await Promise.all([primary, ...replicas].map((n) => n.dispose()));
  }
}

await main();
