import { fork } from "node:child_process";
import { cpus, loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import { startRedisServer } from "../../test/support/redis.js";
import {
  type AppProcess,
  headersOf,
  login,
  mb,
  option,
  sleep,
  startApp,
  statsOf,
  table,
  until,
  type Visitor,
} from "./lib.js";
import type { Bucket } from "./load.js";

/**
 * Store outage under load: `npm run reliability:outage [-- --scale=1]`.
 *
 * Starts its own redis-server (AOF on, in a temporary folder, on a free port) and one app process,
 * signs in visitors, then runs two phases under autocannon load from a separate process:
 *   1. kill: Redis is SIGKILLed mid-run and restarted on the same port and folder;
 *   2. stop: Redis is SIGSTOPped (it hangs with its sockets open), then SIGCONTed.
 * A probe reads a session every 100 ms and times every request; a sampler reads the app's memory.
 * Prints a Markdown report and exits 1 when a check fails. Every phase ends by itself.
 */

const scale = option("scale", 1);
const OP_TIMEOUT_MS = 500;
/** A request may take a timed-out read plus a timed-out write, and the machine may be busy. */
const HANG_LIMIT_MS = 2 * OP_TIMEOUT_MS + 2000;
const VISITORS = 100;
const CONNECTIONS = 32;
const LEAD_SECS = 6 * scale;
const OUTAGE_SECS = 6 * scale;
const TAIL_SECS = 10 * scale;
const LOAD = fileURLToPath(new URL("./load.ts", import.meta.url));

interface Probe {
  at: number;
  status: number;
  retryAfter: string | null;
  ms: number;
}

interface PhaseResult {
  name: string;
  buckets: Bucket[];
  done: {
    total: number;
    errors: number;
    timeouts: number;
    statusCodeStats: Record<string, { count: number }>;
    latencyMax: number;
  };
  probes: Probe[];
  memory: Array<{ at: number; rss: number; heapUsed: number }>;
  downAt: number;
  backAt: number;
  recoveredAt: number | null;
}

function runLoad(base: string, visitors: Visitor[], seconds: number) {
  const child = fork(
    LOAD,
    [
      JSON.stringify({
        base,
        visitors: visitors.map(({ cookie, token }) => ({ cookie, token })),
        seconds,
        connections: CONNECTIONS,
        timeoutSecs: Math.ceil(HANG_LIMIT_MS / 1000),
      }),
    ],
    { execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] },
  );
  const buckets: Bucket[] = [];
  const done = new Promise<PhaseResult["done"]>((resolve, reject) => {
    const guard = setTimeout(
      () => {
        child.kill("SIGKILL");
        reject(new Error("load process did not finish"));
      },
      (seconds + 30) * 1000,
    );
    child.on("message", (m: { kind: string; bucket?: Bucket } & PhaseResult["done"]) => {
      if (m.kind === "bucket" && m.bucket) buckets.push(m.bucket);
      if (m.kind === "done") {
        clearTimeout(guard);
        resolve(m);
      }
    });
    child.once("exit", () =>
      setTimeout(() => reject(new Error("load exited without a result")), 500),
    );
  });
  return { buckets, done };
}

async function probeLoop(base: string, visitor: Visitor, probes: Probe[], stop: { now: boolean }) {
  while (!stop.now) {
    const t0 = performance.now();
    let status = 0;
    let retryAfter: string | null = null;
    try {
      const res = await fetch(`${base}/session`, {
        headers: headersOf(visitor),
        signal: AbortSignal.timeout(HANG_LIMIT_MS * 3),
      });
      status = res.status;
      retryAfter = res.headers.get("retry-after");
      await res.arrayBuffer();
    } catch {
      status = -1; // aborted: the request hung
    }
    probes.push({ at: Date.now(), status, retryAfter, ms: performance.now() - t0 });
    await sleep(100);
  }
}

async function memoryLoop(base: string, out: PhaseResult["memory"], stop: { now: boolean }) {
  while (!stop.now) {
    const s = await statsOf(base).catch(() => null);
    if (s) out.push({ at: Date.now(), rss: s.rss, heapUsed: s.heapUsed });
    await sleep(500);
  }
}

