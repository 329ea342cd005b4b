import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Cluster } from "ioredis";
import { createCluster } from "redis";
import { execFileAsync, freePort, ping, type RedisServer, startRedisServer } from "./redis.js";

/**
 * Replicated Redis topologies for failover tests and scripts, started from the installed
 * redis-server binary on free loopback ports (never 6379) and torn down by `dispose()`:
 * a Cluster of primaries with one replica each, and Sentinel (one primary, replicas, sentinels).
 * Failure detection is tuned low (`timeoutMs`) so a promotion takes a few seconds.
 */

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function waitFor(what: string, check: () => Promise<boolean>, limitMs = 30_000) {
  const end = performance.now() + limitMs;
  while (!(await check().catch(() => false))) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** `INFO replication` of a node as a map. */
export async function replicationOf(node: RedisServer): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const line of (await node.cli("INFO", "replication")).split(/\r?\n/)) {
    const at = line.indexOf(":");
    if (at > 0) out[line.slice(0, at)] = line.slice(at + 1);
  }
  return out;
}

export interface ClusterTopology {
  readonly nodes: RedisServer[];
  /** Seed URLs for `redis_cluster_nodes`. */
  readonly seeds: string[];
  /** The slot of a key (CLUSTER KEYSLOT). */
  slotOf(key: string): Promise<number>;
  /** The node that is the primary of `slot` right now. */
  primaryOf(slot: number): Promise<RedisServer>;
  /** Resolves once every slot is served again and the cluster reports ok. */
  healthy(limitMs?: number): Promise<void>;
  dispose(): Promise<void>;
}

/** A Redis Cluster of `primaries` primaries with `replicas` (default 1) replicas each. */
export async function startCluster(
  options: { primaries?: number; replicas?: number; timeoutMs?: number } = {},
): Promise<ClusterTopology> {
  const primaries = options.primaries ?? 3;
  const replicas = options.replicas ?? 1;
  const nodes: RedisServer[] = [];
  for (let i = 0; i < primaries * (1 + replicas); i++) {
    nodes.push(
      await startRedisServer({
        args: [
          "--cluster-enabled",
          "yes",
          "--cluster-config-file",
          "nodes.conf",
          "--cluster-port",
          String(await freePort()),
          "--cluster-node-timeout",
          String(options.timeoutMs ?? 1000),
          // The other primaries keep serving while one slot range fails over.
          "--cluster-require-full-coverage",
          "no",
          // A replica may take over however long it was cut off: the test kills, it never partitions.
          "--cluster-replica-validity-factor",
          "0",
        ],
      }),
    );
  }
  const cli = (args: string[]) => execFileAsync("redis-cli", args);
  await cli([
    "--cluster",
    "create",
    ...nodes.map((n) => `127.0.0.1:${n.port}`),
    "--cluster-replicas",
    String(replicas),
    "--cluster-yes",
  ]);
  const alive = () => nodes.filter((n) => n.alive);
  const topology: ClusterTopology = {
    nodes,
    seeds: nodes.map((n) => n.url),
    async slotOf(key) {
      return Number(await (alive()[0] as RedisServer).cli("CLUSTER", "KEYSLOT", key));
    },
    async primaryOf(slot) {
      const { stdout } = await cli(["-p", String(alive()[0]?.port), "--json", "CLUSTER", "SLOTS"]);
      const ranges = JSON.parse(stdout) as Array<[number, number, [string, number]]>;
      const range = ranges.find(([from, to]) => slot >= from && slot <= to);
      const port = range?.[2][1];
      const node = nodes.find((n) => n.port === port);
      if (!node) throw new Error(`no primary for slot ${slot}`);
      return node;
    },
    async healthy(limitMs = 30_000) {
      await waitFor(
        "the cluster to report ok",
        async () => {
          for (const n of alive())
            if (!(await n.cli("CLUSTER", "INFO")).includes("cluster_state:ok")) return false;
          return true;
        },
        limitMs,
      );
    },
    async dispose() {
      await Promise.all(nodes.map((n) => n.dispose()));
    },
  };
  await topology.healthy();
  // Every primary has its replica in sync before the test starts writing.
  await waitFor("every replica to sync", async () => {
    let synced = 0;
    for (const n of nodes) {
      const r = await replicationOf(n);
      if (r.role === "slave" && r.master_link_status === "up") synced++;
    }
    return synced === primaries * replicas;
  });
  return topology;
}

