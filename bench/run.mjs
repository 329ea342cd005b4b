/**
 * The whole benchmark in one command (from the repository root: `npm run bench`). Builds nothing:
 * it measures the dist/ that `npm run build` produced. Writes docs/BENCHMARKS.md and
 * docs/benchmarks.svg from this one run.
 *
 *   node bench/run.mjs [--warmup 1] [--duration 2] [--rounds 3] [--connections 10]
 *                      [--only hono,express/bare] [--memory-sessions 100000]
 *                      [--paired-windows 8] [--paired-duration 2] [--no-paired] [--pin]
 *                      [--alloc-requests 3000] [--no-alloc]
 *                      [--profile-seconds 5] [--no-profile] [--no-memory] [--out docs]
 *   node bench/run.mjs --paired-only [--only …] [--paired-windows 8] [--out docs]
 *   node bench/run.mjs --alloc-only [--only …] [--alloc-requests 3000] [--out docs]
 *   node bench/run.mjs --report-only [--out docs]
 *
 * A run measures the matrix (every cell × route, `--rounds` rounds), then the paired comparisons
 * (PAIRS in lib/matrix.mjs: both cells of a ratio or CPU target started at once, `--paired-windows`
 * alternating windows per side, see lib/paired.mjs), then the bytes allocated per request (every
 * memory-store cell × route under `--expose-gc` and 512 MB semi-spaces: a warm-up, then 3 windows
 * of `--alloc-requests` requests with no collection inside, see lib/alloc.mjs; `--no-alloc` skips
 * it), then memory and the profile. `--only` selects cells by id substring; a pair runs when both
 * its cells are selected. `--paired-only` measures the pairs alone and puts them into the results
 * already at `--out` (the matrix, allocation, memory and profile stay those of the run that
 * measured them), or renders a page with the pairs only if there are none yet; `--alloc-only` does
 * the same with the allocation figures (about 2–3 minutes for every memory-store cell).
 * `--pin` (with taskset and 2+ cores) runs the runner and redis-server on core 0 and
 * each server cell on core 1 while cells are loaded; off by default (see lib/pin.mjs).
 * `--report-only` measures nothing: it renders the page again from bench/results/last-run.json,
 * e.g. after the reasons for missed targets were written into bench/reasons.json (see report.mjs).
 * The defaults take about 32–35 minutes on a 2-core machine (84 routes × 3 rounds × about 4.5 s,
 * 17 pairs × about 40 s (the three Express CPU pairs three times as long), 2–3 minutes of allocation, then about a minute of memory rows and the
 * profile).
 */
