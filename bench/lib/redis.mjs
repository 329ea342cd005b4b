/**
 * The bench's own redis-server on a free loopback port, so no other client's commands pollute the
 * counts, and the probes that read them: INFO commandstats deltas under load, and MONITOR for round
 * trips per request.
 */
import { spawn } from "node:child_process";
import { connect } from "node:net";
import { createClient } from "redis";
import { freePort, sleep } from "./util.mjs";

/** Start redis-server with persistence off; resolves once it answers PING. */
export async function startRedis() {
  const port = await freePort();
  const child = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    { stdio: "ignore" },
  );
  const url = `redis://127.0.0.1:${port}`;
  const client = createClient({ url });
  client.on("error", () => {});
  for (let attempt = 0; ; attempt++) {
    try {
      await client.connect();
      break;
    } catch (error) {
      if (attempt > 50) throw new Error(`redis-server did not start: ${error.message}`);
      await sleep(100);
    }
  }
  const info = await client.sendCommand(["INFO", "server"]);
  const version = /redis_version:(\S+)/.exec(info)?.[1] ?? "unknown";
  return {
    url,
    port,
    version,
    client,
    async stop() {
      await client.close().catch(() => {});
      child.kill("SIGTERM");
    },
  };
}

const OWN = new Set(["info", "config", "dbsize", "flushall", "ping", "client", "hello", "select"]);

/**
 * Whether a `commandstats` name is one of the runner's own commands. Redis 7 names subcommands
 * `command|subcommand` (the runner's `CONFIG RESETSTAT` is `config|resetstat`).
 */
export const isRunnerCommand = (name) => OWN.has(name.split("|", 1)[0]);

/**
 * Per-command call counts and microseconds since the last CONFIG RESETSTAT, without the runner's
 * own commands. Commands run inside scripts are listed too (a script's own usec includes theirs).
 */
export async function commandStats(client) {
  const text = await client.sendCommand(["INFO", "commandstats"]);
  const calls = {};
  const usec = {};
  for (const match of text.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) {
    if (isRunnerCommand(match[1])) continue;
    calls[match[1]] = Number(match[2]);
    usec[match[1]] = Number(match[3]);
  }
  return { calls, usec };
}

/**
 * The server's own counters: CPU time of the redis-server process (`INFO cpu` used_cpu_user +
 * used_cpu_sys, in µs) and the number of key modifications (`rdb_changes_since_last_save`, which
 * counts every write, expiry updates included, whether or not persistence is on).
 */
export async function serverCounters(client) {
  const cpu = await client.sendCommand(["INFO", "cpu"]);
  const persistence = await client.sendCommand(["INFO", "persistence"]);
  const field = (text, name) => Number(new RegExp(`^${name}:([\\d.]+)`, "m").exec(text)?.[1]);
  return {
    cpuMicros: Math.round((field(cpu, "used_cpu_user") + field(cpu, "used_cpu_sys")) * 1e6),
    changes: field(persistence, "rdb_changes_since_last_save"),
  };
}

/**
 * Watch every command the server runs while `during` runs. Returns the client-issued commands,
 * grouped into round trips (a MULTI…EXEC block is one), the commands scripts ran inside, and per
 * command name how many were sent by a client and how many ran inside a script.
 * Pipelined commands outside MULTI are counted one round trip each, so this is an upper bound.
 */
export async function monitor(port, during) {
  const socket = connect(port, "127.0.0.1");
  let buffer = "";
  socket.setEncoding("utf8");
  socket.on("data", (chunk) => {
    buffer += chunk;
  });
  await new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  socket.write("MONITOR\r\n");
  await sleep(50);
  await during();
  await sleep(100);
  socket.destroy();
  let roundTrips = 0;
  let topLevel = 0;
  let inScripts = 0;
  /** Per command name: how often a client sent it and how often a script ran it. */
  const byName = {};
  const inMulti = new Set();
  for (const line of buffer.split("\r\n")) {
    const match = /^\+\d+\.\d+ \[\d+ ([^\]]+)\] "([^"]+)"/.exec(line);
    if (match === null) continue;
    const [, source, name] = match;
    const command = name.toLowerCase();
    byName[command] ??= { client: 0, lua: 0 };
    if (source === "lua") {
      inScripts++;
      byName[command].lua++;
      continue;
    }
    topLevel++;
    byName[command].client++;
    if (command === "multi") {
      inMulti.add(source);
      roundTrips++;
    } else if (command === "exec" || command === "discard") {
      inMulti.delete(source);
    } else if (!inMulti.has(source)) {
      roundTrips++;
    }
  }
  return { roundTrips, topLevel, inScripts, byName };
}
