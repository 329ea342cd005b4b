/**
 * docs/BENCHMARKS.md and docs/benchmarks.svg, both from one run's results: medians over rounds,
 * min–max, ratios to the same framework's bare route, the targets and whether they were met. The
 * reason for a missed target cannot be measured: it comes from bench/reasons.json (target id →
 * text), and a missed target without one shows {@link REASON_PLACEHOLDER}.
 */
import { bareRouteOf, CELLS, FRAMEWORKS, PAIRS, ROUTES } from "./matrix.mjs";
import { summarisePair } from "./paired.mjs";
import { isRunnerCommand } from "./redis.mjs";
import { median } from "./util.mjs";

const KINDS = [
  "bare",
  "coatcheck-memory",
  "coatcheck-nocsrf",
  "coatcheck-redis",
  "incumbent-memory",
  "incumbent-redis",
];
const COLORS = {
  bare: "#9e9e9e",
  "coatcheck-memory": "#1f5f8b",
  "coatcheck-nocsrf": "#8fb8d8",
  "coatcheck-redis": "#6fa8dc",
  "incumbent-memory": "#c0601a",
  "incumbent-redis": "#f0a868",
};

/**
 * A sample whose Redis command counts leave out the runner's own commands: results written before
 * `commandStats` knew Redis 7's `config|resetstat` counted the runner's reset as the app's.
 */
function withoutRunnerCommands(sample) {
  const by = sample.redisByCommand;
  if (!by) return sample;
  const kept = Object.entries(by).filter(([name]) => !isRunnerCommand(name));
  if (kept.length === Object.keys(by).length) return sample;
  return {
    ...sample,
    redisByCommand: Object.fromEntries(kept),
    redisCommands: kept.reduce((sum, [, perRequest]) => sum + perRequest, 0),
  };
}

/** Median and spread of one cell × route over the rounds, or null when never measured. */
export function summarise(samples, cellId, route) {
  const list = samples[cellId]?.[route]?.map(withoutRunnerCommands);
  if (!list || list.length === 0) return null;
  const pick = (key) => list.map((s) => s[key]).filter((v) => v !== null && !Number.isNaN(v));
  const rps = pick("rps");
  const voids = list.filter((s) => s.void !== null);
  const firstWith = (key) => list.find((s) => s[key] !== null)?.[key] ?? null;
  const nullable = (key) => (pick(key).length > 0 ? median(pick(key)) : null);
  return {
    rounds: list.length,
    rps: median(rps),
    rpsMin: Math.min(...rps),
    rpsMax: Math.max(...rps),
    p50: median(pick("p50")),
    p99: median(pick("p99")),
    cpuUs: median(pick("cpuUs")),
    entries: nullable("entries"),
    redisCommands: nullable("redisCommands"),
    redisCpuUs: nullable("redisCpuUs"),
    redisUsec: nullable("redisUsec"),
    redisWrites: nullable("redisWrites"),
    redisByCommand: firstWith("redisByCommand"),
    roundTrips: firstWith("roundTrips"),
    void: voids.length > 0 ? `${voids.length}/${list.length} rounds void: ${voids[0].void}` : null,
  };
}

/** The bare figure a cell × route is compared with. */
function bareOf(samples, framework, route) {
  return summarise(samples, `${framework.toLowerCase()}/bare`, bareRouteOf(route));
}

const fmt = {
  int: (v) => (v === null || Number.isNaN(v) ? "–" : Math.round(v).toLocaleString("en-US")),
  num: (v, d = 1) => (v === null || v === undefined || Number.isNaN(v) ? "–" : v.toFixed(d)),
  k: (v) => `${(v / 1000).toFixed(1)}k`,
};

function cellTable(run, framework) {
  const rows = [
    "| route | setup | req/s median (min–max) | × bare | p50 / p99 ms | CPU µs/req (Δ bare) | Redis cmds/req (round trips) | records created/req | check |",
    "|---|---|---|---|---|---|---|---|---|",
  ];
  for (const route of Object.keys(ROUTES)) {
    for (const cell of CELLS.filter((c) => c.framework === framework)) {
      const measuredRoute = cell.kind === "bare" ? bareRouteOf(route) : route;
      if (cell.kind === "bare" && measuredRoute !== route) continue;
      const skipped = run.skipped[cell.id];
      const missing = cell.missing[route];
      if ((skipped && cell.routes.includes(route)) || missing) {
        rows.push(
          `| ${ROUTES[route].title} | ${cell.label} | n/a | | | | | | ${skipped ?? missing} |`,
        );
        continue;
      }
      if (skipped) continue;
      const s = summarise(run.samples, cell.id, route);
      if (s === null) continue;
      const bare = bareOf(run.samples, framework, route);
      const ratio = bare && cell.kind !== "bare" ? fmt.num(s.rps / bare.rps, 2) : "";
      const dCpu = bare && cell.kind !== "bare" ? ` (${signed(s.cpuUs - bare.cpuUs)})` : "";
      const redis =
        s.redisCommands === null
          ? ""
          : `${fmt.num(s.redisCommands, 2)} (${s.roundTrips ? fmt.num(s.roundTrips.roundTrips, 1) : "–"})`;
      const check = s.void ? `**VOID**: ${s.void}` : "ok";
      rows.push(
        `| ${ROUTES[route].title} | ${cell.label} | ${fmt.int(s.rps)} (${fmt.int(s.rpsMin)}–${fmt.int(s.rpsMax)}) | ${ratio} | ${fmt.num(s.p50, 0)} / ${fmt.num(s.p99, 0)} | ${fmt.num(s.cpuUs)}${dCpu} | ${redis} | ${s.entries === null ? "" : fmt.num(s.entries, 2)} | ${check} |`,
      );
    }
  }
  return rows.join("\n");
}

/** Said where a ratio target had to be judged on the matrix. */
const NO_PAIRED = "matrix medians: no paired comparison in this run";

const range = (s, d = 2) => `${fmt.num(s.median, d)} (${fmt.num(s.min, d)}–${fmt.num(s.max, d)})`;

/** A paired result as the target table shows it. */
function pairedFigure(s) {
  return `paired: ${fmt.num(s.rpsRatio.median, 2)}× req/s (${fmt.num(s.rpsRatio.min, 2)}–${fmt.num(s.rpsRatio.max, 2)} over ${s.windows} window pairs); CPU µs/req ${fmt.num(s.a.cpuUs.median)} vs ${fmt.num(s.b.cpuUs.median)} = ${fmt.num(s.cpuRatio.median, 2)}×`;
}

