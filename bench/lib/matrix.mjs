/**
 * What the bench measures: the cells (framework × session setup) and the routes every cell answers.
 * A cell whose pieces are not built yet (a dist/ file missing) is listed as such, not silently
 * dropped; a cell with `unavailable` is a setup the library does not offer (listed, never run).
 */

export const FRAMEWORKS = ["Hono", "Express", "Fastify"];

/**
 * The inactivity timeout of the "inactivity timeout" cells (30 minutes): coatcheck's
 * `inactivityTimeoutSecs`; the incumbents' sliding cookie `maxAge` (express-session with
 * `rolling: true`; @fastify/session rolls by default). These cells show what renewing the idle
 * deadline costs a read in Redis writes.
 */
export const IDLE_SECS = 1800;

/** The session-less routes a bare cell is measured on; its other routes are the same handlers. */
const BARE_ROUTES = ["untouched", "form", "formSession"];
const ALL_ROUTES = ["untouched", "read", "write", "visit", "form", "formSession"];

export const CELLS = [
  { framework: "Hono", kind: "bare", label: "bare", file: "hono-bare.mjs", routes: BARE_ROUTES },
  {
    framework: "Hono",
    kind: "coatcheck-memory",
    label: "coatcheck (memory)",
    file: "hono-coatcheck.mjs",
    needs: ["adapters/hono.js"],
  },
  {
    framework: "Hono",
    kind: "coatcheck-nocsrf",
    label: "coatcheck, CSRF off (memory)",
    file: "hono-coatcheck.mjs",
    csrf: "off",
    routes: ["form", "formSession"],
    needs: ["adapters/hono.js"],
  },
  {
    framework: "Hono",
    kind: "coatcheck-redis",
    label: "coatcheck (Redis)",
    file: "hono-coatcheck.mjs",
    store: "redis",
    needs: ["adapters/hono.js", "stores/redis.js"],
  },
  {
    framework: "Hono",
    kind: "coatcheck-redis-idle",
    label: "coatcheck (Redis), inactivity timeout",
    file: "hono-coatcheck.mjs",
    store: "redis",
    idle: IDLE_SECS,
    routes: ["read"],
    needs: ["adapters/hono.js", "stores/redis.js"],
  },
  {
    framework: "Hono",
    kind: "incumbent-memory",
    label: "hono-sessions (memory)",
    file: "hono-sessions.mjs",
    routes: ["untouched", "read", "write", "visit"],
    missing: {
      form: "hono-sessions has no CSRF protection (Hono's csrf() checks Origin only, no token)",
      formSession:
        "hono-sessions has no CSRF protection (Hono's csrf() checks Origin only, no token)",
    },
  },
  {
    framework: "Hono",
    kind: "incumbent-redis",
    label: "hono-sessions (Redis)",
    file: "hono-sessions.mjs",
    store: "redis",
    unavailable:
      "hono-sessions has no Redis store: it ships a memory store and a cookie store only",
  },
  {
    framework: "Express",
    kind: "bare",
    label: "bare",
    file: "express-bare.mjs",
    routes: BARE_ROUTES,
  },
  {
    framework: "Express",
    kind: "coatcheck-memory",
    label: "coatcheck (memory)",
    file: "express-coatcheck.mjs",
    needs: ["adapters/express.js"],
  },
  {
    framework: "Express",
    kind: "coatcheck-nocsrf",
    label: "coatcheck, CSRF off (memory)",
    file: "express-coatcheck.mjs",
    csrf: "off",
    routes: ["form", "formSession"],
    needs: ["adapters/express.js"],
  },
  {
    framework: "Express",
    kind: "coatcheck-redis",
    label: "coatcheck (Redis)",
    file: "express-coatcheck.mjs",
    store: "redis",
    needs: ["adapters/express.js", "stores/redis.js"],
  },
  {
    framework: "Express",
    kind: "incumbent-memory",
    label: "express-session (MemoryStore)",
    file: "express-session.mjs",
  },
  {
    framework: "Express",
    kind: "incumbent-redis",
    label: "express-session (connect-redis)",
    file: "express-session.mjs",
    store: "redis",
  },
  {
    framework: "Express",
    kind: "coatcheck-redis-idle",
    label: "coatcheck (Redis), inactivity timeout",
    file: "express-coatcheck.mjs",
    store: "redis",
    idle: IDLE_SECS,
    routes: ["read"],
    needs: ["adapters/express.js", "stores/redis.js"],
  },
  {
    framework: "Express",
    kind: "incumbent-redis-idle",
    label: "express-session (connect-redis), inactivity timeout",
    file: "express-session.mjs",
    store: "redis",
    idle: IDLE_SECS,
    routes: ["read"],
  },
  {
    framework: "Fastify",
    kind: "bare",
    label: "bare",
    file: "fastify-bare.mjs",
    routes: BARE_ROUTES,
  },
  {
    framework: "Fastify",
    kind: "coatcheck-memory",
    label: "coatcheck (memory)",
    file: "fastify-coatcheck.mjs",
    needs: ["adapters/fastify.js"],
  },
  {
    framework: "Fastify",
    kind: "coatcheck-nocsrf",
    label: "coatcheck, CSRF off (memory)",
    file: "fastify-coatcheck.mjs",
    csrf: "off",
    routes: ["form", "formSession"],
    needs: ["adapters/fastify.js"],
  },
  {
    framework: "Fastify",
    kind: "coatcheck-redis",
    label: "coatcheck (Redis)",
    file: "fastify-coatcheck.mjs",
    store: "redis",
    needs: ["adapters/fastify.js", "stores/redis.js"],
  },
  {
    framework: "Fastify",
    kind: "incumbent-memory",
    label: "@fastify/session (memory)",
    file: "fastify-session.mjs",
  },
  {
    framework: "Fastify",
    kind: "incumbent-redis",
    label: "@fastify/session (connect-redis)",
    file: "fastify-session.mjs",
    store: "redis",
  },
  {
    framework: "Fastify",
    kind: "coatcheck-redis-idle",
    label: "coatcheck (Redis), inactivity timeout",
    file: "fastify-coatcheck.mjs",
    store: "redis",
    idle: IDLE_SECS,
    routes: ["read"],
    needs: ["adapters/fastify.js", "stores/redis.js"],
  },
  {
    framework: "Fastify",
    kind: "incumbent-redis-idle",
    label: "@fastify/session (connect-redis), inactivity timeout",
    file: "fastify-session.mjs",
    store: "redis",
    idle: IDLE_SECS,
    routes: ["read"],
  },
].map((cell) => ({
  routes: ALL_ROUTES,
  store: "memory",
  needs: [],
  missing: {},
  ...cell,
  id: `${cell.framework.toLowerCase()}/${cell.kind}`,
}));

