import { type ChildProcess, spawn } from "node:child_process";

/**
 * Start `server` (a TypeScript file run through tsx) as a child process with `env` added to this
 * process's environment; resolves with its base URL once it prints `listening <port>`, and rejects
 * if it exits first. The child is pushed onto `children` so the suite's afterAll can kill it.
 */
export function startAppProcess(
  server: string,
  env: Record<string, string>,
  children: ChildProcess[],
): Promise<string> {
  const child = spawn(process.execPath, ["--import", "tsx", server], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout?.on("data", (chunk) => {
      out += chunk.toString();
      const m = /listening (\d+)/.exec(out);
      if (m) resolve(`http://127.0.0.1:${m[1]}`);
    });
    child.once("exit", (code) => reject(new Error(`app process exited with code ${code}`)));
  });
}