/** A paired CPU difference as the target table shows it. */
function pairedDiffFigure(s) {
  const d = s.cpuDiff;
  return `paired: ${signed(d.median)} µs CPU/req (${signed(d.min)} to ${signed(d.max)} over ${s.windows} window pairs; ${fmt.num(s.a.cpuUs.median)} vs ${fmt.num(s.b.cpuUs.median)}); ${fmt.num(s.rpsRatio.median, 2)}× bare req/s`;
}

/** The paired comparisons: per-window ratios of the two cells of each pair. */
function pairedSection(run) {
  const p = run.paired;
  if (!p) return "Not run (`--no-paired`, or results from before paired comparisons existed).";
  const m = p.meta;
  const label = (side) => {
    const cell = CELLS.find((c) => c.id === side.cell);
    return `${cell?.label ?? side.cell}, ${ROUTES[side.route].title}`;
  };
  const rows = [
    "| pair | A | B | window pairs | req/s A ÷ B: median (min–max) | CPU µs/req A ÷ B: median (min–max) | CPU µs/req A − B: median (min to max) | req/s A / B (medians) | CPU µs/req A / B (medians) | redis-server CPU µs/req A / B | target | check |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const pair of PAIRS) {
    const result = p.results[pair.id];
    if (!result) continue;
    const s = summarisePair(result);
    const target = pair.target ? `\`${pair.target}\`` : "extra, not a target";
    const check = s?.void ? `**VOID**: ${s.void}` : "ok";
    if (!s?.rpsRatio) {
      rows.push(
        `| ${pair.framework}: ${pair.title} | ${label(pair.a)} | ${label(pair.b)} | 0 | | | | | | | ${target} | ${check} |`,
      );
      continue;
    }
    const redis = s.a.redisCpuUs
      ? `${fmt.num(s.a.redisCpuUs.median)} / ${fmt.num(s.b.redisCpuUs.median)}`
      : "";
    rows.push(
      `| ${pair.framework}: ${pair.title} | ${label(pair.a)} | ${label(pair.b)} | ${s.windows} | ${range(s.rpsRatio)} | ${range(s.cpuRatio)} | ${signed(s.cpuDiff.median)} (${signed(s.cpuDiff.min)} to ${signed(s.cpuDiff.max)}) | ${fmt.int(s.a.rps.median)} / ${fmt.int(s.b.rps.median)} | ${fmt.num(s.a.cpuUs.median)} / ${fmt.num(s.b.cpuUs.median)} | ${redis} | ${target} | ${check} |`,
    );
  }
  return `Measured ${m.date} (${m.git}), ${Math.round(m.elapsedSec)} s: for each pair both cells run at once, each checked as in the matrix (the form posts succeed with the token and, with CSRF on, are refused without it; the post whose handler reads the session is refused without the session) and warmed (0.5 s each, then ${m.warmup} s each twice, alternating); then ${m.windows} windows of ${m.duration} s per cell (three times as many for the Express pairs of the CPU targets; the table gives each pair's count) with ${m.connections} connections, alternating A B B A A B B A…, so that drift on the machine falls on both cells alike. Window *i* of A and window *i* of B are adjacent in time; each such pair gives one ratio and one difference, and the table shows the median of each with its min–max. CPU µs/req is the server process's own CPU (\`process.cpuUsage()\`) over the window ÷ requests; a CPU ratio above 1 means A costs more per request. Pinning: ${m.pinning}.

${rows.join("\n")}`;
}

const signed = (v) => (Number.isNaN(v) ? "–" : `${v >= 0 ? "+" : ""}${v.toFixed(1)}`);

/** The setups the allocation table has a column for (the memory-store cells, lib/alloc.mjs). */
const ALLOC_COLUMNS = [
  ["bare", "bare"],
  ["coatcheck-memory", "coatcheck"],
  ["coatcheck-nocsrf", "coatcheck, CSRF off"],
  ["incumbent-memory", "incumbent"],
];

/** KB (1,024 bytes) per request of one cell × route over its windows: median, min–max. */
function allocFigure(run, cellId, route) {
  const result = run.alloc?.results[cellId]?.[route];
  if (!result) return null;
  const kb = result.bytes.map((b) => b / 1024).filter((v) => !Number.isNaN(v));
  if (kb.length === 0) return { median: Number.NaN, void: result.void };
  return { median: median(kb), min: Math.min(...kb), max: Math.max(...kb), void: result.void };
}

/** Bytes allocated per request: route × setup, with Δ to the same framework's bare route. */
function allocSection(run) {
  const a = run.alloc;
  if (!a) return "Not run (`--no-alloc`, or results from before allocation was measured).";
  const m = a.meta;
  const rows = [
    `| framework | route | ${ALLOC_COLUMNS.map(([kind, title]) => `${title}: KB/req (min–max)${kind === "bare" ? "" : ", Δ bare"}`).join(" | ")} |`,
    `|---|---|${ALLOC_COLUMNS.map(() => "---").join("|")}|`,
  ];
  const notes = new Set();
  for (const framework of FRAMEWORKS) {
    const f = framework.toLowerCase();
    for (const route of Object.keys(ROUTES)) {
      const bare = allocFigure(run, `${f}/bare`, bareRouteOf(route));
      const cols = ALLOC_COLUMNS.map(([kind]) => {
        const cell = CELLS.find((c) => c.framework === framework && c.kind === kind);
        const s = allocFigure(run, cell.id, route);
        if (!s) return cell.missing[route] && a.results[cell.id] ? "n/a" : "";
        if (s.void) notes.add(`${cell.id} ${ROUTES[route].title}: ${s.void}`);
        if (Number.isNaN(s.median)) return "**VOID**";
        const delta =
          kind !== "bare" && bare && !Number.isNaN(bare.median)
            ? `, ${signed(s.median - bare.median)}`
            : "";
        if (s.void) return "**VOID**";
        return `${range(s, 1)}${delta}`;
      });
      if (cols.every((col) => col === "" || col === "n/a")) continue;
      rows.push(`| ${framework} | ${ROUTES[route].title} | ${cols.join(" | ")} |`);
    }
  }
  const incumbents = FRAMEWORKS.map(
    (framework) =>
      CELLS.find((c) => c.framework === framework && c.kind === "incumbent-memory").label,
  ).join(", ");
  const voids = [...notes].map((note) => `- **VOID** ${note}`).join("\n");
  return `Measured ${m.date} (${m.git}), ${Math.round(m.elapsedSec)} s. Unlike the timings, these figures hardly move with the machine's load: they change when code changes. Each memory-store cell runs in a process of its own started with \`node ${m.flags}\` (semi-spaces that large hold every byte a window allocates, so nothing is collected inside it). Per route: the route's checks as in the matrix, ${fmt.int(m.warmup)} requests of warm-up, then ${m.repeats} windows of: \`gc()\` in the cell, \`v8.getHeapStatistics().used_heap_size\`, ${fmt.int(m.requests)} requests over ${m.connections} keep-alive connections, \`used_heap_size\` again (nothing collected first); after the windows, the matrix's checks that the session survived and the counter moved. (After − before) ÷ requests is one window's figure; the table gives the median of the windows and their min–max, in KB of 1,024 bytes. It counts the JS heap only (not the contents of Buffers, which live outside it), and what a request leaves behind (a stored session) as well as its garbage. A collection inside a window (counted with \`v8.GCProfiler\` in the cell), a failed check, an error or a wrong body marks the figure **VOID**. Δ bare: minus the same framework's bare route (GET routes: bare \`/untouched\`; the form posts: the bare post to the same path). Incumbents: ${incumbents}. Measure them again alone, into this page's results (after \`npm run build\`): \`node bench/run.mjs --alloc-only\`.

${rows.join("\n")}${voids ? `\n\n${voids}` : ""}`;
}

