import { connect } from "node:net";
import { cpus, loadavg } from "node:os";
import { AuthSession, FlashMessage, FlashMessages } from "coatcheck";
import { getSession } from "coatcheck/hono";
import type { Hono } from "hono";
import { startRedisServer } from "../../test/support/redis.js";
import { demoOn, field, meta, send } from "../reliability/failover-lib.js";
import { option, table } from "../reliability/lib.js";

/**
 * Sizing figures for docs/CAPACITY.md: `npm run capacity [-- --sessions=20000 --requests=20000]`.
 *
 * Starts its own redis-server (persistence off, free port) and runs the demo app in this process
 * on `storage = "redis"` from the environment, then measures, from Redis's own counters:
 *   1. bytes per session: `MEMORY USAGE` of a fresh visitor (CSRF secret only), a signed-in user
 *      with a 5-item cart (typical), and a signed-in user with a flash message pending; and the
 *      growth of `used_memory` over `--sessions` typical sessions (what a GB holds);
 *   2. per request kind (page read, locked cart write, new session, sign-in of a new user each
 *      time, sign-in of one user who keeps every session): commands run (`INFO commandstats`
 *      deltas, scripts' commands included) and Redis CPU (`INFO cpu` user+sys deltas) over
 *      `--requests` requests at 32 in flight, giving requests per second per Redis core; then
 *      the commands the app sent (round trips), counted with MONITOR over `--sampled` more
 *      requests of the kind (MONITOR costs Redis CPU of its own, so it is never on while CPU is
 *      measured).
 *
 * Sign-ins go through a route this script adds to the demo app, `POST /capacity/login`, which
 * signs in the user named in the form as the demo's `POST /login` does (the demo itself knows
 * two users): each visitor is a user of its own, except in the one-user scenario.
 */

const SESSIONS = option("sessions", 20_000);
const REQUESTS = option("requests", 20_000);
const SAMPLED = option("sampled", 200);
const IN_FLIGHT = 32;

type Info = Record<string, string>;
const parseInfo = (text: string): Info => {
  const out: Info = {};
  for (const line of text.split(/\r?\n/)) {
    const at = line.indexOf(":");
    if (at > 0) out[line.slice(0, at)] = line.slice(at + 1);
  }
  return out;
};