async function phase(
  name: string,
  app: AppProcess,
  visitors: Visitor[],
  fault: { down(): Promise<void> | void; up(): Promise<void> },
): Promise<PhaseResult> {
  const stop = { now: false };
  const probes: Probe[] = [];
  const memory: PhaseResult["memory"] = [];
  const load = runLoad(app.base, visitors, LEAD_SECS + OUTAGE_SECS + TAIL_SECS);
  const side = Promise.all([
    probeLoop(app.base, visitors[0] as Visitor, probes, stop),
    memoryLoop(app.base, memory, stop),
  ]);
  await sleep(LEAD_SECS * 1000);
  const downAt = Date.now();
  await fault.down();
  await sleep(OUTAGE_SECS * 1000);
  await fault.up();
  const backAt = Date.now();
  const done = await load.done;
  stop.now = true;
  await side;
  const recovered = probes.find((p) => p.at > backAt && p.status === 200);
  return {
    name,
    buckets: load.buckets,
    done,
    probes,
    memory,
    downAt,
    backAt,
    recoveredAt: recovered ? recovered.at : null,
  };
}

function summarise(r: PhaseResult) {
  const sum = (pick: (b: Bucket) => number, from = 0, to = Number.POSITIVE_INFINITY) =>
    r.buckets.filter((b) => b.at >= from && b.at < to).reduce((n, b) => n + pick(b), 0);
  const badStatuses: Record<string, number> = {};
  for (const b of r.buckets)
    for (const [k, v] of Object.entries(b.badStatuses)) badStatuses[k] = (badStatuses[k] ?? 0) + v;
  const outageProbes = r.probes.filter((p) => p.at >= r.downAt && p.at <= r.backAt);
  const before = r.memory.filter((m) => m.at < r.downAt);
  const during = r.memory.filter((m) => m.at >= r.downAt && m.at <= r.backAt);
  const after = r.memory.filter((m) => m.at > r.backAt);
  const peak = (xs: PhaseResult["memory"], k: "rss" | "heapUsed") =>
    xs.length ? Math.max(...xs.map((m) => m[k])) : 0;
  return {
    served: sum((b) => b.ok),
    unavailable: sum((b) => b.unavailable),
    unavailableDuringOutage: sum((b) => b.unavailable, r.downAt, r.backAt),
    bad: sum((b) => b.bad),
    badStatuses,
    autocannonErrors: r.done.errors,
    autocannonTimeouts: r.done.timeouts,
    total: r.done.total,
    latencyMaxMs: r.done.latencyMax,
    probeMaxMs: Math.round(Math.max(0, ...r.probes.map((p) => p.ms))),
    probeOutageMaxMs: Math.round(Math.max(0, ...outageProbes.map((p) => p.ms))),
    probeHung: r.probes.filter((p) => p.status === -1 || p.ms > HANG_LIMIT_MS).length,
    probeBad: r.probes.filter(
      (p) => p.status !== 200 && !(p.status === 503 && p.retryAfter !== null),
    ).length,
    recoverySecs: r.recoveredAt === null ? null : (r.recoveredAt - r.backAt) / 1000,
    rssMb: [peak(before, "rss"), peak(during, "rss"), peak(after, "rss")].map(mb),
    heapMb: [peak(before, "heapUsed"), peak(during, "heapUsed"), peak(after, "heapUsed")].map(mb),
  };
}