/**
 * The targets, each with a stable id (the key of its reason in bench/reasons.json), the figure it
 * is judged on and its verdict: "met", "missed", "void" (a figure it needs failed its check) or
 * "–" (not measured, or not applicable).
 */
export function targetRows(run) {
  const rows = [];
  const get = (framework, kind, route) =>
    summarise(run.samples, `${framework.toLowerCase()}/${kind}`, route);
  const judge = (ok, ...figures) => (figures.some((f) => f?.void) ? "void" : ok ? "met" : "missed");
  const add = (id, target, measured, verdict, hint = "") =>
    rows.push({ id, target, measured, verdict, hint });
  const notMeasured = (id, target, why = "not measured") => add(id, target, why, "–");
  const pairedOf = (pairId) => summarisePair(run.paired?.results?.[pairId]);
  /**
   * A target judged on its paired comparison: `figure(s)` is what the table shows, `ok(s)` the
   * verdict, `need` the figure without which no window counts. Without a paired result (an older
   * run, `--no-paired`), `fallback` judges it on the matrix medians.
   */
  const onPair = (id, target, pairId, fallback, { need, figure, ok, hint = "" }) => {
    const s = pairedOf(pairId);
    if (!s) return fallback();
    if (!s[need]) return add(id, target, `paired: no window measured (${s.void})`, "void");
    add(id, target, figure(s), s.void ? "void" : ok(s) ? "met" : "missed", hint);
  };
  /** A ratio target: the median of the per-window req/s ratios must reach `factor`. */
  const pairedRatio = (id, target, pairId, factor, fallback) =>
    onPair(id, target, pairId, fallback, {
      need: "rpsRatio",
      figure: pairedFigure,
      ok: (s) => s.rpsRatio.median >= factor,
    });
  /**
   * A CPU target: the median of the per-window differences of server CPU µs/req (A − B) must stay
   * within `limit`, and `alsoOk` must hold; `note` follows the figure, `hint` goes beside the reason.
   */
  const pairedDiff = (id, target, pairId, limit, fallback, options = {}) => {
    const { alsoOk = true, note = "", hint = "" } = options;
    onPair(id, target, pairId, fallback, {
      need: "cpuDiff",
      figure: (s) => `${pairedDiffFigure(s)}${note}`,
      ok: (s) => s.cpuDiff.median <= limit && alsoOk,
      hint,
    });
  };
  /** A req/s ratio target: `s` must reach `factor` × `peer`. */
  const ratio = (id, target, s, peer, factor, note = "") => {
    if (!s || !peer) return notMeasured(id, target);
    const x = s.rps / peer.rps;
    const measured = `${fmt.int(s.rps)} vs ${fmt.int(peer.rps)} = ${x.toFixed(2)}×${note}`;
    add(id, target, measured, judge(x >= factor, s, peer));
  };

  for (const framework of FRAMEWORKS) {
    const bare = bareOf(run.samples, framework, "untouched");
    for (const [kind, label] of [
      ["coatcheck-memory", "memory"],
      ["coatcheck-redis", "Redis"],
    ]) {
      const id = `untouched/${framework.toLowerCase()}/${label.toLowerCase()}`;
      const target = `untouched route: ≤ +2 µs CPU, no store call (${framework}, ${label})`;
      const s = get(framework, kind, "untouched");
      const calls = s?.redisCommands ?? 0;
      const commands =
        !s || s.redisCommands === null ? "" : `, ${fmt.num(calls, 2)} Redis cmds/req`;
      const matrix = () => {
        if (!s || !bare) return notMeasured(id, target);
        const d = s.cpuUs - bare.cpuUs;
        add(id, target, `${signed(d)} µs${commands}`, judge(d <= 2 && calls === 0, s, bare));
      };
      const pairId = `${framework.toLowerCase()}/untouched-${label.toLowerCase()}`;
      pairedDiff(id, target, pairId, 2, matrix, { alsoOk: calls === 0, note: commands });
    }
  }

  const p = run.profile && !run.profile.error ? run.profile : null;
  for (const [framework, limit] of [
    ["Hono", 5],
    ["Fastify", 5],
    ["Express", 15],
  ]) {
    const id = `memory-read/${framework.toLowerCase()}`;
    const target = `memory read: ≤ +${limit} µs CPU (${framework})`;
    const s = get(framework, "coatcheck-memory", "read");
    const bare = bareOf(run.samples, framework, "read");
    const hint =
      framework === "Hono" && p
        ? `(Profile of this route: coatcheck's own functions ≈ ${fmt.num(p.areas.coatcheck / p.served, 1)} µs of ${fmt.num((p.totalMicros - p.areas.idle) / p.served, 1)} µs busy per request.)`
        : "";
    const matrix = () => {
      if (!s || !bare) return notMeasured(id, target);
      const d = s.cpuUs - bare.cpuUs;
      add(
        id,
        target,
        `${signed(d)} µs (${fmt.num(s.rps / bare.rps, 2)}× bare req/s)`,
        judge(d <= limit, s, bare),
        hint,
      );
    };
    pairedDiff(id, target, `${framework.toLowerCase()}/memory-read`, limit, matrix, { hint });
  }

  for (const [framework, factor] of [
    ["Hono", null],
    ["Fastify", 2],
    ["Express", 1.5],
  ]) {
    const id = `redis-read-vs-incumbent/${framework.toLowerCase()}`;
    if (factor === null) {
      notMeasured(
        id,
        `Redis read req/s vs the incumbent (${framework})`,
        "not applicable: hono-sessions has no Redis store",
      );
      continue;
    }
    const target = `Redis read: ≥ ${factor}× the incumbent's req/s (${framework})`;
    pairedRatio(id, target, `${framework.toLowerCase()}/redis-read`, factor, () =>
      ratio(
        id,
        target,
        get(framework, "coatcheck-redis", "read"),
        get(framework, "incumbent-redis", "read"),
        factor,
        ` (${NO_PAIRED})`,
      ),
    );
  }

  for (const [route, limit, what] of [
    ["read", 7, "read"],
    ["write", 11, "read + write back (counter)"],
  ]) {
    for (const framework of FRAMEWORKS) {
      const id = `redis-cpu-${route}/${framework.toLowerCase()}`;
      const target = `Redis server CPU ≤ ${limit} µs per ${what} (${framework})`;
      const s = get(framework, "coatcheck-redis", route);
      if (!s || s.redisCpuUs === null) {
        notMeasured(id, target);
        continue;
      }
      const peers = (framework === "Hono" ? ["Express", "Fastify"] : [framework])
        .map((f) => [f, get(f, "incumbent-redis", route)])
        .filter(([, peer]) => peer && peer.redisCpuUs !== null)
        .map(([f, peer]) => `connect-redis (${f}) ${fmt.num(peer.redisCpuUs, 1)}`);
      add(
        id,
        target,
        `${fmt.num(s.redisCpuUs, 1)} µs (command time ${fmt.num(s.redisUsec, 1)} µs)${peers.length > 0 ? `; ${peers.join(", ")}` : ""}`,
        judge(s.redisCpuUs <= limit, s),
      );
    }
  }

  for (const framework of FRAMEWORKS) {
    const id = `redis-read-round-trip/${framework.toLowerCase()}`;
    const target = `Redis read: 1 round trip (${framework})`;
    const s = get(framework, "coatcheck-redis", "read");
    if (!s) {
      notMeasured(id, target);
      continue;
    }
    const rt = s.roundTrips?.roundTrips ?? Number.NaN;
    add(
      id,
      target,
      `${fmt.num(rt, 1)} round trips, ${fmt.num(s.redisCommands, 2)} commands incl. inside scripts`,
      judge(rt === 1, s),
    );
  }

  for (const framework of FRAMEWORKS) {
    const id = `idle-read-writes/${framework.toLowerCase()}`;
    const target = `inactivity timeout: reads renew it without writing (≤ 0.01 Redis writes per read, ${framework})`;
    const s = get(framework, "coatcheck-redis-idle", "read");
    if (!s || s.redisWrites === null) {
      notMeasured(id, target);
      continue;
    }
    const peer = get(framework, "incumbent-redis-idle", "read");
    add(
      id,
      target,
      `${fmt.num(s.redisWrites, 3)} writes/read${peer && peer.redisWrites !== null ? ` (incumbent: ${fmt.num(peer.redisWrites, 2)})` : ""}`,
      judge(s.redisWrites <= 0.01, s),
    );
  }

  for (const framework of FRAMEWORKS) {
    for (const [kind, label] of [
      ["coatcheck-memory", "memory"],
      ["coatcheck-redis", "Redis"],
    ]) {
      const id = `visit-no-record/${framework.toLowerCase()}/${label.toLowerCase()}`;
      const target = `new visitor writes nothing: 0 records (${framework}, ${label})`;
      const s = get(framework, kind, "visit");
      if (!s) {
        notMeasured(id, target);
        continue;
      }
      add(id, target, `${fmt.num(s.entries, 3)} records/req`, judge(s.entries === 0, s));
    }
  }

  for (const framework of FRAMEWORKS) {
    const f = framework.toLowerCase();
    const id = `csrf-form/${f}`;
    const target = `CSRF-checked form post: ≥ 0.8× the same post unchecked (${framework})`;
    pairedRatio(id, target, `${f}/csrf-form`, 0.8, () =>
      ratio(
        id,
        target,
        get(framework, "coatcheck-memory", "form"),
        get(framework, "coatcheck-nocsrf", "form"),
        0.8,
        ` (memory store; ${NO_PAIRED})`,
      ),
    );
    // Beside the target, not instead of it: the same comparison when the handler reads the
    // session too, so the unchecked post also opens its session.
    const extra = pairedOf(`${f}/csrf-form-session`);
    if (extra?.rpsRatio)
      add(
        `csrf-form-session/${f}`,
        `extra row, not a target: the same comparison when the handler reads the session (${framework})`,
        pairedFigure(extra),
        extra.void ? "void" : `extra: ${extra.rpsRatio.median >= 0.8 ? "≥" : "<"} 0.8×`,
      );
  }

  const found = run.memory.find((m) => m.store === "coatcheck");
  const mem = found && { ...found, void: memoryVoid(found) };
  const memOk = mem && !mem.error;
  add(
    "memory-bytes",
    "memory store: ≤ 300 bytes per small session",
    memOk ? `${fmt.int(mem.bytesPerSession)} bytes` : mem ? `error: ${mem.error}` : "not measured",
    memOk ? judge(mem.bytesPerSession <= 300, mem) : "–",
  );
  add(
    "memory-expiry",
    "memory store: expired sessions given back",
    memOk
      ? `${fmt.int(mem.afterExpiry.recordsLeft)} of ${fmt.int(mem.stored)} left after expiry + ${fmt.int(mem.afterExpiry.traffic)} requests`
      : "not measured",
    memOk ? judge(mem.afterExpiry.recordsLeft === 0, mem) : "–",
  );
  return rows;
}

