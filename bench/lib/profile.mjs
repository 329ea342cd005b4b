/**
 * A short CPU profile of one route: the cell runs under `node --cpu-prof` while autocannon loads
 * the route; the profile is written when the cell exits, then summarised by self time.
 */
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import autocannon from "autocannon";
import { startCell } from "./child.mjs";

export async function profileRoute(cell, { path, seconds, connections, root }) {
  const dir = await mkdtemp(join(tmpdir(), "coatcheck-prof-"));
  const server = await startCell(cell, {
    execArgv: ["--cpu-prof", "--cpu-prof-dir", dir, "--cpu-prof-interval", "100"],
  });
  let served = 0;
  try {
    const login = await fetch(`${server.base}/login`);
    const cookie = login.headers
      .getSetCookie()
      .map((line) => line.split(";", 1)[0])
      .join("; ");
    const check = await (await fetch(`${server.base}${path}`, { headers: { cookie } })).text();
    if (check !== "alice") throw new Error(`profile: ${path} answered "${check}", not "alice"`);
    const result = await autocannon({
      url: `${server.base}${path}`,
      headers: { cookie },
      connections,
      duration: seconds,
      expectBody: "alice",
    });
    served = result.requests.total;
  } finally {
    await server.stop();
  }
  const [file] = (await readdir(dir)).filter((name) => name.endsWith(".cpuprofile"));
  if (file === undefined) throw new Error("profile: the cell wrote no .cpuprofile");
  const profile = JSON.parse(await readFile(join(dir, file), "utf8"));
  await rm(dir, { recursive: true, force: true });
  return { served, ...summarise(profile, root) };
}

/** Self time per function, and the share of each area (coatcheck, framework, Node, idle). */
function summarise(profile, root) {
  const byNode = new Map(profile.nodes.map((node) => [node.id, node]));
  const self = new Map();
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = profile.timeDeltas[i] ?? 0;
    total += dt;
    self.set(profile.samples[i], (self.get(profile.samples[i]) ?? 0) + dt);
  }
  const functions = new Map();
  const areas = { coatcheck: 0, framework: 0, node: 0, idle: 0, gc: 0, other: 0 };
  for (const [id, micros] of self) {
    const { callFrame } = byNode.get(id);
    const area = areaOf(callFrame);
    areas[area] += micros;
    const where = callFrame.url
      ? `${shorten(callFrame.url, root)}:${callFrame.lineNumber + 1}`
      : "(native)";
    const key = `${callFrame.functionName || "(anonymous)"} ${where}`;
    const entry = functions.get(key) ?? {
      name: callFrame.functionName || "(anonymous)",
      where,
      area,
      micros: 0,
    };
    entry.micros += micros;
    functions.set(key, entry);
  }
  const ranked = [...functions.values()].sort((a, b) => b.micros - a.micros);
  return {
    totalMicros: total,
    areas,
    top: ranked.slice(0, 12),
    coatcheck: ranked.filter((f) => f.area === "coatcheck").slice(0, 10),
  };
}

function areaOf({ url, functionName }) {
  if (functionName === "(idle)") return "idle";
  if (functionName === "(garbage collector)") return "gc";
  if (url.includes("/dist/") && !url.includes("node_modules")) return "coatcheck";
  if (url.includes("node_modules")) return "framework";
  if (url.startsWith("node:")) return "node";
  return "other";
}

function shorten(url, root) {
  const path = url.startsWith("file://") ? new URL(url).pathname : url;
  if (path.startsWith("/")) {
    const rel = relative(root, path);
    return rel.replace(/^bench\/node_modules\//, "");
  }
  return path;
}