/**
 * The PostgreSQL cells, run by `bench/postgres.mjs` on a database of its own (not by run.mjs, so
 * the main matrix needs no PostgreSQL): coatcheck on each framework, and Express's incumbent.
 */
export const POSTGRES_CELLS = [
  ["Hono", "hono-coatcheck.mjs", "coatcheck (PostgreSQL)", ["adapters/hono.js"]],
  ["Express", "express-coatcheck.mjs", "coatcheck (PostgreSQL)", ["adapters/express.js"]],
  ["Fastify", "fastify-coatcheck.mjs", "coatcheck (PostgreSQL)", ["adapters/fastify.js"]],
].map(([framework, file, label, needs]) => ({
  framework,
  kind: "coatcheck-postgres",
  label,
  file,
  store: "postgres",
  needs: [...needs, "stores/postgres.js"],
  routes: ["untouched", "read", "write", "visit"],
  missing: {},
  id: `${framework.toLowerCase()}/coatcheck-postgres`,
}));
POSTGRES_CELLS.push({
  framework: "Express",
  kind: "incumbent-postgres",
  label: "express-session (connect-pg-simple)",
  file: "express-pg-simple.mjs",
  store: "postgres",
  needs: [],
  routes: ["untouched", "read", "write", "visit"],
  missing: {},
  id: "express/incumbent-postgres",
});