import { execFile, execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { cpus, loadavg, totalmem } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import {
  ALLOC_CONNECTIONS,
  ALLOC_FLAGS,
  ALLOC_REPEATS,
  ALLOC_WARMUP,
  allocCells,
  measureAlloc,
} from "./lib/alloc.mjs";
import { CELLS, PAIRS } from "./lib/matrix.mjs";
import { measureCell } from "./lib/measure.mjs";
import { cellsOf, measurePair } from "./lib/paired.mjs";
import { pinCores, releaseCores } from "./lib/pin.mjs";
import { profileRoute } from "./lib/profile.mjs";
import { startRedis } from "./lib/redis.mjs";
import { renderMarkdown, renderSvg } from "./lib/report.mjs";

const benchDir = dirname(fileURLToPath(import.meta.url));
const root = dirname(benchDir);

const { values: flags } = parseArgs({
  options: {
    warmup: { type: "string", default: "1" },
    duration: { type: "string", default: "2" },
    rounds: { type: "string", default: "3" },
    connections: { type: "string", default: "10" },
    only: { type: "string" },
    "memory-sessions": { type: "string", default: "100000" },
    "profile-seconds": { type: "string", default: "5" },
    "no-profile": { type: "boolean", default: false },
    "no-memory": { type: "boolean", default: false },
    "paired-windows": { type: "string", default: "8" },
    "paired-duration": { type: "string", default: "2" },
    "no-paired": { type: "boolean", default: false },
    "paired-only": { type: "boolean", default: false },
    "alloc-requests": { type: "string", default: "3000" },
    "no-alloc": { type: "boolean", default: false },
    "alloc-only": { type: "boolean", default: false },
    pin: { type: "boolean", default: false },
    "report-only": { type: "boolean", default: false },
    out: { type: "string", default: "docs" },
    dist: { type: "string" },
  },
});
const options = {
  warmup: Number(flags.warmup),
  duration: Number(flags.duration),
  rounds: Number(flags.rounds),
  connections: Number(flags.connections),
};
const pairedOptions = {
  windows: Number(flags["paired-windows"]),
  duration: Number(flags["paired-duration"]),
};
for (const [name, value] of [
  ...Object.entries(options),
  ["paired-windows", pairedOptions.windows],
  ["paired-duration", pairedOptions.duration],
  ["alloc-requests", Number(flags["alloc-requests"])],
]) {
  if (!(Number.isFinite(value) && value > 0))
    throw new Error(`--${name} must be a positive number`);
}
for (const [a, b] of [
  ["paired-only", "no-paired"],
  ["alloc-only", "no-alloc"],
  ["alloc-only", "paired-only"],
]) {
  if (flags[a] && flags[b]) throw new Error(`--${a} and --${b} exclude each other`);
}

// Cells import coatcheck from here; `--dist` measures another build (a candidate change).
const dist = flags.dist ? resolve(flags.dist) : join(root, "dist");
if (flags.dist) process.env.BENCH_DIST = dist;

const log = (message) => process.stderr.write(`[bench] ${message}\n`);

// The page goes to `--out` (relative to the repository root, or absolute). The raw results of the
// default page live in bench/results; a run with another `--out` keeps its own beside its page, so
// a side run never replaces the results the committed page is drawn from.
const outDir = resolve(root, flags.out);
const resultsFile =
  outDir === join(root, "docs")
    ? join(benchDir, "results", "last-run.json")
    : join(outDir, "last-run.json");

if (flags["report-only"]) {
  const run = JSON.parse(await readFile(resultsFile, "utf8"));
  await writePage(run, 0);
  process.exit(0);
}

const started = Date.now();
const loadStart = loadavg()
  .map((v) => v.toFixed(2))
  .join(" ");

const filters = flags.only?.split(",").map((f) => f.trim().toLowerCase());
const selected = CELLS.filter((cell) => !filters || filters.some((f) => cell.id.includes(f)));
const skipped = {};
for (const cell of selected) {
  if (cell.unavailable) {
    skipped[cell.id] = cell.unavailable;
    continue;
  }
  const absent = cell.needs.filter((file) => !existsSync(join(dist, file)));
  if (absent.length > 0) skipped[cell.id] = `not built yet: ${absent.join(", ")} missing`;
  else if (!existsSync(join(benchDir, "cells", cell.file))) skipped[cell.id] = "no cell file yet";
}
const runnable = selected.filter((cell) => !skipped[cell.id]);

const runnableIds = new Set(runnable.map((cell) => cell.id));
const pairs =
  flags["no-paired"] || flags["alloc-only"]
    ? []
    : PAIRS.filter((pair) => cellsOf(pair).every((cell) => runnableIds.has(cell.id)));
const matrix = flags["paired-only"] || flags["alloc-only"] ? [] : runnable;
// Pin before Redis starts, so redis-server inherits the runner's core.
const pinning = flags.pin ? pinCores() : { pinned: false, note: "not pinned (the default)" };
log(pinning.note);
const needsRedis = [...matrix, ...pairs.flatMap(cellsOf)].some((cell) => cell.store === "redis");
const redis = needsRedis ? await startRedis() : null;
const samples = {};
const probes = {};
let paired = null;
try {
  for (let round = 0; round < (matrix.length > 0 ? options.rounds : 0); round++) {
    const order = round % 2 === 0 ? matrix : [...matrix].reverse();
    for (const cell of order) {
      log(`round ${round + 1}/${options.rounds}: ${cell.id}`);
      let result;
      try {
        result = await measureCell(cell, { ...options, redis, probes });
      } catch (error) {
        log(`${cell.id} failed: ${error.message}`);
        result = Object.fromEntries(
          cell.routes.map((route) => [route, failedSample(`cell failed: ${error.message}`)]),
        );
      }
      for (const [route, sample] of Object.entries(result)) {
        samples[cell.id] ??= {};
        samples[cell.id][route] ??= [];
        samples[cell.id][route].push(sample);
        if (sample.void) log(`  ${route}: VOID ${sample.void}`);
        else
          log(
            `  ${route}: ${Math.round(sample.rps)} req/s, ${sample.cpuUs.toFixed(1)} µs CPU/req${sample.redisCommands === null ? "" : `, ${sample.redisCommands.toFixed(2)} redis cmds/req, redis-server ${sample.redisCpuUs.toFixed(1)} µs CPU/req, ${sample.redisWrites.toFixed(2)} writes/req`}${sample.entries === null ? "" : `, ${sample.entries.toFixed(3)} records/req`}`,
          );
      }
    }
  }
  if (pairs.length > 0) paired = await measurePairs(pairs);
} finally {
  await redis?.stop();
  releaseCores();
}
const loadSec = (Date.now() - started) / 1000;
const pairedSec = paired?.meta.elapsedSec ?? 0;

if (flags["paired-only"]) {
  await mergeIntoLast("paired", paired, pairedSec);
  process.exit(0);
}

// Bytes allocated per request: after the load (it measures bytes, not time), one cell at a time.
const alloc = flags["no-alloc"] ? null : await measureAllocs(allocCells(runnable));
const allocSec = alloc?.meta.elapsedSec ?? 0;

if (flags["alloc-only"]) {
  await mergeIntoLast("alloc", alloc, allocSec);
  process.exit(0);
}

// Memory per session: one child per store, after the load (so it disturbs no timing), as many
// side by side as there are cores (they measure heap bytes and records, not time; each waits for
// its own sessions' expiry; a child whose sessions expired while it was still creating them voids
// its own figure).
let memory = [];
if (!flags["no-memory"]) {
  const stores = ["coatcheck", "express-session", "@fastify/session", "hono-sessions"].filter(
    (store) => store !== "coatcheck" || existsSync(join(dist, "index.js")),
  );
  const width = Math.max(1, cpus().length);
  log(`memory: ${stores.join(", ")} (one process each, ${width} at a time)`);
  const measureMemory = (store) =>
    new Promise((resolve) =>
      execFile(
        process.execPath,
        ["--expose-gc", join(benchDir, "memory.mjs"), store, flags["memory-sessions"]],
        { cwd: benchDir, encoding: "utf8", maxBuffer: 1 << 20 },
        (error, out) => {
          if (error) resolve({ store, error: error.message.split("\n")[0] });
          else resolve(JSON.parse(out.trim().split("\n").pop()));
        },
      ),
    );
  const queue = [...stores];
  const results = new Map();
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (queue.length > 0) {
        const store = queue.shift();
        results.set(store, await measureMemory(store));
      }
    }),
  );
  memory = stores.map((store) => results.get(store));
}