async function main() {
  const redis = await startRedisServer();
  const { app, store } = demoOn({
    COATCHECK_SESSION__REDIS_URL: redis.url,
    COATCHECK_SESSION__KEY_PREFIX: "cap:",
  });
  addSignInRoute(app);
  let users = 0;
  /** A visitor signed in as a user of its own, or as `user`. */
  const signIn = async (user = `user-${++users}`) => {
    const page = await send(app, "GET", "/login", "");
    if (page.status !== 200 || !page.cookie) return null;
    const login = await send(app, "POST", "/capacity/login", page.cookie, {
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ user, _csrf: field(page.text) }).toString(),
    });
    if (login.status !== 303 || login.location !== "/dashboard" || !login.cookie) return null;
    return { cookie: login.cookie };
  };
  const info = async (section: string) => parseInfo(await redis.cli("INFO", section));
  const cpuSecs = async () => {
    const c = await info("cpu");
    return Number(c.used_cpu_user) + Number(c.used_cpu_sys);
  };
  const calls = async () => {
    const out: Record<string, number> = {};
    for (const [k, v] of Object.entries(await info("commandstats"))) {
      const m = /calls=(\d+)/.exec(v);
      if (m) out[k.replace(/^cmdstat_/, "")] = Number(m[1]);
    }
    return out;
  };
  const usage = async (cookie: string) =>
    Number(
      await redis.cli(
        "MEMORY",
        "USAGE",
        store.keyOf(cookie.slice(cookie.indexOf("=") + 1)),
        "SAMPLES",
        "0",
      ),
    );

  try {
    await store.ready();
    console.log(`# Capacity (${new Date().toISOString()})`);
    console.log(
      `\nMachine: ${cpus().length} cores (${cpus()[0]?.model}), load average ${loadavg()[0]?.toFixed(1)} at start; redis-server ${(await info("server")).redis_version}, one process, persistence off.\n`,
    );

    // 1. Bytes per session.
    const fresh = await send(app, "GET", "/login", "");
    const withFlash = await signIn();
    const typical = await signIn();
    if (!fresh.cookie || !withFlash || !typical) throw new Error("sign-in failed");
    const dash = await send(app, "GET", "/dashboard", typical.cookie); // shows (and drops) the flash
    const csrf = meta(dash.text);
    for (let i = 0; i < 5; i++) await addItem(typical.cookie, csrf, `item number ${i}`);
    const sizes = [
      ["fresh visitor (CSRF secret only)", await usage(fresh.cookie)],
      ["signed in, 5-item cart (typical)", await usage(typical.cookie)],
      ["signed in, flash message pending", await usage(withFlash.cookie)],
    ] as const;

    await redis.cli("FLUSHALL");
    const before = Number((await info("memory")).used_memory);
    const made = await inParallel(SESSIONS, async () => {
      const v = await signIn();
      if (!v) return false;
      const d = await send(app, "GET", "/dashboard", v.cookie);
      for (let i = 0; i < 5; i++) await addItem(v.cookie, meta(d.text), `item number ${i}`);
      return true;
    });
    const after = Number((await info("memory")).used_memory);
    const perSession = (after - before) / made;
    console.log("## Memory\n");
    console.log(
      table(
        ["session", "MEMORY USAGE (bytes)"],
        sizes.map(([name, bytes]) => [name, bytes]),
      ),
    );
    console.log(
      `\n${made} typical sessions grew used_memory by ${((after - before) / 1024 / 1024).toFixed(1)} MiB: ${perSession.toFixed(0)} bytes per session with Redis's own overhead (keyspace, expiry), ${Math.floor(1e9 / perSession).toLocaleString("en")} sessions per GB (10^9 bytes) of used_memory.\n`,
    );

    // 2. Commands and Redis CPU per request kind, on signed-in sessions of the typical shape.
    const pool: Array<{ cookie: string; csrf: string }> = [];
    while (pool.length < IN_FLIGHT) {
      const v = await signIn();
      if (!v) throw new Error("sign-in failed");
      const d = await send(app, "GET", "/dashboard", v.cookie);
      pool.push({ cookie: v.cookie, csrf: meta(d.text) });
    }
    let k = 0;
    const kinds: Array<[string, (slot: number) => Promise<boolean>]> = [
      [
        "page read (GET /dashboard)",
        async (slot) =>
          (await send(app, "GET", "/dashboard", (pool[slot] as { cookie: string }).cookie))
            .status === 200,
      ],
      [
        "locked write (POST /cart/items)",
        async (slot) => {
          const p = pool[slot] as { cookie: string; csrf: string };
          // A fresh session every 400 items: the demo's cart holds 500.
          if (++k % 400 === 0) {
            const v = await signIn();
            if (v)
              Object.assign(p, {
                cookie: v.cookie,
                csrf: meta((await send(app, "GET", "/dashboard", v.cookie)).text),
              });
          }
          return (await addItem(p.cookie, p.csrf, `item ${k}`)) === 200;
        },
      ],
      [
        "new visitor (GET /login, creates a session)",
        async () => (await send(app, "GET", "/login", "")).status === 200,
      ],
      ["sign-in, a new user each time (GET /login + POST)", async () => (await signIn()) !== null],
      [
        "sign-in, one user keeping every session (GET /login + POST)",
        async () => (await signIn("crowd")) !== null,
      ],
    ];
    const rows: Array<Array<string | number>> = [];
    for (const [name, run] of kinds) {
      await redis.cli("CONFIG", "RESETSTAT");
      const cpu0 = await cpuSecs();
      const t0 = performance.now();
      let done = 0;
      let failed = 0;
      await Promise.all(
        Array.from({ length: IN_FLIGHT }, async (_, slot) => {
          while (done + failed < REQUESTS) {
            if (await run(slot)) done++;
            else failed++;
          }
        }),
      );
      const secs = (performance.now() - t0) / 1000;
      const cpu = (await cpuSecs()) - cpu0;
      const counts = await calls();
      for (const c of Object.keys(counts)) if (/^(config|info)/.test(c)) delete counts[c];
      const total = Object.values(counts).reduce((a, b) => a + b, 0);
      const n = done + failed;
      // Sent by the client: scripts and the lock's SET (no script runs SET or WAIT).
      const usPer = (cpu * 1e6) / n;
      // Round trips: what the app sent, apart from the commands scripts ran.
      const sent = await monitored(redis.port, async () => {
        let left = SAMPLED;
        await Promise.all(
          Array.from({ length: Math.min(IN_FLIGHT, SAMPLED) }, async (_, slot) => {
            while (left-- > 0) await run(slot);
          }),
        );
      });
      rows.push([
        name,
        (sent / SAMPLED).toFixed(2),
        (total / n).toFixed(2),
        Object.entries(counts)
          .sort((a, b) => b[1] - a[1])
          .map(([c, v]) => `${c} ${(v / n).toFixed(2)}`)
          .join(", "),
        usPer.toFixed(1),
        Math.round(1e6 / usPer).toLocaleString("en"),
        `${(n / secs).toFixed(0)} (${failed} failed)`,
      ]);
    }
    console.log("## Commands and Redis CPU per request\n");
    console.log(
      table(
        [
          "request",
          `round trips (MONITOR, ${SAMPLED} requests)`,
          "commands run (scripts included)",
          "by command",
          "Redis CPU µs",
          "per Redis core per s",
          "measured req/s (app-bound)",
        ],
        rows,
      ),
    );
  } finally {
    await store.close();
    await redis.dispose();
  }

  async function addItem(cookie: string, csrf: string, item: string): Promise<number> {
    const res = await send(app, "POST", "/cart/items", cookie, {
      headers: {
        "x-csrf-token": csrf,
        "hx-request": "true",
        "content-type": "application/x-www-form-urlencoded",
      },
      body: new URLSearchParams({ item }).toString(),
    });
    return res.status;
  }
}

