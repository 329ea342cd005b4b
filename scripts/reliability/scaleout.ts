import { cpus, loadavg } from "node:os";
import { createTestDatabase } from "../../test/support/postgres.js";
import { startRedisServer } from "../../test/support/redis.js";
import type { AppProcess } from "./lib.js";
import { option, table } from "./lib.js";
import {
  logoutEverywhere,
  parallelKeys,
  parallelLockedCounter,
  roundRobinCounters,
  startInstances,
} from "./scaleout-checks.js";

/**
 * Scale-out: `npm run reliability:scaleout [-- --seconds=60 --sessions=30] [--postgres]`. Three app
 * processes on their own loopback ports share one redis-server that this script starts (free port,
 * temporary folder), or with `--postgres` one database it creates on the PostgreSQL of
 * POSTGRES_URL (default 127.0.0.1:5432) and drops afterwards. Load is spread round-robin by the client, with session continuity checked exactly; then
 * a logout through one instance must be refused by the other two at once. Prints a Markdown report
 * and exits 1 when a check fails.
 */

const seconds = option("seconds", 60);
const sessions = option("sessions", 30);
const INSTANCES = 3;

async function main() {
  const startedAt = new Date();
  const load0 = loadavg()[0]?.toFixed(2);
  const postgres = process.argv.includes("--postgres");
  const backend = postgres ? await createTestDatabase("scaleout") : await startRedisServer();
  let apps: AppProcess[] = [];
  try {
    apps = await startInstances(
      postgres ? { POSTGRES_URL: backend.url } : backend.url,
      INSTANCES,
      "scaleout:",
    );
    const bases = apps.map((a) => a.base);
    const counters = await roundRobinCounters(bases, sessions, Number.MAX_SAFE_INTEGER, seconds);
    const keys = await parallelKeys(bases, 300);
    const locked = await parallelLockedCounter(bases, 60);
    const logout = await logoutEverywhere(bases);
    const crashes = apps.reduce((n, a) => n + a.exits.length, 0);
    const unhandled = apps.reduce((n, a) => n + a.unhandled.length, 0);

    console.log(`# Scale-out (${startedAt.toISOString()})`);
    console.log(
      `\nMachine: ${cpus().length} cores, load average ${load0} at start; ${INSTANCES} Hono processes, one ${postgres ? "PostgreSQL database" : "Redis"}.\n`,
    );
    console.log(
      table(
        ["check", "result"],
        [
          [
            `round-robin counters: ${counters.sessions} sessions in parallel, each serialised, ${counters.seconds.toFixed(1)} s`,
            `${counters.requests} requests (${(counters.requests / counters.seconds).toFixed(0)}/s), ${counters.ok} × 200, other ${JSON.stringify(counters.failed)}`,
          ],
          ["requests per instance", counters.perInstance.join(" / ")],
          ["sessions whose counter ≠ its 200s, read on every instance (must be 0)", counters.wrong],
          [
            `${keys.requests} parallel per-key writes to one session over ${INSTANCES} instances`,
            `${keys.failed} failed, ${keys.lost} lost`,
          ],
          [
            `${locked.requests} parallel locked increments over ${INSTANCES} instances`,
            `${locked.failed} failed, final counter ${locked.counter}, each count once: ${locked.distinct}`,
          ],
          [
            "logout on instance 1, then at once on instances 2 and 3",
            `whoami ${logout.whoamiAfter.join(", ")}; writes ${logout.writesAfter.join(", ")}; session back: ${logout.resurrected}`,
          ],
        ],
      ),
    );
    console.log(`\nCrashes: ${crashes}. Unhandled rejections: ${unhandled}.`);
    const failures = [
      Object.keys(counters.failed).length > 0 && "round-robin requests failed",
      counters.wrong > 0 && "session continuity broken",
      keys.failed + keys.lost > 0 && "per-key writes lost",
      (locked.failed > 0 || locked.counter !== locked.requests || !locked.distinct) &&
        "locked counter wrong",
      (!logout.signedInEverywhere ||
        logout.logoutStatus !== 200 ||
        logout.whoamiAfter.some((s) => s !== 401) ||
        logout.writesAfter.some((s) => s < 400 || s >= 500) ||
        logout.resurrected) &&
        "logout not honoured everywhere",
      crashes + unhandled > 0 && "crash or unhandled rejection",
    ].filter(Boolean);
    console.log(failures.length ? `\nFAILED: ${failures.join("; ")}` : "\nAll checks passed.");
    process.exitCode = failures.length ? 1 : 0;
  } finally {
    await Promise.all(apps.map((a) => a.stop()));
    await ("drop" in backend ? backend.drop() : backend.dispose());
  }
}

await main();
