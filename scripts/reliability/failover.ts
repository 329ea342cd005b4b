import { cpus, loadavg } from "node:os";
import { startCluster, startSentinel } from "../../test/support/topology.js";
import {
  clusterPrimary,
  demoOn,
  type FailoverResult,
  runFailover,
  sentinelPrimary,
  type Target,
} from "./failover-lib.js";
import { option, table } from "./lib.js";

/**
 * A primary killed under load: `npm run reliability:failover [-- --rounds=3 --visitors=32]`.
 *
 * For each case (Cluster and Sentinel, each without and with `redis_wait_replicas = 1`) and each
 * round, starts a fresh topology on free ports (Cluster: 3 primaries + 1 replica each,
 * `cluster-node-timeout 1000`; Sentinel: 1 primary, 2 replicas, 3 sentinels,
 * `down-after-milliseconds 1000`), runs the demo app in this process on the environment
 * configuration, loads it with signed-in visitors and a stream of sign-ins, SIGKILLs a primary and
 * waits until the killed sessions are served again. Prints a Markdown table and exits 1 when an
 * answer was not 200/303/503, the killed slots did not recover, a session on another Cluster
 * primary saw a 503, or (with the knob on) a sign-in that answered 303 was lost.
 */

const rounds = option("rounds", 3);
const visitors = option("visitors", 32);
const LEAD_MS = 3000;
const TAIL_MS = 2000;

interface Case {
  name: string;
  wait: boolean;
  run(): Promise<FailoverResult>;
}

/** One round on a fresh topology: start it, load the demo, kill a primary, tear it all down. */
async function round<T extends { dispose(): Promise<void> }>(
  start: () => Promise<T>,
  envOf: (topology: T) => Record<string, string>,
  targetOf: (topology: T) => Promise<Target>,
  wait: boolean,
): Promise<FailoverResult> {
  const topology = await start();
  const { app, store } = demoOn({
    ...envOf(topology),
    ...(wait ? { COATCHECK_SESSION__REDIS_WAIT_REPLICAS: "1" } : {}),
  });
  try {
    await store.ready();
    return await runFailover({
      app,
      store,
      visitors,
      leadMs: LEAD_MS,
      tailMs: TAIL_MS,
      limitMs: 60_000,
      target: () => targetOf(topology),
    });
  } finally {
    await store.close();
    await topology.dispose();
  }
}

const clusterRound = (wait: boolean) =>
  round(
    () => startCluster(),
    (c) => ({ COATCHECK_SESSION__REDIS_CLUSTER_NODES: c.seeds.join(",") }),
    (c) => clusterPrimary(c),
    wait,
  );
const sentinelRound = (wait: boolean) =>
  round(
    () => startSentinel(),
    (s) => ({
      COATCHECK_SESSION__REDIS_SENTINELS: s.sentinels.join(","),
      COATCHECK_SESSION__REDIS_SENTINEL_NAME: s.name,
    }),
    (s) => sentinelPrimary(s),
    wait,
  );

const cases: Case[] = [
  { name: "Cluster", wait: false, run: () => clusterRound(false) },
  { name: "Cluster", wait: true, run: () => clusterRound(true) },
  { name: "Sentinel", wait: false, run: () => sentinelRound(false) },
  { name: "Sentinel", wait: true, run: () => sentinelRound(true) },
];

const s = (ms: number | null) => (ms === null ? "–" : (ms / 1000).toFixed(2));
const count = (r: Record<string, number>, status: string) => r[status] ?? 0;

async function main() {
  const startedAt = new Date();
  console.log(`# Failover (${startedAt.toISOString()})`);
  console.log(
    `\nMachine: ${cpus().length} cores, load average ${loadavg()[0]?.toFixed(1)} at start; ${visitors} signed-in visitors + 1 sign-in stream, ${rounds} round(s) per case.\n`,
  );
  const failures: string[] = [];
  const rows: Array<Array<string | number>> = [];
  for (const c of cases) {
    for (let round = 1; round <= rounds; round++) {
      const r = await c.run();
      const label = `${c.name}${c.wait ? ", WAIT 1" : ""} #${round}`;
      rows.push([
        label,
        r.requests,
        `${s(r.hit.first503)} → ${s(r.hit.last503)}`,
        s(r.hit.recoveredAt),
        `${count(r.hit.statuses, "503")} (${r.hit.locked} locked)`,
        count(r.other.statuses, "503"),
        `${r.signIns.before + r.signIns.during + r.signIns.after}`,
        r.signIns.lost,
        r.lostVisitors,
        r.hit.bad + r.other.bad + r.signin.bad,
      ]);
      if (r.hit.bad + r.other.bad + r.signin.bad > 0)
        failures.push(`${label}: answers other than 200/303/503`);
      if (!r.recovered) failures.push(`${label}: the killed slots did not recover`);
      // Sentinel has one primary: its "other" answers are the ones before the kill.
      if (c.name === "Cluster" && count(r.other.statuses, "503") > 0)
        failures.push(`${label}: a session on another primary answered 503`);
      if (c.wait && (r.signIns.lost > 0 || r.lostVisitors > 0))
        failures.push(`${label}: a 303 sign-in was lost with WAIT on`);
      console.error(`${label}: ${JSON.stringify(r)}`);
    }
  }
  console.log(
    table(
      [
        "case",
        "requests",
        "503 window (s after kill)",
        "first 200 after it (s)",
        "503s on the killed primary",
        "503s on other primaries (Cluster) / before the kill (Sentinel)",
        "sign-ins (303)",
        "sign-ins lost",
        "looping sessions lost",
        "other answers",
      ],
      rows,
    ),
  );
  console.log(failures.length ? `\nFAILED: ${failures.join("; ")}` : "\nAll checks passed.");
  process.exitCode = failures.length ? 1 : 0;
}

await main();
