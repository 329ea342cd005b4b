/**
 * docs/BENCHMARKS.md and docs/benchmarks.svg, both from one run's results: medians over rounds,
 * min–max, ratios to the same framework's bare route, the targets and whether they were met.
 */
import { bareRouteOf, CELLS, FRAMEWORKS, ROUTES } from "./matrix.mjs";
import { median } from "./util.mjs";

const KINDS = [
  "bare",
  "coatcheck-memory",
  "coatcheck-redis",
  "incumbent-memory",
  "incumbent-redis",
];
const COLORS = {
  bare: "#9e9e9e",
  "coatcheck-memory": "#1f5f8b",
  "coatcheck-redis": "#6fa8dc",
  "incumbent-memory": "#c0601a",
  "incumbent-redis": "#f0a868",
};

/** Median and spread of one cell × route over the rounds, or null when never measured. */
export function summarise(samples, cellId, route) {
  const list = samples[cellId]?.[route];
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
      if (skipped || missing) {
        rows.push(
          `| ${ROUTES[route].title} | ${cell.label} | n/a | | | | | | ${skipped ?? missing} |`,
        );
        continue;
      }
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

const signed = (v) => (Number.isNaN(v) ? "–" : `${v >= 0 ? "+" : ""}${v.toFixed(1)}`);

/** Each target of the issue, with the figure it is judged on. */
function targets(run) {
  const out = [];
  const get = (framework, kind, route) =>
    summarise(run.samples, `${framework.toLowerCase()}/${kind}`, route);
  const verdict = (ok, s) => (s?.void ? "void" : ok ? "met" : "**missed**");
  for (const framework of ["Hono", "Fastify", "Express"]) {
    const s = get(framework, "coatcheck-memory", "read");
    const bare = bareOf(run.samples, framework, "read");
    if (!s || !bare) {
      out.push(
        `| memory read ≤ +5 µs CPU and ≥ 0.75× bare req/s (${framework}) | not measured | – |`,
      );
      continue;
    }
    const dCpu = s.cpuUs - bare.cpuUs;
    const ratio = s.rps / bare.rps;
    const judged = framework !== "Express";
    out.push(
      `| memory read ≤ +5 µs CPU and ≥ 0.75× bare req/s (${framework}${judged ? "" : ", for reference"}) | ${signed(dCpu)} µs, ${ratio.toFixed(2)}× | ${judged ? verdict(dCpu <= 5 && ratio >= 0.75, s) : "–"} |`,
    );
  }
  for (const framework of FRAMEWORKS) {
    const checked = get(framework, "coatcheck-memory", "form");
    const unchecked = get(framework, "coatcheck-nocsrf", "form");
    if (!checked || !unchecked) {
      out.push(
        `| CSRF form post ≥ 0.8× the same post unchecked (${framework}) | not measured | – |`,
      );
      continue;
    }
    const x = checked.rps / unchecked.rps;
    out.push(
      `| CSRF form post ≥ 0.8× the same post unchecked (${framework}) | ${fmt.int(checked.rps)} vs ${fmt.int(unchecked.rps)} = ${x.toFixed(2)}× | ${verdict(x >= 0.8, checked.void ? checked : unchecked)} |`,
    );
  }
  for (const framework of FRAMEWORKS) {
    const s = get(framework, "coatcheck-redis", "read");
    if (!s) {
      out.push(`| Redis read: 1 round trip (${framework}) | not measured | – |`);
      continue;
    }
    const rt = s.roundTrips?.roundTrips ?? Number.NaN;
    out.push(
      `| Redis read: 1 round trip (${framework}) | ${fmt.num(rt, 1)} round trips, ${fmt.num(s.redisCommands, 2)} commands incl. inside scripts | ${verdict(rt === 1, s)} |`,
    );
    const peer = get(framework, "incumbent-redis", "read");
    if (peer) {
      const x = s.rps / peer.rps;
      out.push(
        `| Redis read ≥ 2× incumbent req/s (${framework}) | ${fmt.int(s.rps)} vs ${fmt.int(peer.rps)} = ${x.toFixed(2)}× | ${verdict(x >= 2, s.void ? s : peer)} |`,
      );
    }
  }
  for (const framework of FRAMEWORKS) {
    const bare = bareOf(run.samples, framework, "untouched");
    for (const kind of ["coatcheck-memory", "coatcheck-redis"]) {
      const s = get(framework, kind, "untouched");
      if (!s || !bare) continue;
      const d = s.cpuUs - bare.cpuUs;
      const calls = s.redisCommands;
      const label = kind === "coatcheck-redis" ? "Redis" : "memory";
      const zero = calls === null || calls === 0;
      out.push(
        `| untouched: 0 store calls, ≤ +1 µs (${framework}, ${label}) | ${signed(d)} µs${calls === null ? "" : `, ${fmt.num(calls, 2)} Redis cmds/req`} | ${verdict(d <= 1 && zero, s)} |`,
      );
    }
  }
  for (const framework of FRAMEWORKS) {
    for (const kind of ["coatcheck-memory", "coatcheck-redis"]) {
      const s = get(framework, kind, "visit");
      if (!s) continue;
      out.push(
        `| new visitor writes nothing → 0 records (${framework}, ${kind.slice(10)}) | ${fmt.num(s.entries, 3)} records/req | ${verdict(s.entries === 0, s)} |`,
      );
    }
  }
  const mem = run.memory.find((m) => m.store === "coatcheck");
  if (mem) {
    out.push(
      `| memory store: small session ≤ 300 bytes | ${fmt.int(mem.bytesPerSession)} bytes | ${verdict(mem.bytesPerSession <= 300)} |`,
    );
    out.push(
      `| memory store gives back expired sessions | ${fmt.int(mem.afterExpiry.recordsLeft)} of ${fmt.int(mem.stored)} left after expiry + ${fmt.int(mem.afterExpiry.traffic)} requests | ${verdict(mem.afterExpiry.recordsLeft === 0)} |`,
    );
  }
  const spreads = FRAMEWORKS.map((framework) => {
    const list = run.samples[`${framework.toLowerCase()}/bare`]?.untouched ?? [];
    const cpu = list.map((x) => x.cpuUs).filter((v) => !Number.isNaN(v));
    return cpu.length > 1
      ? `${framework} ${(Math.max(...cpu) - Math.min(...cpu)).toFixed(1)} µs`
      : `${framework} –`;
  });
  const noise = `\n\nResolution: the same bare route's CPU µs/req differed between rounds by ${spreads.join(", ")}; differences smaller than that are within this run's noise.`;
  return ["| target | measured | verdict |", "|---|---|---|", ...out].join("\n") + noise;
}

/** Which Redis commands each Redis cell runs per request (scripts' inner commands included). */
function redisTable(run) {
  const rows = ["| setup | route | commands per request |", "|---|---|---|"];
  for (const cell of CELLS.filter((c) => c.store === "redis")) {
    for (const route of cell.routes) {
      const s = summarise(run.samples, cell.id, route);
      if (!s?.redisByCommand) continue;
      const list = Object.entries(s.redisByCommand)
        .filter(([, v]) => v >= 0.005)
        .sort((a, b) => b[1] - a[1])
        .map(([name, v]) => `${name} ${v.toFixed(2)}`)
        .join(", ");
      rows.push(`| ${cell.framework} ${cell.label} | ${ROUTES[route].title} | ${list || "none"} |`);
    }
  }
  return rows.length > 2 ? rows.join("\n") : "No Redis cell ran.";
}

/** Why a missed target was missed, from this run's own figures. */
function missedNotes(run) {
  const notes = [];
  const p = run.profile && !run.profile.error ? run.profile : null;
  for (const framework of ["Hono", "Fastify"]) {
    const s = summarise(run.samples, `${framework.toLowerCase()}/coatcheck-memory`, "read");
    const bare = bareOf(run.samples, framework, "read");
    if (!s || !bare || s.void) continue;
    const d = s.cpuUs - bare.cpuUs;
    if (d <= 5 && s.rps / bare.rps >= 0.75) continue;
    const own =
      framework === "Hono" && p
        ? ` The profile below (same route) puts coatcheck's own functions at ${(p.areas.coatcheck / p.served).toFixed(1)} µs per request; the rest of the added cost is framework and Node work done on the middleware's behalf (see the top of the profile).`
        : "";
    notes.push(
      `- **${framework} memory read**: +${d.toFixed(1)} µs CPU and ${(s.rps / bare.rps).toFixed(2)}× bare req/s.${own}`,
    );
  }
  const mem = run.memory.find((m) => m.store === "coatcheck" && !m.error);
  if (mem && mem.bytesPerSession > 300)
    notes.push(
      `- **Memory per session**: ${Math.round(mem.bytesPerSession)} bytes. A record is its 32-character id (the Map key, about 48 bytes, plus the Map entry), an entry object whose three epoch-millisecond times are boxed heap numbers in V8, an exactly sized array of keys and JSON texts, the texts themselves, and a deadline and id in the expiry heap. Getting under 300 would mean packing the times (e.g. relative to the store's start, so V8 keeps them as small integers) or the whole record into one string; neither is done yet.`,
    );
  return notes.length > 0 ? `\n\nWhy the missed targets were missed:\n\n${notes.join("\n")}` : "";
}

function memoryTable(run) {
  const rows = [
    "| store | bytes per stored session | created records still held after expiry + traffic | expired given back |",
    "|---|---|---|---|",
  ];
  for (const m of run.memory) {
    if (m.error) {
      rows.push(`| ${m.store} | error: ${m.error} | | |`);
      continue;
    }
    rows.push(
      `| ${m.store} | ${fmt.int(m.bytesPerSession)} | ${fmt.int(m.afterExpiry.recordsLeft)} of ${fmt.int(m.stored)} | ${m.afterExpiry.recordsLeft < m.stored * 0.01 ? "yes" : "no"} |`,
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

export function renderMarkdown(run) {
  const m = run.meta;
  const versions = Object.entries(m.versions)
    .map(([name, v]) => `${name} ${v}`)
    .join(", ");
  const skipped = Object.entries(run.skipped);
  return `# Benchmarks

coatcheck side by side with the bare frameworks and with each framework's incumbent session
library, measured in one run by \`bench/run.mjs\`. Everything on this page — tables, chart, targets,
profile — comes from the run described here; rerun it with:

\`\`\`sh
${m.command}
\`\`\`

![requests per second, median of rounds with min–max](benchmarks.svg)

## The run

- Date: ${m.date}; source tree: ${m.git}
- Machine: ${m.cores} cores, ${m.cpuModel}, ${m.memGb} GB RAM, ${m.platform}; Node ${m.node}
- Load average at start / end: ${m.loadStart} / ${m.loadEnd} (other work on the machine makes figures noisy; compare within one run only)
- Load: autocannon in the runner process, ${m.options.connections} connections, ${m.options.warmup} s warm-up then ${m.options.duration} s measured per route; ${m.options.rounds} rounds, cells interleaved (each round runs the whole matrix, alternating direction); every cell in its own process on a loopback port, restarted each round
- Redis: redis-server ${m.redisVersion} started by the bench on a free port (persistence off), flushed before each Redis cell
- Versions: ${versions}
- Wall time: ${Math.round(m.elapsedSec)} s
${skipped.length > 0 ? `- Cells not run: ${skipped.map(([id, why]) => `${id} (${why})`).join("; ")}\n` : ""}
## How each figure is taken

- **req/s**: requests completed in the measured window ÷ its length; median over rounds, (min–max).
- **p50 / p99**: autocannon's latency percentiles, median over rounds.
- **CPU µs/req**: \`process.cpuUsage()\` delta inside the server process over the window (asked over
  IPC, so the load generator is not counted) ÷ requests served. Δ bare: minus the bare route of the
  same framework in the same run.
- **× bare**: req/s ÷ the same framework's bare route (GET routes: bare \`/untouched\`; the form
  post: bare \`/form\`, which parses the same body without any session or CSRF check).
- **Redis cmds/req**: \`INFO commandstats\` delta (commands run inside scripts included) ÷ requests.
  **Round trips**: a separate probe of 10 sequential requests with \`MONITOR\` on; client-issued
  commands, a MULTI…EXEC block counted once.
- **records created/req**: store records after − before the window (memory stores: counted in the
  server process; Redis: \`DBSIZE\`) ÷ requests.
- **check**: before the window each route is checked (the read route finds the session through
  the pre-created cookie; the counter increments by one per request; the new visitor gets "anon";
  the form post succeeds with the token and is refused with 403 without it); during the window
  autocannon counts errors, non-2xx answers and wrong bodies; after it, the session is still found
  and the counter has advanced. Any failure marks the figure **VOID**, with the reason.
- Routes: *untouched* (session middleware on the path, never used), *read* (read one key of a stored
  session), *write* (increment a counter in a stored session; all connections share one session, so
  concurrent increments may overwrite each other — the check only requires progress), *new visitor*
  (no cookie; reads, writes nothing), *CSRF form post* (urlencoded form with a valid token).
- hono-sessions ships only a memory store and a cookie store, so Hono has no incumbent-on-Redis
  cell, and no CSRF package builds on it; the Redis "≥ 2× the incumbent" target is judged on
  Express and Fastify.
- Incumbents are configured as their docs recommend for this use: express-session and
  @fastify/session with \`saveUninitialized: false\` (and \`resave: false\`), csrf-sync and
  @fastify/csrf-protection in session mode; hono-sessions with its defaults.

## Targets

${targets(run)}${missedNotes(run)}

## Hono

${cellTable(run, "Hono")}

## Express

${cellTable(run, "Express")}

## Fastify

${cellTable(run, "Fastify")}

## Redis commands by name

${redisTable(run)}

## Memory per stored session

Each store in its own process (\`node --expose-gc bench/memory.mjs <store>\`): ${fmt.int(run.memory[0]?.sessions ?? 0)} sessions holding
\`user: "alice", n: 0\`, created the way the library creates them; heap (plus external memory) after
full GCs, before and after, ÷ sessions. Then the sessions expire and 20,000 requests carrying
unknown ids arrive: how many of the created records does the store still hold? (Records the traffic
itself creates are not counted: hono-sessions stores a session for every visitor it does not know.)

${memoryTable(run)}

## Profile of the read route

${profileSection(run)}
`;
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
  const height = top + FRAMEWORKS.length * (panelH + 14) + 10;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="10" y="18" font-size="14" font-weight="600">Requests per second (median of ${run.meta.options.rounds} rounds, whiskers min–max; longer is better)</text>`,
  ];
  const legend = [
    ["bare", "bare framework"],
    ["coatcheck-memory", "coatcheck, memory"],
    ["coatcheck-redis", "coatcheck, Redis"],
    ["incumbent-memory", "incumbent, memory"],
    ["incumbent-redis", "incumbent, Redis"],
  ];
  legend.forEach(([kind, text], i) => {
    const x = 10 + i * 150;
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
        `<text x="${x0 + 6}" y="${y0 + 15}" font-weight="600">${ROUTES[route].title}</text>`,
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
  parts.push("</svg>");
  return `${parts.join("\n")}\n`;
}
