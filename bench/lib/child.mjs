/** A server cell in its own process, driven over IPC (see cell.mjs). */
import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import { serverLauncher } from "./pin.mjs";
import { freePort } from "./util.mjs";

const cellsDir = fileURLToPath(new URL("../cells/", import.meta.url));

export async function startCell(cell, { redisUrl, postgresUrl, execArgv = [], cwd } = {}) {
  const port = await freePort();
  const child = fork(`${cellsDir}${cell.file}`, [], {
    cwd,
    ...serverLauncher(execArgv),
    env: {
      ...process.env,
      NODE_ENV: "production",
      BENCH_PORT: String(port),
      BENCH_STORE: cell.store ?? "memory",
      BENCH_CSRF: cell.csrf ?? "on",
      BENCH_IDLE_SECS: String(cell.idle ?? 0),
      BENCH_REDIS_URL: redisUrl ?? "",
      BENCH_POSTGRES_URL: postgresUrl ?? "",
    },
    stdio: ["ignore", "inherit", "pipe", "ipc"],
  });
  let stderr = "";
  child.stderr.on("data", (chunk) => {
    stderr += chunk;
  });
  const pending = new Map();
  let nextId = 0;
  child.on("message", (message) => {
    const resolve = pending.get(message.id);
    if (resolve) {
      pending.delete(message.id);
      resolve(message);
    }
  });
  const exited = new Promise((resolve) => child.once("exit", resolve));
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${cell.file}: not ready after 20 s`)), 20_000);
    child.on("message", (message) => {
      if (message.type === "ready") {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${cell.file} exited with ${code} before it was ready:\n${stderr}`));
    });
  });
  const ask = (type) =>
    new Promise((resolve) => {
      const id = nextId++;
      pending.set(id, resolve);
      child.send({ type, id });
    });
  return {
    base: `http://127.0.0.1:${port}`,
    stderr: () => stderr,
    cpuMicros: async () => (await ask("cpu")).micros,
    entries: async () => (await ask("entries")).count,
    statements: async () => (await ask("statements")).count,
    /**
     * One side of an allocation window (`"start"` or `"end"`; cells started with `--expose-gc`,
     * see cell.mjs): the used heap in bytes, and at the end the kinds of the collections since
     * the start (V8's names, e.g. "Scavenge"; none: an empty list).
     */
    async heap(side) {
      const answer = await ask(`heap-${side}`);
      if (answer.error) throw new Error(`${cell.file}: ${answer.error}`);
      return { used: answer.used, gcs: answer.gcs ?? [] };
    },
    async stop() {
      if (child.exitCode !== null) return;
      child.send({ type: "exit" });
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