/** The marker a missed target carries until its reason is written into bench/reasons.json. */
export const REASON_PLACEHOLDER = "⚠ **REASON TO BE FILLED IN**";

function targets(run, reasons) {
  const rows = targetRows(run).map((row) => {
    let reason = "";
    if (row.verdict === "missed")
      reason = reasons[row.id] ?? `${REASON_PLACEHOLDER} (bench/reasons.json: \`"${row.id}"\`)`;
    else if (row.verdict === "void") reason = "a figure it needs failed its check (see the tables)";
    if (row.hint && row.verdict === "missed") reason += ` ${row.hint}`;
    const verdict = row.verdict === "missed" ? "**missed**" : row.verdict;
    return `| ${row.target} | ${row.measured} | ${verdict} | ${reason} |`;
  });
  const spreads = FRAMEWORKS.map((framework) => {
    const list = run.samples[`${framework.toLowerCase()}/bare`]?.untouched ?? [];
    const cpu = list.map((x) => x.cpuUs).filter((v) => !Number.isNaN(v));
    return cpu.length > 1
      ? `${framework} ${(Math.max(...cpu) - Math.min(...cpu)).toFixed(1)} µs`
      : `${framework} –`;
  });
  const noise = `\n\nResolution: the same bare route's CPU µs/req differed between rounds by ${spreads.join(", ")}; differences smaller than that are within this run's noise.`;
  const header = ["| target | measured | verdict | reason for a miss |", "|---|---|---|---|"];
  return [...header, ...rows].join("\n") + noise;
}