async function main() {
  const startedAt = new Date();
  const load0 = loadavg()[0]?.toFixed(2);
  const redis = await startRedisServer({
    args: ["--appendonly", "yes", "--appendfsync", "everysec"],
  });
  const aof = await redis.cli("CONFIG", "GET", "appendonly");
  let app: AppProcess | null = null;
  try {
    app = await startApp({ REDIS_URL: redis.url, OP_TIMEOUT_MS: String(OP_TIMEOUT_MS) });
    const base = app.base;
    if (!(await until(async () => (await fetch(`${base}/token`)).ok, 15_000)))
      throw new Error("the app never reached Redis");
    const visitors: Visitor[] = [];
    for (let i = 0; i < VISITORS; i++) visitors.push(await login(base, `user${i}`));
    // AOF is fsynced every second: let the sign-ins reach the disk before anything fails.
    await sleep(1500);

    const kill = await phase("kill", app, visitors, {
      down: () => redis.kill(),
      up: () => redis.start(),
    });
    const survivors = await Promise.all(
      visitors.map(async (v) => {
        const res = await fetch(`${base}/session`, { headers: headersOf(v) });
        return res.status === 200 && ((await res.json()) as { user: string }).user === v.user;
      }),
    );
    const readable = survivors.filter(Boolean).length;

    const stopPhase = await phase("stop", app, visitors, {
      down: () => redis.pause(),
      up: async () => redis.resume(),
    });
    const stats = await statsOf(base);
    const crashes = app.exits.length;
    const unhandled = Math.max(stats.unhandled, app.unhandled.length);

    const k = summarise(kill);
    const s = summarise(stopPhase);
    const row = (label: string, f: (x: typeof k) => string | number) => [label, f(k), f(s)];
    console.log(`# Store outage under load (${startedAt.toISOString()})`);
    console.log(
      `\nMachine: ${cpus().length} cores, load average ${load0} at start; Redis AOF ${aof.split("\n")[1]}, ` +
        `operation_timeout_ms ${OP_TIMEOUT_MS}, ${CONNECTIONS} autocannon connections over ${VISITORS} sessions, ` +
        `phases of ${LEAD_SECS}s + ${OUTAGE_SECS}s outage + ${TAIL_SECS}s.\n`,
    );
    console.log(
      table(
        ["", "SIGKILL + restart", "SIGSTOP + SIGCONT"],
        [
          row("requests completed (autocannon)", (x) => x.total),
          row("200 served", (x) => x.served),
          row(
            "503 with Retry-After (all / during outage)",
            (x) => `${x.unavailable} / ${x.unavailableDuringOutage}`,
          ),
          row("any other status (must be 0)", (x) => `${x.bad} ${JSON.stringify(x.badStatuses)}`),
          row(
            "connection errors / timeouts (autocannon)",
            (x) => `${x.autocannonErrors} / ${x.autocannonTimeouts}`,
          ),
          row("slowest request, autocannon (ms)", (x) => x.latencyMaxMs),
          row("slowest probe during outage (ms)", (x) => x.probeOutageMaxMs),
          row(`probes over ${HANG_LIMIT_MS} ms or aborted (must be 0)`, (x) => x.probeHung),
          row("probes with another status (must be 0)", (x) => x.probeBad),
          row("seconds to recover after Redis is back", (x) => x.recoverySecs ?? "never"),
          row("peak RSS MB before / during / after", (x) => x.rssMb.join(" / ")),
          row("peak heap MB before / during / after", (x) => x.heapMb.join(" / ")),
        ],
      ),
    );
    console.log(
      `\nCrashes: ${crashes}. Unhandled rejections: ${unhandled}. Sessions signed in before the outage and readable after the restart: ${readable}/${VISITORS}.`,
    );
    const failures = [
      k.bad + s.bad > 0 && "statuses other than 200 and 503+Retry-After",
      k.probeBad + s.probeBad > 0 && "probe saw another status",
      k.probeHung + s.probeHung > 0 && "a request hung",
      k.autocannonTimeouts + s.autocannonTimeouts > 0 && "autocannon timeouts",
      crashes > 0 && "the app crashed",
      unhandled > 0 && "unhandled rejections",
      k.recoverySecs === null || s.recoverySecs === null ? "no recovery" : false,
      readable !== VISITORS && "sessions lost",
    ].filter(Boolean);
    console.log(failures.length ? `\nFAILED: ${failures.join("; ")}` : "\nAll checks passed.");
    process.exitCode = failures.length ? 1 : 0;
  } finally {
    await app?.stop();
    await redis.dispose();
  }
}

await main();