/**
 * `POST /capacity/login` on the demo app: signs in the user named by the form's `user` field, as
 * the demo's `POST /login` does for its own two users (CSRF-checked like every demo form).
 */
function addSignInRoute(app: Hono): void {
  app.post("/capacity/login", async (c) => {
    const form = await c.req.parseBody();
    const user = typeof form.user === "string" && form.user.length > 0 ? form.user : "nobody";
    const s = getSession(c);
    const auth = await AuthSession.open(s);
    await auth.login(user, ["user"], { userAgent: c.req.header("user-agent") ?? "capacity" });
    await FlashMessages.push(s, FlashMessage.success(`Logged in! Welcome, ${user}.`));
    return c.redirect("/dashboard", 303);
  });
}

/**
 * Commands clients sent while `during` ran, from a MONITOR connection: every line but those a
 * script ran (`[0 lua]`), MONITOR's own, and redis-cli's INFO and CONFIG.
 */
async function monitored(port: number, during: () => Promise<void>): Promise<number> {
  const socket = connect(port, "127.0.0.1");
  let buffer = "";
  socket.setEncoding("utf8");
  socket.on("data", (chunk: string) => {
    buffer += chunk;
  });
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", () => resolve());
    socket.once("error", reject);
  });
  socket.write("MONITOR\r\n");
  await new Promise((r) => setTimeout(r, 50));
  await during();
  await new Promise((r) => setTimeout(r, 100));
  socket.destroy();
  let sent = 0;
  for (const line of buffer.split("\r\n")) {
    const match = /^\+\d+\.\d+ \[\d+ ([^\]]+)\] "([^"]+)"/.exec(line);
    if (match === null || match[1] === "lua") continue;
    if (/^(monitor|info|config)$/i.test(match[2] as string)) continue;
    sent++;
  }
  return sent;
}

/** Run `task` `n` times, 32 at a time; returns how many succeeded. */
async function inParallel(n: number, task: () => Promise<boolean>): Promise<number> {
  let started = 0;
  let ok = 0;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (started < n) {
        started++;
        if (await task()) ok++;
      }
    }),
  );
  return ok;
}

await main();
