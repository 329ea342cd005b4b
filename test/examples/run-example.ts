import { type ChildProcess, spawn } from "node:child_process";
import { freePort } from "../support/redis.js";

/**
 * Start an example server (`examples/<name>/server.ts`) as its own process with tsx, on a free
 * port, the way a user runs it. The examples import the built package (`coatcheck/...` → dist), so
 * `npm run build` must have run (`npm test` does it first).
 */
export async function runExample(name: string) {
  const port = await freePort();
  const child: ChildProcess = spawn(
    process.execPath,
    ["--import", "tsx", `examples/${name}/server.ts`],
    { env: { ...process.env, PORT: String(port) }, stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`example ${name} did not start:\n${output}`)),
      15_000,
    );
    const onData = (data: Buffer) => {
      output += data.toString();
      if (output.includes(`http://127.0.0.1:${port}`)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", (data: Buffer) => {
      output += data.toString();
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`example ${name} exited with code ${code}:\n${output}`));
    });
  });
  let cookie = "";
  const request = async (method: string, path: string, init: RequestInit = {}) => {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, {
      ...init,
      method,
      redirect: "manual",
      headers: { ...(cookie ? { cookie } : {}), ...(init.headers as Record<string, string>) },
    });
    const set = res.headers.get("set-cookie");
    if (set) cookie = set.split(";")[0] as string;
    return { res, text: await res.text() };
  };
  const stop = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once("exit", () => resolve());
      child.kill("SIGTERM");
    });
  return { request, stop };
}

/** The visit counter / name form flow both framework examples implement. */
export async function exerciseExample(example: Awaited<ReturnType<typeof runExample>>) {
  const { request } = example;
  const first = await request("GET", "/");
  const token = /name="_csrf" value="([^"]+)"/.exec(first.text)?.[1] ?? "";
  const form = (body: string) => ({
    body,
    headers: { "content-type": "application/x-www-form-urlencoded" },
  });
  const refused = await request("POST", "/name", form("name=Mallory"));
  const saved = await request(
    "POST",
    "/name",
    form(`_csrf=${encodeURIComponent(token)}&name=Al%3Cb%3E`),
  );
  const second = await request("GET", "/");
  return { first, token, refused, saved, second };
}