/** Redis's side of every Redis cell: commands, server CPU, command time and writes per request. */
function redisTable(run) {
  const rows = [
    "| framework | setup | route | req/s | commands/req (round trips) | redis-server CPU µs/req | command time µs/req | writes/req | commands per request, by name |",
    "|---|---|---|---|---|---|---|---|---|",
  ];
  for (const cell of CELLS.filter((c) => c.store === "redis")) {
    if (run.skipped[cell.id]) {
      rows.push(`| ${cell.framework} | ${cell.label} | | n/a | | | | | ${run.skipped[cell.id]} |`);
      continue;
    }
    for (const route of cell.routes) {
      const s = summarise(run.samples, cell.id, route);
      if (!s) continue;
      const list = Object.entries(s.redisByCommand ?? {})
        .filter(([, v]) => v >= 0.005)
        .sort((a, b) => b[1] - a[1])
        .map(([name, v]) => `${name} ${v.toFixed(2)}`)
        .join(", ");
      const rt = s.roundTrips ? fmt.num(s.roundTrips.roundTrips, 1) : "–";
      rows.push(
        `| ${cell.framework} | ${cell.label} | ${ROUTES[route].title} | ${fmt.int(s.rps)} | ${fmt.num(s.redisCommands, 2)} (${rt}) | ${fmt.num(s.redisCpuUs, 1)} | ${fmt.num(s.redisUsec, 1)} | ${fmt.num(s.redisWrites, 2)} | ${s.void ? "**VOID** " : ""}${list || "none"} |`,
      );
    }
  }
  return rows.length > 2 ? rows.join("\n") : "No Redis cell ran.";
}

/** Reads with and without an inactivity timeout, side by side: what renewing the deadline costs. */
function idleTable(run) {
  const rows = [
    "| framework | library | read: writes/req, Redis CPU µs/req, req/s | read with a 30-minute inactivity timeout: writes/req, Redis CPU µs/req, req/s |",
    "|---|---|---|---|",
  ];
  const f = (s) =>
    s
      ? `${fmt.num(s.redisWrites, 3)}, ${fmt.num(s.redisCpuUs, 1)}, ${fmt.int(s.rps)}${s.void ? " **VOID**" : ""}`
      : "–";
  for (const framework of FRAMEWORKS) {
    for (const [plain, idle, name] of [
      ["coatcheck-redis", "coatcheck-redis-idle", "coatcheck"],
      ["incumbent-redis", "incumbent-redis-idle", "incumbent + connect-redis"],
    ]) {
      const cell = CELLS.find((c) => c.framework === framework && c.kind === idle);
      if (!cell) continue;
      const a = summarise(run.samples, `${framework.toLowerCase()}/${plain}`, "read");
      const b = summarise(run.samples, cell.id, "read");
      if (!a && !b) continue;
      rows.push(`| ${framework} | ${name} | ${f(a)} | ${f(b)} |`);
    }
  }
  return rows.length > 2 ? rows.join("\n") : "The inactivity-timeout cells did not run.";
}

/** Why a memory figure is void: the child says so, or (older results) fewer sessions were held. */
function memoryVoid(m) {
  if (m.void) return m.void;
  return m.stored < m.sessions ? `only ${m.stored} of ${m.sessions} sessions held` : null;
}

function memoryTable(run) {
  const rows = [
    "| store | bytes per stored session | created records still held after expiry + traffic | expired given back | check |",
    "|---|---|---|---|---|",
  ];
  for (const m of run.memory) {
    if (m.error) {
      rows.push(`| ${m.store} | error: ${m.error} | | | |`);
      continue;
    }
    rows.push(
      `| ${m.store} | ${fmt.int(m.bytesPerSession)} | ${fmt.int(m.afterExpiry.recordsLeft)} of ${fmt.int(m.stored)} | ${m.afterExpiry.recordsLeft < m.stored * 0.01 ? "yes" : "no"} | ${memoryVoid(m) ? `**VOID**: ${memoryVoid(m)}` : "ok"} |`,
    );
  }
  return rows.join("\n");
}

function profileSection(run) {
  const p = run.profile;
  if (!p) return "Not run (`--no-profile`).";
  if (p.error) return `The profile failed: ${p.error}`;
  const pct = (v) => `${((100 * v) / p.totalMicros).toFixed(1)} %`;
  const busy = p.totalMicros - p.areas.idle;
  const perReq = (v) => fmt.num(v / p.served, 2);
  const lines = [
    `Hono + coatcheck (memory), \`GET /read\` with a stored session, ${p.seconds} s under load, ${fmt.int(p.served)} requests, sampled every 100 µs (\`node --cpu-prof\` on the server process). Time per area: coatcheck ${pct(p.areas.coatcheck)}, framework and other packages ${pct(p.areas.framework)}, Node internals ${pct(p.areas.node)}, GC ${pct(p.areas.gc)}, idle ${pct(p.areas.idle)}; coatcheck code ≈ ${perReq(p.areas.coatcheck)} µs of ${perReq(busy)} µs busy per request.`,
    "",
    "Top self time, all code:",
    "",
    "| function | where | self | µs/req |",
    "|---|---|---|---|",
    ...p.top.map((f) => `| \`${f.name}\` | ${f.where} | ${pct(f.micros)} | ${perReq(f.micros)} |`),
    "",
    "Top self time in coatcheck code (dist/):",
    "",
    "| function | where | self | µs/req |",
    "|---|---|---|---|",
    ...p.coatcheck.map(
      (f) => `| \`${f.name}\` | ${f.where} | ${pct(f.micros)} | ${perReq(f.micros)} |`,
    ),
    "",
    "What was changed because of the profile: an earlier profile of this route had Hono's Response",
    "copying (`makeTransferable`, undici `_Response`, `extractBody`, `responseViaResponseObject`) at the",
    "top after `writev`: the session middleware assigned `c.res` on every request, and Hono's setter",
    "copies the whole response, which also threw away @hono/node-server's fast path. The middleware",
    "now assigns `c.res` only when the commit had to copy an immutable response; on a patched build,",
    "untouched/read/write went from about 95–165 to about 35–45 µs CPU per request in an A/B on this",
    "machine. Adapters also stopped building a CSRF request for GET/HEAD/OPTIONS (`csrfApplies`).",
  ];
  return lines.join("\n");
}

