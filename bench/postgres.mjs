/**
 * The PostgreSQL cells (from the repository root, after `npm run build` and `npm --prefix bench ci`):
 *
 *   node bench/postgres.mjs [--warmup 1] [--duration 5] [--rounds 2] [--connections 10]
 *
 * coatcheck on PostgreSQL (Hono, Express, Fastify) beside coatcheck on Redis and beside
 * express-session + connect-pg-simple, with statements (= round trips) per request. Works in a
 * database of its own on POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres),
 * dropped afterwards; starts its own redis-server. Writes its section of docs/BENCHMARKS.md
 * (between the `postgres-bench` markers; `npm run bench` keeps it) and bench/results/postgres.json.
 */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { cpus, loadavg } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import pg from "pg";
import { CELLS, FORM_ROUTES, POSTGRES_CELLS, ROUTES } from "./lib/matrix.mjs";
import { measureCell } from "./lib/measure.mjs";
import { startRedis } from "./lib/redis.mjs";
import { median } from "./lib/util.mjs";

const benchDir = dirname(fileURLToPath(import.meta.url));
const root = dirname(benchDir);
const { values: flags } = parseArgs({
  options: {
    warmup: { type: "string", default: "1" },
    duration: { type: "string", default: "5" },
    rounds: { type: "string", default: "2" },
    connections: { type: "string", default: "10" },
  },
});
const options = Object.fromEntries(Object.entries(flags).map(([k, v]) => [k, Number(v)]));
const log = (message) => process.stderr.write(`[bench:postgres] ${message}\n`);
const BEGIN = "<!-- postgres-bench:begin -->";
const END = "<!-- postgres-bench:end -->";

const base = process.env.POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const database = `coatcheck_bench_${process.pid}`;
const dbUrl = new URL(base);
dbUrl.pathname = `/${database}`;
const admin = new pg.Client({ connectionString: base });
await admin.connect();
await admin.query(`CREATE DATABASE "${database}"`);
const db = new pg.Pool({ connectionString: dbUrl.toString(), max: 2 });
const { migrate } = await import(pathToFileURL(join(root, "dist/stores/postgres.js")).href);
await migrate(db);
await db.query(await readFile(join(benchDir, "node_modules/connect-pg-simple/table.sql"), "utf8"));
const serverVersion = (await db.query("SHOW server_version")).rows[0].server_version;

// Only the routes this section shows (no form posts).
const redisCells = CELLS.filter(
  (c) => c.kind === "bare" || c.kind === "coatcheck-redis" || c.id === "express/incumbent-redis",
).map((c) => ({ ...c, routes: c.routes.filter((route) => !FORM_ROUTES.includes(route)) }));
const cells = [...POSTGRES_CELLS, ...redisCells];
const redis = await startRedis();
const samples = {};
const probes = {};
const started = Date.now();
const loadStart = loadavg()[0].toFixed(2);
try {
  for (let round = 0; round < options.rounds; round++) {
    const order = round % 2 === 0 ? cells : [...cells].reverse();
    for (const cell of order) {
      log(`round ${round + 1}/${options.rounds}: ${cell.id}`);
      if (cell.store === "postgres")
        await db.query('TRUNCATE coatcheck_sessions, coatcheck_sessions_locks, "session"');
      const result = await measureCell(cell, {
        ...options,
        redis,
        postgresUrl: dbUrl.toString(),
        probes,
      });
      for (const [route, sample] of Object.entries(result)) {
        samples[cell.id] ??= {};
        samples[cell.id][route] ??= [];
        samples[cell.id][route].push(sample);
        if (sample.void) log(`  ${route}: VOID ${sample.void}`);
        else log(`  ${route}: ${Math.round(sample.rps)} req/s`);
      }
    }
  }
} finally {
  await redis.stop();
  await db.end();
  await admin.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
  await admin.end();
}

const n = (v, d = 0) => (v === null || v === undefined || Number.isNaN(v) ? "–" : v.toFixed(d));
const int = (v) => (Number.isNaN(v) ? "–" : Math.round(v).toLocaleString("en-US"));

