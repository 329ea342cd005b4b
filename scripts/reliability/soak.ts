import { cpus, loadavg } from "node:os";
import autocannon from "autocannon";
import { type AppProcess, mb, option, sleep, startApp, statsOf, table } from "./lib.js";

/**
 * Soak: `npm run reliability:soak [-- --seconds=240 --expiry=10 --cap=5000 --rate=300]`.
 * One app process on a capped MemoryStore (`max_sessions = cap`, `expiry_secs = expiry`) takes a
 * stream of new sessions from autocannon in this process: GET /visit without a cookie creates one
 * per request. First half at `rate` requests per second (expiry governs the record count), second
 * half unthrottled (the cap governs). The app's record count, expiry-heap size, JS heap and RSS are
 * sampled every 10 s and printed as a table; the app tracks the largest record count seen after any
 * request. Exits 1 when the cap is exceeded, a request fails, or the heap keeps climbing.
 */

const seconds = option("seconds", 240);
const expiry = option("expiry", 10);
const cap = option("cap", 5000);
const rate = option("rate", 300);
const SAMPLE_SECS = 10;

interface Sample {
  t: number;
  phase: string;
  rps: number;
  records: number;
  scheduled: number;
  maxRecords: number;
  heapUsed: number;
  rss: number;
}

function load(
  base: string,
  secs: number,
  overallRate: number | undefined,
  counts: Record<string, number>,
) {
  return new Promise<void>((resolve, reject) => {
    const instance = autocannon(
      {
        url: `${base}/visit`,
        connections: 16,
        duration: secs,
        timeout: 10,
        ...(overallRate ? { overallRate } : {}),
      },
      (error) => (error ? reject(error) : resolve()),
    );
    instance.on("response", (_client, status) => {
      counts[status] = (counts[status] ?? 0) + 1;
    });
  });
}

async function main() {
  const startedAt = new Date();
  const load0 = loadavg()[0]?.toFixed(2);
  let app: AppProcess | null = null;
  try {
    app = await startApp({ MAX_SESSIONS: String(cap), EXPIRY_SECS: String(expiry) });
    const base = app.base;
    const counts: Record<string, number> = {};
    const samples: Sample[] = [];
    const half = Math.round(seconds / 2);
    let phase = "throttled";
    let stop = false;
    let last = 0;
    const t0 = Date.now();
    const sampler = (async () => {
      while (!stop) {
        // A window that spans the switch is labelled by the phase it started in.
        const windowPhase = phase;
        await sleep(SAMPLE_SECS * 1000);
        if (stop) break;
        const s = await statsOf(base);
        const total = Object.values(counts).reduce((a, b) => a + b, 0);
        samples.push({
          t: Math.round((Date.now() - t0) / 1000),
          phase: windowPhase,
          rps: Math.round((total - last) / SAMPLE_SECS),
          records: s.records ?? 0,
          scheduled: s.scheduled ?? 0,
          maxRecords: s.maxRecords,
          heapUsed: s.heapUsed,
          rss: s.rss,
        });
        last = total;
      }
    })();
    await load(base, half, rate, counts);
    phase = "unthrottled";
    await load(base, seconds - half, undefined, counts);
    stop = true;
    await sampler;
    const final = await statsOf(base);

    console.log(`# Soak (${startedAt.toISOString()})`);
    console.log(
      `\nMachine: ${cpus().length} cores, load average ${load0} at start; MemoryStore max_sessions ${cap}, ` +
        `expiry_secs ${expiry}; ${half} s at ${rate} req/s, then ${seconds - half} s unthrottled; every request a new session.\n`,
    );
    console.log(
      table(
        [
          "t (s)",
          "phase",
          "req/s",
          "records",
          "expiry heap",
          "max records so far",
          "JS heap MB",
          "RSS MB",
        ],
        samples.map((s) => [
          s.t,
          s.phase,
          s.rps,
          s.records,
          s.scheduled,
          s.maxRecords,
          mb(s.heapUsed),
          mb(s.rss),
        ]),
      ),
    );
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    const failed = total - (counts[200] ?? 0);
    const unthrottled = samples.filter((s) => s.phase === "unthrottled");
    const mid = unthrottled.slice(0, Math.ceil(unthrottled.length / 2));
    const tail = unthrottled.slice(Math.ceil(unthrottled.length / 2));
    const peak = (xs: Sample[]) => Math.max(0, ...xs.map((s) => s.heapUsed));
    const climbing = tail.length > 0 && peak(tail) > peak(mid) * 1.5 + 16 * 2 ** 20;
    console.log(
      `\n${total} requests, ${failed} not 200 (${JSON.stringify(counts)}); largest record count after any request: ${final.maxRecords} (cap ${cap}); ` +
        `unhandled rejections: ${final.unhandled}; crashes: ${app.exits.length}.`,
    );
    const failures = [
      final.maxRecords > cap && "record count above the cap",
      failed > 0 && "requests failed",
      climbing && "heap still climbing in the second half of the unthrottled phase",
      final.unhandled + app.exits.length > 0 && "crash or unhandled rejection",
    ].filter(Boolean);
    console.log(failures.length ? `\nFAILED: ${failures.join("; ")}` : "\nAll checks passed.");
    process.exitCode = failures.length ? 1 : 0;
  } finally {
    await app?.stop();
  }
}

await main();