export function renderMarkdown(run, reasons = {}) {
  const m = run.meta;
  const versions = Object.entries(m.versions)
    .map(([name, v]) => `${name} ${v}`)
    .join(", ");
  const skipped = Object.entries(run.skipped);
  return `# Benchmarks

coatcheck side by side with the bare frameworks and with each framework's incumbent session
library, measured in one run by \`bench/run.mjs\`. Everything on this page — tables, chart, targets,
memory, profile — comes from the run described here (the PostgreSQL section at the end, if
present, comes from its own command, \`bench/postgres.mjs\`; the paired comparisons give their own
date, since \`--paired-only\` can measure them again alone); rerun it with:

\`\`\`sh
${m.command}
\`\`\`

The paired comparisons alone, into this page's results (after \`npm run build\`):
\`node bench/run.mjs --paired-only\` (\`--paired-windows 8 --paired-duration 2\` are the defaults);
the allocation per request alone: \`node bench/run.mjs --alloc-only\` (\`--alloc-requests 3000\`).

![requests per second, median of rounds with min–max](benchmarks.svg)

## The run

- Date: ${m.date}; source tree: ${m.git}
- Machine: ${m.cores} cores, ${m.cpuModel}, ${m.memGb} GB RAM, ${m.platform}; Node ${m.node}
- Load average at start / end: ${m.loadStart} / ${m.loadEnd} (other work on the machine makes figures noisy; compare within one run only)
- Load: autocannon in the runner process, ${m.options.connections} connections, ${m.options.warmup} s warm-up then ${m.options.duration} s measured per route; ${m.options.rounds} rounds, cells interleaved (each round runs the whole matrix, alternating direction); every cell in its own process on a loopback port, restarted each round
- Redis: redis-server ${m.redisVersion} started by the bench on a free port (persistence off), used by nothing else, flushed before each Redis cell
- Versions: ${versions}
- CPU pinning: ${m.pinning ?? "not pinned"}
- Wall time: ${Math.round(m.elapsedSec)} s${m.phasesSec ? ` (cells ${m.phasesSec.load} s, ${m.phasesSec.paired === undefined ? "" : `paired comparisons ${m.phasesSec.paired} s, `}${m.phasesSec.alloc === undefined ? "" : `allocation ${m.phasesSec.alloc} s, `}memory ${m.phasesSec.memory} s, profile ${m.phasesSec.profile} s)` : ""}
${skipped.length > 0 ? `- Cells not run: ${skipped.map(([id, why]) => `${id} (${why})`).join("; ")}\n` : ""}
## How each figure is taken

- **req/s**: requests completed in the measured window ÷ its length; median over rounds, (min–max).
- **p50 / p99**: autocannon's latency percentiles, median over rounds.
- **CPU µs/req**: \`process.cpuUsage()\` delta inside the server process over the window (asked over
  IPC, so the load generator is not counted) ÷ requests served. Δ bare: minus the bare route of the
  same framework in the same run.
- **× bare**: req/s ÷ the same framework's bare route (GET routes: bare \`/untouched\`; the form
  post: bare \`/form\`, which parses the same body without any session or CSRF check).
- **Redis cmds/req**: \`INFO commandstats\` call counts, reset (\`CONFIG RESETSTAT\`) before the
  window and read after it, commands run inside scripts included, ÷ requests.
  **Round trips**: a separate probe of 10 sequential requests with \`MONITOR\` on (once per cell
  and route); client-issued commands, a MULTI…EXEC block counted once.
- **redis-server CPU µs/req**: the bench's own redis-server's \`INFO cpu\` (\`used_cpu_user\` +
  \`used_cpu_sys\`) after − before the window ÷ requests: everything Redis spent serving the
  cell, network reads and writes included. The Redis CPU targets are judged on this figure.
- **command time µs/req**: \`INFO commandstats\` \`usec\` over the window ÷ requests, counting
  only client-issued calls (a script's usec already includes the commands it runs; the \`MONITOR\`
  probe tells, per command name, which share of its calls came from clients).
- **writes/req**: \`INFO persistence\` \`rdb_changes_since_last_save\` after − before the window ÷
  requests: every key modification (an EXPIRE or PEXPIRE counts, a HSET counts once per field),
  what replication and an append-only file would carry.
- **KB allocated/req** (section "Allocation per request"): each memory-store cell apart, with a
  young generation large enough that nothing is collected during a window; used heap after −
  before ${run.alloc?.meta.requests ?? 3000} requests, ÷ requests; median of ${run.alloc?.meta.repeats ?? 3} windows (min–max). The section says how.
- **records created/req**: store records after − before the window (memory stores: counted in the
  server process; Redis: \`DBSIZE\`) ÷ requests.
- **check**: before the window each route is checked (the read route finds the session through
  the pre-created cookie; the counter increments by one per request; the new visitor gets "anon";
  the form post succeeds with the token and is refused with 403 without it, except on the CSRF-off
  cells); during the window autocannon counts errors, non-2xx answers and wrong bodies; after it,
  the session is still found and the counter has advanced. Any failure marks the figure **VOID**,
  with the reason, and a target judged on it shows "void".
- Routes: *untouched* (session middleware on the path, never used), *read* (read one key of a stored
  session), *write* (increment a counter in a stored session; all connections share one session, so
  concurrent increments may overwrite each other — the check only requires progress), *new visitor*
  (no cookie; reads, writes nothing), *CSRF form post* (urlencoded form with a valid token; the
  handler parses the body and answers without touching the session), *CSRF form post, handler
  reads the session* (the same post to \`/form-session\`, whose handler also reads the session's
  user and answers 401 when it is not "alice"; the bare cells answer it without a session; its check
  also requires that a post without the session cookie is not answered 200).
- *coatcheck, CSRF off*: the same app and form posts with \`csrf: { enabled: false }\`, the
  denominator of the "CSRF-checked ≥ 0.8× unchecked" target. On \`/form\` the unchecked post never
  opens its session while the checked one must load it (the CSRF secret lives there), so that ratio
  also prices the session read; on \`/form-session\` both load the session, and the ratio prices
  the check alone.
- **Paired comparisons** (their own section below): the ratio targets (CSRF-checked ÷ unchecked
  form post on each framework; coatcheck's Redis read ÷ connect-redis's on Express and Fastify)
  and the CPU targets (untouched route and memory read, each against the same framework's bare
  route) are judged on them, not on the matrix: the matrix's medians come from a few windows
  minutes apart, and on a shared machine two cells' medians can move by more than the difference
  being judged. A pair starts both cells at once and alternates short windows between them
  (A B B A…); a ratio target's figure is the median of the per-window req/s ratios, a CPU target's
  the median of the per-window differences of server CPU µs/req, each with its min–max as its
  spread. When a run has no paired result, the target falls back to the matrix medians.
- **CPU pinning** (\`--pin\`, off by default): with \`taskset\` on a machine with 2 or more
  cores, the runner (autocannon) and the redis-server it starts share core 0 and every server cell
  runs on core 1, so the measured process never competes with the load generator for its core
  (Redis serves the cells from the load generator's core: the server process is the one being
  measured). It is off by default because on a 2-core machine with other work running, pinned
  runs of the paired comparisons spread about twice as much from window to window as unpinned
  ones (a pinned server cannot move off a core that other work is using), and with less other
  work neither setting spread clearly less. Without taskset,
  \`--pin\` pins nothing and the page says so.
- *inactivity timeout* cells: the read route with a 30-minute idle timeout (coatcheck:
  \`inactivityTimeoutSecs: 1800\`; express-session: cookie \`maxAge\` with \`rolling: true\`;
  @fastify/session: cookie \`maxAge\`, rolling by default), to show how many Redis writes renewing
  the idle deadline costs per read.
- hono-sessions ships only a memory store and a cookie store, so Hono has no incumbent-on-Redis
  cell, and no CSRF package builds on it; the "≥ N× the incumbent" Redis targets are judged on
  Express and Fastify, and the connect-redis figures beside the Redis CPU targets come from those
  two.
- Incumbents are configured as their docs recommend for this use: express-session and
  @fastify/session with \`saveUninitialized: false\` (and \`resave: false\`), csrf-sync and
  @fastify/csrf-protection in session mode; hono-sessions with its defaults.
- **Chart**: req/s of every cell (median, whiskers min–max; a dashed red outline marks a void
  figure), and a last row of redis-server CPU µs per request for coatcheck and connect-redis with
  the Redis CPU targets as dashed lines.
- **Reason for a miss**: the run cannot know why a target was missed. After the run, write the
  reasons into \`bench/reasons.json\` (an object: target id → text; the id is shown in each
  unexplained row) and render the page again without measuring:
  \`node bench/run.mjs --report-only\`. A missed target without a reason shows
  "${REASON_PLACEHOLDER}". A reason is shown only while its target is missed.

## Targets

The ratio targets (CSRF form post, Redis read vs the incumbent) and the CPU targets (untouched
route, memory read) are judged on the paired comparisons below when the run has them; the rows marked "extra" are shown beside a target, not
judged.

${targets(run, reasons)}

## Paired comparisons

${pairedSection(run)}

## Allocation per request

${allocSection(run)}

## Hono

${cellTable(run, "Hono")}

## Express

${cellTable(run, "Express")}

## Fastify

${cellTable(run, "Fastify")}

## Redis cost per request

${redisTable(run)}

## Renewing an inactivity timeout

${idleTable(run)}

## Memory per stored session

Each store in its own process (\`node --expose-gc bench/memory.mjs <store>\`), after the load, as
many at a time as the machine has cores (they measure bytes and records, not time; a store whose
sessions expired before all were created is marked **VOID**): ${fmt.int(run.memory[0]?.sessions ?? 0)} sessions holding
\`user: "alice", n: 0\`, created the way the library creates them; heap (plus external memory) after
full GCs, before and after, ÷ sessions. Then the sessions expire and 20,000 requests carrying
unknown ids arrive: how many of the created records does the store still hold? (Records the traffic
itself creates are not counted: hono-sessions stores a session for every visitor it does not know.)

${run.memory.length > 0 ? memoryTable(run) : "Not run (`--no-memory`)."}

## Profile of the read route

${profileSection(run)}
`;
}

