import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

/** Helpers shared by the reliability scripts and their short versions in test/reliability. */

const APP_SERVER = fileURLToPath(new URL("./app-server.ts", import.meta.url));

/** One app-server child process. */
export interface AppProcess {
  readonly base: string;
  readonly child: ChildProcess;
  /** Exit codes and signals seen; a crash shows up here. */
  readonly exits: Array<{ code: number | null; signal: string | null }>;
  /** Lines the app wrote to stderr that report an unhandled rejection. */
  readonly unhandled: string[];
  stop(): Promise<void>;
}

/** Start `scripts/reliability/app-server.ts` with `env` and wait for its port. */
export function startApp(env: Record<string, string>, timeoutMs = 30_000): Promise<AppProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", APP_SERVER], {
    env: { ...process.env, QUIET_LOGS: "1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exits: AppProcess["exits"] = [];
  const unhandled: string[] = [];
  child.once("exit", (code, signal) => exits.push({ code, signal }));
  let err = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    err += chunk.toString();
    const lines = err.split("\n");
    err = lines.pop() ?? "";
    for (const line of lines) if (line.startsWith("UNHANDLED")) unhandled.push(line);
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error("app-server did not start in time"));
    }, timeoutMs);
    let out = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      const m = /listening (\d+)/.exec(out);
      if (!m) return;
      clearTimeout(timer);
      resolve({
        base: `http://127.0.0.1:${m[1]}`,
        child,
        exits,
        unhandled,
        stop() {
          if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
          const gone = new Promise<void>((r) => child.once("exit", () => r()));
          child.kill("SIGTERM");
          return gone;
        },
      });
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`app-server exited with code ${code} before listening`));
    });
  });
}

/** Poll `check` every `everyMs` until it holds; false after `limitMs`. */
export async function until(
  check: () => Promise<boolean>,
  limitMs: number,
  everyMs = 50,
): Promise<boolean> {
  const end = performance.now() + limitMs;
  for (;;) {
    if (await check().catch(() => false)) return true;
    if (performance.now() > end) return false;
    await sleep(everyMs);
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** `session_id=…` from a response, or "" when it sets none. */
export function cookieOf(response: Response): string {
  return (response.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
}

/** A signed-in session on `base`: its cookie and a CSRF token for the header. */
export interface Visitor {
  cookie: string;
  token: string;
  user: string;
}

export async function login(base: string, user: string): Promise<Visitor> {
  const page = await fetch(`${base}/token`);
  if (page.status !== 200) throw new Error(`sign-in page: ${page.status}`);
  const res = await fetch(`${base}/login/${user}`, {
    method: "POST",
    headers: { cookie: cookieOf(page), "x-csrf-token": await page.text() },
  });
  if (res.status !== 200) throw new Error(`login ${user}: ${res.status}`);
  const { token } = (await res.json()) as { token: string };
  return { cookie: cookieOf(res), token, user };
}

export function headersOf(v: Visitor): Record<string, string> {
  return { cookie: v.cookie, "x-csrf-token": v.token };
}

export interface AppStats {
  pid: number;
  rss: number;
  heapUsed: number;
  unhandled: number;
  maxRecords: number;
  records?: number;
  scheduled?: number;
}

export async function statsOf(base: string): Promise<AppStats> {
  return (await (
    await fetch(`${base}/stats`, { signal: AbortSignal.timeout(5000) })
  ).json()) as AppStats;
}

export const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);

/** A Markdown table, for the reports and docs/RELIABILITY.md. */
export function table(head: string[], rows: Array<Array<string | number>>): string {
  const line = (cells: Array<string | number>) => `| ${cells.join(" | ")} |`;
  return [line(head), line(head.map(() => "---")), ...rows.map(line)].join("\n");
}

/** A numeric command-line option `--name=value`, or `fallback`. */
export function option(name: string, fallback: number): number {
  const arg = process.argv.find((a) => a.startsWith(`--${name}=`));
  const value = arg === undefined ? fallback : Number(arg.slice(name.length + 3));
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} must be a positive number`);
  return value;
}