export const ROUTES = {
  untouched: { title: "untouched", method: "GET", path: "/untouched", cookie: true, expect: "ok" },
  read: { title: "read", method: "GET", path: "/read", cookie: true, expect: "alice" },
  write: { title: "write (counter)", method: "GET", path: "/write", cookie: true },
  visit: { title: "new visitor", method: "GET", path: "/visit", cookie: false, expect: "anon" },
  form: { title: "CSRF form post", method: "POST", path: "/form", cookie: true, expect: "saved" },
  formSession: {
    title: "CSRF form post, handler reads the session",
    chartTitle: "CSRF form post + session read",
    method: "POST",
    path: "/form-session",
    cookie: true,
    expect: "saved",
  },
};

/** The routes that post a form (bare cells answer them without any session or CSRF check). */
export const FORM_ROUTES = ["form", "formSession"];

/** The bare route a session route is divided by: same method, no session layer. */
export const bareRouteOf = (route) => (FORM_ROUTES.includes(route) ? route : "untouched");

/**
 * The paired comparisons (bench/lib/paired.mjs): two cells started at once and loaded in
 * alternating windows, for the targets that compare two cells (a ratio, or a CPU difference).
 * `a` is the numerator (the minuend); `target` is the id of the target judged on the pair (none:
 * an extra row beside its target); `windowFactor` multiplies `--paired-windows` for the pair.
 */
export const PAIRS = FRAMEWORKS.flatMap((framework) => {
  const f = framework.toLowerCase();
  const pairs = [
    {
      id: `${f}/csrf-form`,
      framework,
      title: "CSRF form post, checked vs CSRF off (memory)",
      a: { cell: `${f}/coatcheck-memory`, route: "form" },
      b: { cell: `${f}/coatcheck-nocsrf`, route: "form" },
      target: `csrf-form/${f}`,
    },
    {
      id: `${f}/csrf-form-session`,
      framework,
      title: "CSRF form post whose handler reads the session, checked vs CSRF off (memory)",
      a: { cell: `${f}/coatcheck-memory`, route: "formSession" },
      b: { cell: `${f}/coatcheck-nocsrf`, route: "formSession" },
      target: null,
    },
  ];
  // The CPU-difference targets (untouched, memory read): coatcheck's route against the same
  // framework's bare route, judged on the median of the per-window differences of CPU µs/req.
  // Express's own CPU per request (about 130 µs bare) moves by ±20–35 µs from one 2 s window to
  // the next, several times the differences judged: its pairs take three times the windows.
  const windowFactor = framework === "Express" ? 3 : 1;
  for (const [kind, store] of [
    ["coatcheck-memory", "memory"],
    ["coatcheck-redis", "redis"],
  ])
    pairs.push({
      id: `${f}/untouched-${store}`,
      framework,
      title: `untouched route vs the bare route (${store === "redis" ? "Redis" : "memory"})`,
      a: { cell: `${f}/${kind}`, route: "untouched" },
      b: { cell: `${f}/bare`, route: "untouched" },
      target: `untouched/${f}/${store}`,
      windowFactor,
    });
  pairs.push({
    id: `${f}/memory-read`,
    framework,
    title: "memory read vs the bare route",
    a: { cell: `${f}/coatcheck-memory`, route: "read" },
    b: { cell: `${f}/bare`, route: "untouched" },
    target: `memory-read/${f}`,
    windowFactor,
  });
  if (framework !== "Hono")
    pairs.push({
      id: `${f}/redis-read`,
      framework,
      title: "Redis read, coatcheck (Redis) vs the incumbent (connect-redis)",
      a: { cell: `${f}/coatcheck-redis`, route: "read" },
      b: { cell: `${f}/incumbent-redis`, route: "read" },
      target: `redis-read-vs-incumbent/${f}`,
    });
  return pairs;
});