/** The bars of the Redis CPU row of the chart: coatcheck on each framework, connect-redis beside. */
const REDIS_BARS = [
  ["Hono", "coatcheck-redis", "Hono coatcheck"],
  ["Express", "coatcheck-redis", "Express coatcheck"],
  ["Express", "incumbent-redis", "Express connect-redis"],
  ["Fastify", "coatcheck-redis", "Fastify coatcheck"],
  ["Fastify", "incumbent-redis", "Fastify connect-redis"],
];

/**
 * The chart's last row: redis-server CPU µs per request (shorter is better) on the routes that
 * reach Redis, with the target as a dashed line where there is one.
 */
function redisCpuPanels(run, parts, { top, left, panelW, barH, gap, panelH }) {
  parts.push(
    `<text x="10" y="${top + 16}" font-size="14" font-weight="600">redis-server CPU µs per request (median of rounds; shorter is better; dashed: target)</text>`,
  );
  const panels = [
    ["read", "read", 7],
    ["write", "write (counter)", 11],
    ["form", "CSRF form post", null],
    ["read-idle", "read, inactivity timeout", null],
  ];
  const y0 = top + 26;
  parts.push(`<text x="10" y="${y0 + panelH / 2}" font-size="13" font-weight="600">Redis</text>`);
  panels.forEach(([route, title, target], col) => {
    const x0 = left + col * (panelW + 12);
    parts.push(
      `<rect x="${x0}" y="${y0}" width="${panelW}" height="${panelH}" fill="#f7f7f7" stroke="#ddd"/>`,
      `<text x="${x0 + 6}" y="${y0 + 15}" font-weight="600">${title}</text>`,
    );
    const bars = REDIS_BARS.map(([framework, kind, label]) => {
      const idle = route === "read-idle";
      const id = `${framework.toLowerCase()}/${kind}${idle ? "-idle" : ""}`;
      return { label, kind, s: summarise(run.samples, id, idle ? "read" : route) };
    });
    const values = bars.map((b) => b.s?.redisCpuUs ?? 0);
    const max = Math.max(1, target ?? 0, ...values);
    const x1 = x0 + 132;
    const scale = (panelW - 132 - 60) / max;
    bars.forEach(({ label, kind, s }, i) => {
      const y = y0 + 24 + i * (barH + gap);
      parts.push(`<text x="${x0 + 6}" y="${y + barH - 4}" font-size="10">${label}</text>`);
      if (!s || s.redisCpuUs === null) {
        parts.push(`<text x="${x1 + 2}" y="${y + barH - 4}" fill="#999">n/a</text>`);
        return;
      }
      const w = Math.max(1, s.redisCpuUs * scale);
      const stroke = s.void ? ` stroke="#d00" stroke-width="2" stroke-dasharray="3 2"` : "";
      parts.push(
        `<rect x="${x1}" y="${y}" width="${w.toFixed(1)}" height="${barH}" fill="${COLORS[kind]}"${stroke}/>`,
        `<text x="${(x1 + w + 4).toFixed(1)}" y="${y + barH - 4}"${s.void ? ` fill="#d00"` : ""}>${s.redisCpuUs.toFixed(1)}${s.void ? " VOID" : ""}</text>`,
      );
    });
    if (target !== null) {
      const x = (x1 + target * scale).toFixed(1);
      parts.push(
        `<line x1="${x}" x2="${x}" y1="${y0 + 20}" y2="${y0 + panelH - 2}" stroke="#d00" stroke-dasharray="4 3"/>`,
      );
    }
  });
}

