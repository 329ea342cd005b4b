/**
 * CPU pinning with `taskset` (Linux, util-linux), for `--pin`: the runner (autocannon, and the
 * redis-server it starts, which inherits the runner's affinity) on core 0, every server cell on
 * core 1, so the measured process never shares its core with the load generator. Without taskset,
 * or on one core, nothing is pinned and the bench runs as without `--pin`.
 *
 * Off by default: on a 2-core machine with other work running, an A/B of the paired comparisons
 * (4 pairs × 6 windows, pinned and unpinned runs alternated twice) had about twice the
 * window-to-window spread of the req/s ratio when pinned (coefficient of variation 32–62 % against
 * 12–43 %): a pinned server cannot move off a core that other work is using. A second A/B with
 * less other work (3 Fastify pairs, 2 × 2 runs) was mixed: 4–24 % pinned against 5–33 % unpinned.
 */
import { execFileSync } from "node:child_process";
import { cpus } from "node:os";

let serverCores = null;

function hasTaskset() {
  try {
    execFileSync("taskset", ["-V"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/**
 * Pin this process (all its threads) to core 0 and make {@link serverLauncher} put server cells on
 * core 1. Call before Redis is started so it inherits core 0. Returns what was done, for the page.
 */
export function pinCores() {
  if (cpus().length < 2) return { pinned: false, note: "not pinned: fewer than 2 cores" };
  if (!hasTaskset()) return { pinned: false, note: "not pinned: taskset not found" };
  try {
    execFileSync("taskset", ["-a", "-p", "-c", "0", String(process.pid)], { stdio: "ignore" });
  } catch (error) {
    return { pinned: false, note: `not pinned: taskset failed (${error.message.split("\n")[0]})` };
  }
  serverCores = "1";
  return {
    pinned: true,
    note: "taskset: runner (autocannon) and redis-server on core 0, each server cell on core 1",
  };
}

/** Undo {@link pinCores}: this process may use every core again, new cells are not pinned. */
export function releaseCores() {
  if (serverCores === null) return;
  serverCores = null;
  const all = `0-${cpus().length - 1}`;
  execFileSync("taskset", ["-a", "-p", "-c", all, String(process.pid)], { stdio: "ignore" });
}

/**
 * How to start a server cell: `fork` options that run node under `taskset -c <core>` while pinning
 * is on, else none (plain fork).
 */
export function serverLauncher(execArgv) {
  if (serverCores === null) return { execArgv };
  return { execPath: "taskset", execArgv: ["-c", serverCores, process.execPath, ...execArgv] };
}
