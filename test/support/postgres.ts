import { execFile, execFileSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { chmod, chown, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import type { PgPoolLike } from "../../src/stores/postgres.js";
import { freePort } from "./redis.js";

/**
 * PostgreSQL for tests. The shared server is 127.0.0.1:5432 (user postgres, trust auth; override
 * with POSTGRES_URL); every test file works in a database of its own, created here and dropped
 * afterwards. Tests that stop or pause PostgreSQL start their own server on a free port instead.
 * A missing server fails the run: these suites never skip.
 */

export const POSTGRES_URL =
  process.env.POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

const execFileAsync = promisify(execFile);

/** `base` with another database name. */
export function urlFor(database: string, base = POSTGRES_URL): string {
  const url = new URL(base);
  url.pathname = `/${database}`;
  return url.toString();
}

async function answers(url: string, timeoutMs: number): Promise<Error | null> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs });
  client.on("error", () => {});
  try {
    await client.connect();
    await client.query("SELECT 1");
    return null;
  } catch (error) {
    return error as Error;
  } finally {
    await client.end().catch(() => {});
  }
}

/** Throws (failing the suite) unless the shared PostgreSQL answers. */
export async function requireSharedPostgres(): Promise<void> {
  const error = await answers(POSTGRES_URL, 3000);
  if (error === null) return;
  throw new Error(
    `PostgreSQL does not answer at ${POSTGRES_URL} (${error.message}). Start it (see .ci/run) or set POSTGRES_URL; the PostgreSQL suites fail rather than skip.`,
  );
}

/** A database of this test run's own. */
export interface TestDatabase {
  readonly name: string;
  readonly url: string;
  /** A pool on the database, ended by `drop()`. */
  pool(options?: pg.PoolConfig): pg.Pool;
  /** End the pools and drop the database. */
  drop(): Promise<void>;
}

async function admin<T>(base: string, run: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: base, connectionTimeoutMillis: 5000 });
  client.on("error", () => {});
  await client.connect();
  try {
    return await run(client);
  } finally {
    await client.end();
  }
}

/** CREATE DATABASE with a unique name on the shared server (or on `base`). */
export async function createTestDatabase(
  label: string,
  base = POSTGRES_URL,
): Promise<TestDatabase> {
  await (base === POSTGRES_URL ? requireSharedPostgres() : Promise.resolve());
  const name = `coatcheck_${label}_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  await admin(base, (c) => c.query(`CREATE DATABASE "${name}"`));
  const url = urlFor(name, base);
  const pools: pg.Pool[] = [];
  return {
    name,
    url,
    pool(options = {}) {
      const pool = new pg.Pool({ connectionString: url, max: 5, ...options });
      pool.on("error", () => {});
      pools.push(pool);
      return pool;
    },
    async drop() {
      await Promise.all(pools.map((p) => p.end().catch(() => {})));
      await admin(base, (c) => c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
    },
  };
}

/** A pool that records every statement sent through it: one `query` call is one round trip. */
export function countingPool(pool: PgPoolLike) {
  const sent: string[] = [];
  const counted: PgPoolLike & { sent: string[]; reset(): string[] } = {
    sent,
    query(config) {
      sent.push(config.name ?? config.text.split(/\s/)[0] ?? "");
      return pool.query(config);
    },
    reset() {
      return sent.splice(0);
    },
  };
  return counted;
}

/** The directory of the newest installed PostgreSQL binaries (initdb, pg_ctl, postgres). */
function binDir(): string {
  const root = "/usr/lib/postgresql";
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(join(root, v, "bin", "initdb")))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions[0] === undefined) throw new Error(`no PostgreSQL server binaries under ${root}`);
  return join(root, versions[0], "bin");
}

/** A private PostgreSQL server in a temporary directory. */
export interface PostgresServer {
  readonly port: number;
  /** URL of its `postgres` database as user postgres. */
  readonly url: string;
  /** Start (or restart, on the same port) and wait until it answers. */
  start(): Promise<void>;
  /** Immediate shutdown, like a crash: connections are cut. */
  stop(): Promise<void>;
  /** SIGSTOP / SIGCONT every process of the server: it hangs with its sockets open. */
  pause(): void;
  resume(): void;
  /** Stop for good and remove the directory. */
  dispose(): Promise<void>;
}

/**
 * initdb + pg_ctl on a free loopback port. initdb refuses to run as root, so when the tests run
 * as root the server runs as the `postgres` system user.
 */
export async function startPostgresServer(): Promise<PostgresServer> {
  const bin = binDir();
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), "coatcheck-pg-"));
  const data = join(dir, "data");
  const asRoot = process.getuid?.() === 0;
  const run = (command: string, args: string[]) =>
    asRoot
      ? execFileAsync("runuser", ["-u", "postgres", "--", join(bin, command), ...args])
      : execFileAsync(join(bin, command), args);
  if (asRoot) {
    await chmod(dir, 0o700);
    const uid = Number(execFileSync("id", ["-u", "postgres"]).toString().trim());
    const gid = Number(execFileSync("id", ["-g", "postgres"]).toString().trim());
    await chown(dir, uid, gid);
  }
  await run("initdb", ["-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]);
  const pidOf = () => {
    try {
      return Number(
        execFileSync("head", ["-1", join(data, "postmaster.pid")])
          .toString()
          .trim(),
      );
    } catch {
      return 0;
    }
  };
  const processes = () => {
    const main = pidOf();
    if (main === 0) return [];
    const children = execFileSync("ps", ["-o", "pid=", "--ppid", String(main)])
      .toString()
      .split("\n")
      .map((s) => Number(s.trim()))
      .filter((n) => n > 0);
    return [main, ...children];
  };
  const signal = (sig: NodeJS.Signals) => {
    for (const pid of processes()) {
      try {
        process.kill(pid, sig);
      } catch {
        // gone already
      }
    }
  };
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const server: PostgresServer = {
    port,
    url,
    async start() {
      await run("pg_ctl", [
        "-D",
        data,
        "-l",
        join(dir, "server.log"),
        "-w",
        "-o",
        `-p ${port} -c listen_addresses=127.0.0.1 -k ${dir} -c fsync=off`,
        "start",
      ]);
      const deadline = Date.now() + 20_000;
      while ((await answers(url, 500)) !== null) {
        if (Date.now() > deadline) throw new Error(`PostgreSQL on port ${port} did not answer`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async stop() {
      signal("SIGCONT");
      await run("pg_ctl", ["-D", data, "-m", "immediate", "-w", "stop"]).catch(() => {});
    },
    pause() {
      signal("SIGSTOP");
    },
    resume() {
      signal("SIGCONT");
    },
    async dispose() {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
  await server.start();
  return server;
}