/** The chart: one panel per framework × route, one bar per setup, whiskers for min–max. */
export function renderSvg(run) {
  const routes = Object.keys(ROUTES);
  const panelW = 230;
  const barH = 16;
  const gap = 4;
  const panelH = 26 + KINDS.length * (barH + gap);
  const left = 70;
  const top = 56;
  const width = left + routes.length * (panelW + 12) + 10;
  const redisTop = top + FRAMEWORKS.length * (panelH + 14) + 10;
  const redisPanelH = 26 + REDIS_BARS.length * (barH + gap);
  const height = redisTop + 30 + redisPanelH + 10;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="10" y="18" font-size="14" font-weight="600">Requests per second (median of ${run.meta.options.rounds} rounds, whiskers min–max; longer is better)</text>`,
  ];
  const legend = [
    ["bare", "bare framework"],
    ["coatcheck-memory", "coatcheck, memory"],
    ["coatcheck-nocsrf", "coatcheck, memory, CSRF off"],
    ["coatcheck-redis", "coatcheck, Redis"],
    ["incumbent-memory", "incumbent, memory"],
    ["incumbent-redis", "incumbent, Redis"],
  ];
  legend.forEach(([kind, text], i) => {
    const x = 10 + i * 185;
    parts.push(`<rect x="${x}" y="30" width="12" height="12" fill="${COLORS[kind]}"/>`);
    parts.push(`<text x="${x + 16}" y="40">${text}</text>`);
  });
  FRAMEWORKS.forEach((framework, row) => {
    const y0 = top + row * (panelH + 14);
    parts.push(
      `<text x="10" y="${y0 + panelH / 2}" font-size="13" font-weight="600">${framework}</text>`,
    );
    routes.forEach((route, col) => {
      const x0 = left + col * (panelW + 12);
      parts.push(
        `<rect x="${x0}" y="${y0}" width="${panelW}" height="${panelH}" fill="#f7f7f7" stroke="#ddd"/>`,
      );
      parts.push(
        `<text x="${x0 + 6}" y="${y0 + 15}" font-weight="600">${ROUTES[route].chartTitle ?? ROUTES[route].title}</text>`,
      );
      const bars = KINDS.map((kind) => {
        const cell = CELLS.find((c) => c.framework === framework && c.kind === kind);
        if (!cell) return { kind, s: null, note: "" };
        const measured = kind === "bare" ? bareRouteOf(route) : route;
        const s = summarise(run.samples, cell.id, measured);
        const note = run.skipped[cell.id] || cell.missing[route] ? "n/a" : "";
        return { kind, s, note };
      });
      const max = Math.max(1, ...bars.map((b) => (b.s ? b.s.rpsMax : 0)));
      const scale = (panelW - 60) / max;
      bars.forEach(({ kind, s, note }, i) => {
        const y = y0 + 24 + i * (barH + gap);
        if (!s) {
          if (note)
            parts.push(`<text x="${x0 + 8}" y="${y + barH - 4}" fill="#999">${note}</text>`);
          return;
        }
        const w = Math.max(1, s.rps * scale);
        const stroke = s.void ? ` stroke="#d00" stroke-width="2" stroke-dasharray="3 2"` : "";
        parts.push(
          `<rect x="${x0 + 6}" y="${y}" width="${w.toFixed(1)}" height="${barH}" fill="${COLORS[kind]}"${stroke}/>`,
        );
        const wy = y + barH / 2;
        parts.push(
          `<line x1="${(x0 + 6 + s.rpsMin * scale).toFixed(1)}" x2="${(x0 + 6 + s.rpsMax * scale).toFixed(1)}" y1="${wy}" y2="${wy}" stroke="#222"/>`,
        );
        const label = s.void ? `${fmt.k(s.rps)} VOID` : fmt.k(s.rps);
        parts.push(
          `<text x="${(x0 + 10 + s.rpsMax * scale).toFixed(1)}" y="${y + barH - 4}"${s.void ? ` fill="#d00"` : ""}>${label}</text>`,
        );
      });
    });
  });
  const redisPanelW = (routes.length * (panelW + 12) - 4 * 12) / 4;
  redisCpuPanels(run, parts, {
    top: redisTop,
    left,
    panelW: redisPanelW,
    barH,
    gap,
    panelH: redisPanelH,
  });
  parts.push("</svg>");
  return `${parts.join("\n")}\n`;
}
