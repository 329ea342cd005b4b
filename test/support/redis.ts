import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Redis } from "ioredis";
import { createClient } from "redis";

/**
 * Redis for tests. The shared server comes from REDIS_URL (default 127.0.0.1:6379); tests that stop,
 * pause or reconfigure Redis start their own `redis-server` on a free port instead.
 * A missing Redis fails the test run: these suites never skip.
 */

export const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

/** A key prefix no other test run uses. */
export function uniquePrefix(label: string): string {
  return `coatcheck-test:${label}:${process.pid}:${Math.random().toString(36).slice(2, 8)}:`;
}

/** One raw PING over a fresh socket; true on any reply (-NOAUTH from a server with a password too). */
export function ping(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once("error", () => done(false));
    socket.once("data", (data) => done(/^(\+PONG|-NOAUTH)/.test(data.toString())));
    socket.connect(port, host, () => socket.write("PING\r\n"));
  });
}

/** Throws (failing the suite) unless the shared Redis answers. */
export async function requireSharedRedis(): Promise<void> {
  const url = new URL(REDIS_URL);
  if (await ping(url.hostname, Number(url.port || 6379), 2000)) return;
  throw new Error(
    `Redis does not answer at ${REDIS_URL}. Start redis-server or set REDIS_URL; the Redis suites fail rather than skip.`,
  );
}

/** A connected node-redis client that fails fast while disconnected. */
export async function nodeRedis(url = REDIS_URL) {
  const client = createClient({ url, disableOfflineQueue: true });
  client.on("error", () => {});
  await client.connect();
  return client;
}

/** A connected ioredis client that fails fast while disconnected. */
export async function ioredis(url = REDIS_URL) {
  const client = new Redis(url, {
    enableOfflineQueue: false,
    lazyConnect: true,
    maxRetriesPerRequest: 1,
  });
  client.on("error", () => {});
  await client.connect();
  return client;
}

/** A TCP port nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export const execFileAsync = promisify(execFile);

/** A private redis-server process in a temporary directory. */
export interface RedisServer {
  readonly port: number;
  readonly url: string;
  readonly dir: string;
  /** Started and not killed (nor exited). */
  readonly alive: boolean;
  /** Start (or restart, on the same port) and wait until it answers. */
  start(): Promise<void>;
  /** SIGKILL, like a crash. */
  kill(): Promise<void>;
  /** SIGSTOP / SIGCONT: the process hangs with its sockets open. */
  pause(): void;
  resume(): void;
  /** One command through redis-cli. */
  cli(...args: string[]): Promise<string>;
  /** Stop for good and remove the directory. */
  dispose(): Promise<void>;
}

/** Options of {@link startRedisServer}. */
export interface RedisServerOptions {
  /** Default: a free port (never 6379). */
  port?: number;
  /** More redis-server arguments, e.g. `["--requirepass", "secret"]`. */
  args?: string[];
  /** Start now (default) or leave it to `start()`. */
  start?: boolean;
}

/** A redis-server on a loopback port in a temporary directory, with persistence off. */
export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  const port = options.port ?? (await freePort());
  const extraArgs = options.args ?? [];
  const dir = await mkdtemp(join(tmpdir(), "coatcheck-redis-"));
  let child: ChildProcess | null = null;
  const server: RedisServer = {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    get alive() {
      return child !== null && child.exitCode === null && child.signalCode === null;
    },
    async start() {
      const proc = spawn(
        "redis-server",
        [
          "--port",
          String(port),
          "--bind",
          "127.0.0.1",
          "--save",
          "",
          "--appendonly",
          "no",
          "--dir",
          dir,
          "--logfile",
          join(dir, "redis.log"),
          ...extraArgs,
        ],
        { stdio: "ignore" },
      );
      child = proc;
      const exited = new Promise<never>((_, reject) => {
        proc.once("error", (e) => reject(new Error(`cannot start redis-server: ${e.message}`)));
        proc.once("exit", (code) => reject(new Error(`redis-server exited with code ${code}`)));
      });
      exited.catch(() => {});
      const deadline = Date.now() + 10_000;
      while (!(await ping("127.0.0.1", port, 200))) {
        await Promise.race([exited, new Promise((r) => setTimeout(r, 50))]);
        if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not answer`);
      }
    },
    async kill() {
      const proc = child;
      child = null;
      if (proc === null || proc.exitCode !== null) return;
      const gone = new Promise((r) => proc.once("exit", r));
      proc.kill("SIGCONT");
      proc.kill("SIGKILL");
      await gone;
    },
    pause() {
      child?.kill("SIGSTOP");
    },
    resume() {
      child?.kill("SIGCONT");
    },
    async cli(...args) {
      const { stdout } = await execFileAsync("redis-cli", ["-p", String(port), ...args]);
      return stdout.trim();
    },
    async dispose() {
      await server.kill();
      await rm(dir, { recursive: true, force: true });
    },
  };
  if (options.start !== false) await server.start();
  return server;
}