function summary(cellId, route) {
  const list = samples[cellId]?.[route] ?? [];
  if (list.length === 0) return null;
  const pick = (k) => list.map((s) => s[k]).filter((v) => v !== null && !Number.isNaN(v));
  const voids = list.filter((s) => s.void);
  return {
    rps: median(pick("rps")),
    min: Math.min(...pick("rps")),
    max: Math.max(...pick("rps")),
    p50: median(pick("p50")),
    p99: median(pick("p99")),
    cpu: median(pick("cpuUs")),
    statements: pick("pgStatements").length ? median(pick("pgStatements")) : null,
    redis: pick("redisCommands").length ? median(pick("redisCommands")) : null,
    roundTrips: list.find((s) => s.roundTrips)?.roundTrips?.roundTrips ?? null,
    entries: pick("entries").length ? median(pick("entries")) : null,
    void: voids.length ? voids[0].void : null,
  };
}

const rows = [
  "| framework | route | setup | req/s median (min–max) | × bare | p50 / p99 ms | CPU µs/req | store calls/req under load (round trips, sequential) | records created/req | check |",
  "|---|---|---|---|---|---|---|---|---|---|",
];
for (const framework of ["Hono", "Express", "Fastify"]) {
  const bare = summary(`${framework.toLowerCase()}/bare`, "untouched");
  for (const route of ["untouched", "read", "write", "visit"]) {
    for (const cell of cells.filter((c) => c.framework === framework && c.kind !== "bare")) {
      const s = summary(cell.id, route);
      if (s === null) continue;
      const calls =
        s.statements !== null
          ? `${n(s.statements, 2)} SQL statements (${n(s.roundTrips, 1)})`
          : s.redis !== null
            ? `${n(s.redis, 2)} Redis cmds (${n(s.roundTrips, 1)})`
            : "";
      rows.push(
        `| ${framework} | ${ROUTES[route].title} | ${cell.label} | ${int(s.rps)} (${int(s.min)}–${int(s.max)}) | ${bare ? n(s.rps / bare.rps, 2) : ""} | ${n(s.p50)} / ${n(s.p99)} | ${n(s.cpu, 1)} | ${calls} | ${s.entries === null ? "" : n(s.entries, 2)} | ${s.void ? `**VOID**: ${s.void}` : "ok"} |`,
      );
    }
  }
}

const when = new Date(started).toISOString().slice(0, 16).replace("T", " ");
const section = `${BEGIN}
## PostgreSQL

From \`node bench/postgres.mjs${process.argv.slice(2).length ? ` ${process.argv.slice(2).join(" ")}` : ""}\` on ${when} UTC: ${cpus().length} cores, load average ${loadStart} at start and ${loadavg()[0].toFixed(2)} at the end, PostgreSQL ${serverVersion} (the machine's shared server, fsync on; a database of the run's own, dropped afterwards), ${options.rounds} round(s) of ${options.duration} s with ${options.connections} connections per route, medians over rounds. The Redis and bare cells ran in the same run, so the columns compare within it; the figures are noisy on a shared machine.

${rows.join("\n")}

- **SQL statements/req**: \`query\` calls counted by a wrapping pool inside the server process ÷
  requests (each call is one statement and one round trip); in parentheses, the same over 10
  sequential requests. For Redis: \`INFO commandstats\` delta (commands inside scripts included),
  and MONITOR round trips in parentheses.
- coatcheck reads with one statement (the idle renewal is part of it), saves only the changed key
  with one more, and sends nothing for a request that never uses its session. express-session
  loads the session of every request that carries a cookie (untouched routes too) with a
  \`SELECT\`, then writes the whole session back (\`INSERT … ON CONFLICT DO UPDATE\`) when it
  changed or \`touch\`es it (\`UPDATE … SET expire\`) when it did not.
- The write route increments one session's counter from every connection at once, so on
  PostgreSQL each save waits for the previous one's row lock and WAL flush: it measures the
  worst case of one busy session, not many sessions writing side by side.
- Reproduce: \`npm run build && npm --prefix bench ci && node bench/postgres.mjs\` (needs
  PostgreSQL on POSTGRES_URL, user with CREATE DATABASE, and \`redis-server\` on the PATH).
${END}`;

const docPath = join(root, "docs", "BENCHMARKS.md");
const doc = await readFile(docPath, "utf8");
const at = doc.indexOf(BEGIN);
const next =
  at === -1
    ? `${doc.trimEnd()}\n\n${section}\n`
    : `${doc.slice(0, at)}${section}${doc.slice(doc.indexOf(END) + END.length)}`;
await writeFile(docPath, next);
await mkdir(join(benchDir, "results"), { recursive: true });
await writeFile(
  join(benchDir, "results", "postgres.json"),
  `${JSON.stringify(samples, null, 2)}\n`,
);
log(
  `wrote the PostgreSQL section of docs/BENCHMARKS.md in ${Math.round((Date.now() - started) / 1000)} s`,
);