const memorySec = (Date.now() - started) / 1000 - loadSec - allocSec;
let profile = null;
const profiled = CELLS.find((cell) => cell.id === "hono/coatcheck-memory");
if (!flags["no-profile"] && !skipped[profiled.id]) {
  const seconds = Number(flags["profile-seconds"]);
  log(`profile: ${profiled.id} GET /read for ${seconds} s`);
  try {
    profile = {
      seconds,
      ...(await profileRoute(profiled, {
        path: "/read",
        seconds,
        connections: options.connections,
        root,
      })),
    };
  } catch (error) {
    profile = { error: error.message };
  }
}

const phasesSec = {
  load: Math.round(loadSec - pairedSec),
  paired: Math.round(pairedSec),
  alloc: Math.round(allocSec),
  memory: Math.round(memorySec),
  profile: Math.round((Date.now() - started) / 1000 - loadSec - allocSec - memorySec),
};
const run = { meta: await runMeta(phasesSec), samples, skipped, memory, profile, paired, alloc };

await mkdir(dirname(resultsFile), { recursive: true });
await writeFile(resultsFile, `${JSON.stringify(run, null, 2)}\n`);
await writePage(run);

/** Every pair in `pairs`, one after the other; the results with what the page says of the method. */
async function measurePairs(pairs) {
  const pairedStarted = Date.now();
  const results = {};
  for (const pair of pairs) {
    const windows = pairedOptions.windows * (pair.windowFactor ?? 1);
    log(`paired: ${pair.id} (${windows} × ${pairedOptions.duration} s per side)`);
    let result;
    try {
      result = await measurePair(pair, { ...options, ...pairedOptions, windows, redis });
    } catch (error) {
      result = { id: pair.id, windows: [], void: `pair failed: ${error.message}` };
    }
    results[pair.id] = result;
    const ratios = result.windows.map((w) => (w.a.rps / w.b.rps).toFixed(2));
    const cpu = result.windows.map((w) => (w.a.cpuUs / w.b.cpuUs).toFixed(2));
    log(`  req/s A÷B per window: ${ratios.join(" ")}`);
    log(`  CPU µs/req A÷B per window: ${cpu.join(" ")}`);
    if (result.void) log(`  VOID ${result.void}`);
  }
  return {
    meta: {
      date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
      git: gitDescription() + (flags.dist ? `; coatcheck from ${flags.dist}` : ""),
      windows: pairedOptions.windows,
      duration: pairedOptions.duration,
      warmup: options.warmup,
      connections: options.connections,
      pinning: pinning.note,
      elapsedSec: (Date.now() - pairedStarted) / 1000,
    },
    results,
  };
}