export interface SentinelTopology {
  /** The first primary; after a failover one of `replicas` is. */
  readonly primary: RedisServer;
  readonly replicas: RedisServer[];
  /** `host:port` of each sentinel, for `redis_sentinels`. */
  readonly sentinels: string[];
  readonly name: string;
  /** The node the sentinels name as primary now. */
  currentPrimary(): Promise<RedisServer>;
  dispose(): Promise<void>;
}

/** One primary, `replicas` replicas and three sentinels (quorum 2) monitoring it as `name`. */
export async function startSentinel(
  options: { replicas?: number; timeoutMs?: number; name?: string } = {},
): Promise<SentinelTopology> {
  const name = options.name ?? "coatcheck";
  const primary = await startRedisServer();
  const replicas: RedisServer[] = [];
  for (let i = 0; i < (options.replicas ?? 2); i++) {
    replicas.push(
      await startRedisServer({ args: ["--replicaof", "127.0.0.1", String(primary.port)] }),
    );
  }
  await waitFor("the replicas to sync", async () => {
    for (const r of replicas)
      if ((await replicationOf(r)).master_link_status !== "up") return false;
    return true;
  });
  const procs: ChildProcess[] = [];
  const ports: number[] = [];
  const dir = await mkdtemp(join(tmpdir(), "coatcheck-sentinel-"));
  for (let i = 0; i < 3; i++) {
    const port = await freePort();
    const file = join(dir, `sentinel-${port}.conf`);
    const down = options.timeoutMs ?? 1000;
    await writeFile(
      file,
      [
        `port ${port}`,
        "bind 127.0.0.1",
        `dir ${dir}`,
        `logfile ${join(dir, `sentinel-${port}.log`)}`,
        `sentinel monitor ${name} 127.0.0.1 ${primary.port} 2`,
        `sentinel down-after-milliseconds ${name} ${down}`,
        `sentinel failover-timeout ${name} ${Math.max(3000, down * 3)}`,
        `sentinel parallel-syncs ${name} 2`,
        "",
      ].join("\n"),
    );
    const proc = spawn("redis-server", [file, "--sentinel"], { stdio: "ignore" });
    proc.on("error", () => {});
    procs.push(proc);
    ports.push(port);
  }
  for (const port of ports) await waitFor(`sentinel ${port}`, () => ping("127.0.0.1", port, 200));
  const all = [primary, ...replicas];
  const topology: SentinelTopology = {
    primary,
    replicas,
    sentinels: ports.map((p) => `127.0.0.1:${p}`),
    name,
    async currentPrimary() {
      const { stdout } = await execFileAsync("redis-cli", [
        "-p",
        String(ports[0]),
        "SENTINEL",
        "get-master-addr-by-name",
        name,
      ]);
      const port = Number(stdout.trim().split(/\s+/)[1]);
      const node = all.find((n) => n.port === port);
      if (!node) throw new Error(`the sentinels name port ${port} as primary`);
      return node;
    },
    async dispose() {
      for (const p of procs) p.kill("SIGKILL");
      await Promise.all(all.map((n) => n.dispose()));
      await rm(dir, { recursive: true, force: true });
    },
  };
  // The sentinels know each other and the replicas before anything is killed.
  await waitFor("the sentinels to see each other and the replicas", async () => {
    const { stdout } = await execFileAsync("redis-cli", [
      "-p",
      String(ports[0]),
      "SENTINEL",
      "master",
      name,
    ]);
    const lines = stdout.split("\n").map((l) => l.trim());
    const field = (k: string) => Number(lines[lines.indexOf(k) + 1]);
    return field("num-other-sentinels") === 2 && field("num-slaves") === replicas.length;
  });
  return topology;
}

/** A node-redis and an ioredis client on one Cluster topology, both connected and ready. */
export interface ClusterClients {
  node: ReturnType<typeof createCluster>;
  io: Cluster;
  /** Close both clients (the topology itself is the caller's). */
  close(): Promise<void>;
}

/** Connect one client of each library to `topology`, seeded from different nodes. */
export async function clusterClients(topology: ClusterTopology): Promise<ClusterClients> {
  const node = createCluster({ rootNodes: [{ url: topology.nodes[0]?.url as string }] });
  node.on("error", () => {});
  await node.connect();
  const io = new Cluster([{ host: "127.0.0.1", port: topology.nodes[1]?.port as number }], {
    enableOfflineQueue: true,
  });
  io.on("error", () => {});
  await new Promise<void>((resolve, reject) => {
    io.once("ready", resolve);
    io.once("error", reject);
  });
  return {
    node,
    io,
    async close() {
      await node.close().catch(() => {});
      io.disconnect();
    },
  };
}
