/**
 * The framework's floor under the CPU targets: what any middleware that does the least a session
 * read does to a request (one hook on every request keeping a per-request object, `Vary: Cookie`
 * on the response) costs on each framework, with no session code at all. The floor cell's
 * /untouched (the middleware alone) and /read (the middleware and the header) are each paired
 * against the bare cell's /untouched, as the untouched and memory-read targets pair coatcheck's
 * (lib/paired.mjs: alternating windows, median of per-window CPU differences), and their bytes
 * allocated per request are measured as in the report (lib/alloc.mjs).
 *
 *   node bench/floor.mjs [--windows 8] [--only hono]
 *
 * Prints two lines per framework. Needs no build: no coatcheck code runs. About 7 minutes on 2
 * cores.
 */
import { parseArgs } from "node:util";
import { measureAlloc } from "./lib/alloc.mjs";
import { CELLS, FRAMEWORKS } from "./lib/matrix.mjs";
import { measurePair, summarisePair } from "./lib/paired.mjs";
import { median } from "./lib/util.mjs";

const { values: flags } = parseArgs({
  options: { windows: { type: "string", default: "8" }, only: { type: "string", default: "" } },
});
const signed = (v) => `${v >= 0 ? "+" : ""}${v.toFixed(1)}`;

for (const framework of FRAMEWORKS) {
  const f = framework.toLowerCase();
  if (flags.only && !flags.only.split(",").includes(f)) continue;
  const floor = {
    id: `${f}/floor`,
    framework,
    kind: "bare",
    label: "floor",
    file: `${f}-floor.mjs`,
    store: "memory",
    routes: ["untouched", "read"],
  };
  if (!CELLS.some((cell) => cell.id === floor.id)) CELLS.push(floor);
  const windows = Number(flags.windows) * (framework === "Express" ? 3 : 1);
  const bare = CELLS.find((cell) => cell.id === `${f}/bare`);
  const bareAlloc = (await measureAlloc({ ...bare, routes: ["untouched"] }, { requests: 3000 }))
    .untouched;
  const floorAlloc = await measureAlloc(floor, { requests: 3000 });
  const kb = (r) => (r.void ? `void (${r.void})` : `${(median(r.bytes) / 1024).toFixed(1)} KB`);
  // The floor's /untouched (the middleware, no header) and /read (the middleware and Vary: Cookie),
  // each against the bare route, as the untouched and memory-read targets pair coatcheck's.
  for (const route of ["untouched", "read"]) {
    const pair = {
      id: `${f}/floor-${route}`,
      a: { cell: floor.id, route },
      b: { cell: bare.id, route: "untouched" },
    };
    const result = summarisePair(
      await measurePair(pair, { windows, duration: 2, warmup: 1, connections: 10 }),
    );
    const d = result.cpuDiff;
    console.log(
      `${framework}: floor ${route} vs bare: ${signed(d.median)} µs CPU/req (${signed(d.min)} to ${signed(d.max)} over ${result.windows} window pairs)${result.void ? ` VOID ${result.void}` : ""}; allocated ${kb(floorAlloc[route])} vs ${kb(bareAlloc)} bare`,
    );
  }
}