/**
 * `--paired-only`, `--alloc-only`: `part` of the results ("paired" or "alloc") into the results
 * already at `--out` (everything else stays that of the run that measured it), or a page of its
 * own if there are none yet; `seconds`: how long it measured.
 */
async function mergeIntoLast(part, value, seconds) {
  const run = existsSync(resultsFile)
    ? JSON.parse(await readFile(resultsFile, "utf8"))
    : {
        meta: await runMeta({
          load: 0,
          paired: 0,
          alloc: 0,
          memory: 0,
          profile: 0,
          [part]: Math.round(seconds),
        }),
        samples: {},
        skipped,
        memory: [],
        profile: null,
      };
  run[part] = value;
  await mkdir(dirname(resultsFile), { recursive: true });
  await writeFile(resultsFile, `${JSON.stringify(run, null, 2)}\n`);
  await writePage(run, seconds);
}

/**
 * Bytes allocated per request of every route of `cells` (lib/alloc.mjs), one cell at a time; the
 * results with what the page says of the method.
 */
async function measureAllocs(cells) {
  const allocStarted = Date.now();
  const requests = Number(flags["alloc-requests"]);
  const results = {};
  for (const cell of cells) {
    log(`alloc: ${cell.id} (${ALLOC_WARMUP} + ${ALLOC_REPEATS} × ${requests} requests per route)`);
    let result;
    try {
      result = await measureAlloc(cell, { requests });
    } catch (error) {
      log(`${cell.id} failed: ${error.message}`);
      const failed = { bytes: [], gcs: [], void: `cell failed: ${error.message}` };
      result = Object.fromEntries(cell.routes.map((route) => [route, failed]));
    }
    results[cell.id] = result;
    for (const [route, r] of Object.entries(result))
      log(
        `  ${route}: ${r.bytes.map((b) => (b / 1024).toFixed(2)).join(" ")} KB/req${r.void ? `, VOID ${r.void}` : ""}`,
      );
  }
  return {
    meta: {
      date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
      git: gitDescription() + (flags.dist ? `; coatcheck from ${flags.dist}` : ""),
      node: process.version,
      flags: ALLOC_FLAGS.join(" "),
      warmup: ALLOC_WARMUP,
      repeats: ALLOC_REPEATS,
      requests,
      connections: ALLOC_CONNECTIONS,
      elapsedSec: (Date.now() - allocStarted) / 1000,
    },
    results,
  };
}

/** What the page says of the run; `phasesSec`: seconds per phase (cells, paired, memory, profile). */
async function runMeta(phasesSec) {
  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
    command: commandLine(),
    cores: cpus().length,
    cpuModel: cpus()[0]?.model.trim() ?? "unknown",
    memGb: (totalmem() / 2 ** 30).toFixed(1),
    platform: `${process.platform} ${process.arch}`,
    node: process.version,
    loadStart,
    loadEnd: loadavg()
      .map((v) => v.toFixed(2))
      .join(" "),
    git: gitDescription() + (flags.dist ? `; coatcheck from ${flags.dist}` : ""),
    redisVersion: redis?.version ?? "not started",
    versions: await versions(),
    options,
    pinning: pinning.note,
    elapsedSec: (Date.now() - started) / 1000,
    phasesSec,
  };
}

/**
 * docs/BENCHMARKS.md and docs/benchmarks.svg from `run`, with bench/reasons.json if present;
 * `seconds`: how long this invocation measured, for the log.
 */
async function writePage(run, seconds = run.meta.elapsedSec) {
  await mkdir(outDir, { recursive: true });
  const reasonsFile = join(benchDir, "reasons.json");
  const reasons = existsSync(reasonsFile) ? JSON.parse(await readFile(reasonsFile, "utf8")) : {};
  // bench/postgres.mjs owns a section of the same file: keep it.
  const previous = await readFile(join(outDir, "BENCHMARKS.md"), "utf8").catch(() => "");
  const postgresSection = /<!-- postgres-bench:begin -->[\s\S]*<!-- postgres-bench:end -->/.exec(
    previous,
  );
  await writeFile(
    join(outDir, "BENCHMARKS.md"),
    renderMarkdown(run, reasons) + (postgresSection ? `\n${postgresSection[0]}\n` : ""),
  );
  await writeFile(join(outDir, "benchmarks.svg"), renderSvg(run));
  log(
    `wrote ${relative(root, join(outDir, "BENCHMARKS.md"))} and benchmarks.svg (measured for ${Math.round(seconds)} s)`,
  );
}

function failedSample(reason) {
  return {
    rps: Number.NaN,
    p50: Number.NaN,
    p99: Number.NaN,
    cpuUs: Number.NaN,
    entries: null,
    redisCommands: null,
    redisCpuUs: null,
    redisUsec: null,
    redisWrites: null,
    redisByCommand: null,
    roundTrips: null,
    void: reason,
  };
}

function commandLine() {
  const args = process.argv.slice(2);
  return args.length === 0 ? "npm run bench" : `npm run bench -- ${args.join(" ")}`;
}

function gitDescription() {
  try {
    const head = execFileSync("git", ["rev-parse", "--short", "HEAD"], {
      cwd: root,
      encoding: "utf8",
    });
    const dirty = execFileSync("git", ["status", "--porcelain", "--", "src"], {
      cwd: root,
      encoding: "utf8",
    });
    return `commit ${head.trim()}${dirty.trim() ? " with uncommitted changes in src/" : ""}`;
  } catch {
    return "unknown (not a git checkout)";
  }
}

async function versions() {
  const names = [
    "hono",
    "@hono/node-server",
    "express",
    "fastify",
    "express-session",
    "connect-redis",
    "csrf-sync",
    "@fastify/session",
    "@fastify/cookie",
    "@fastify/csrf-protection",
    "hono-sessions",
    "redis",
    "autocannon",
  ];
  const out = {};
  const own = JSON.parse(await readFile(join(root, "package.json"), "utf8"));
  out.coatcheck = own.version;
  for (const name of names) {
    try {
      const pkg = join(benchDir, "node_modules", name, "package.json");
      out[name] = JSON.parse(await readFile(pkg, "utf8")).version;
    } catch {
      out[name] = "missing";
    }
  }
  return out;
}
