/**
 * Redis work per save, without HTTP: what redis-server spends on a request that loads a session
 * and saves one changed key, the store called directly by 10 concurrent callers against the
 * bench's own redis-server. Three variants, interleaved over several rounds:
 * - `full script`: the save without the loaded metadata (every save before the short script);
 * - `short script`: the save as the engine makes it, with the loaded metadata, which lets a
 *   session without an idle timeout take the short update script;
 * - `GET + SET`: a read and a whole-value write of the same data, what a store without per-key
 *   writes sends, for scale.
 *
 *   node bench/redis-save.mjs [--rounds 4] [--requests 20000]
 *
 * Prints per variant the median over rounds of redis-server CPU (`INFO cpu`) and of command time
 * (`INFO commandstats`, the commands the callers sent) per request. Needs `npm run build` (it imports dist/). About 30 seconds.
 */
import { parseArgs } from "node:util";
import { fromDist } from "./lib/coatcheck.mjs";
import { commandStats, serverCounters, startRedis } from "./lib/redis.mjs";
import { median } from "./lib/util.mjs";

const { values: flags } = parseArgs({
  options: {
    rounds: { type: "string", default: "4" },
    requests: { type: "string", default: "20000" },
  },
});
const requests = Number(flags.requests);
const { RedisStore } = await fromDist("stores/redis.js");
const redis = await startRedis();
const store = new RedisStore(redis.client, { keyPrefix: "save:" });
const now0 = Date.now();
const meta = { createdAt: now0, absoluteAt: now0 + 86_400_000, idleMs: 0 };
const ids = Array.from({ length: 100 }, (_, i) => `session-${i}`);
for (const id of ids) {
  const set = { count: "0", user: '"alice"' };
  await store.write(id, { set, del: [], meta }, "create", now0);
  await redis.client.sendCommand([
    "SET",
    `plain:${id}`,
    JSON.stringify({ count: 0, user: "alice" }),
  ]);
}

let n = 0;
const VARIANTS = {
  "full script": async (id) => {
    const now = Date.now();
    await store.load(id, now);
    await store.write(id, { set: { count: String(n) }, del: [] }, "update", now);
  },
  "short script": async (id) => {
    const now = Date.now();
    const loaded = await store.load(id, now);
    await store.write(
      id,
      { set: { count: String(n) }, del: [], loaded: loaded.meta },
      "update",
      now,
    );
  },
  "GET + SET": async (id) => {
    const value = JSON.parse(await redis.client.sendCommand(["GET", `plain:${id}`]));
    value.count = n;
    await redis.client.sendCommand(["SET", `plain:${id}`, JSON.stringify(value), "EX", "86400"]);
  },
};

const CLIENT_ISSUED = ["hgetall", "evalsha", "eval", "get", "set"];

async function measure(run) {
  await redis.client.sendCommand(["CONFIG", "RESETSTAT"]);
  const before = await serverCounters(redis.client);
  n = 0;
  const caller = async () => {
    while (n < requests) await run(ids[n++ % ids.length]);
  };
  await Promise.all(Array.from({ length: 10 }, caller));
  const after = await serverCounters(redis.client);
  const { usec } = await commandStats(redis.client);
  // Commands a script runs are listed too and are inside the script's own time: leave them out.
  const commandUsec = CLIENT_ISSUED.reduce((sum, name) => sum + (usec[name] ?? 0), 0);
  return { cpu: (after.cpuMicros - before.cpuMicros) / requests, command: commandUsec / requests };
}

const results = Object.fromEntries(Object.keys(VARIANTS).map((name) => [name, []]));
for (let round = 0; round < Number(flags.rounds); round++) {
  for (const [name, run] of Object.entries(VARIANTS)) results[name].push(await measure(run));
}
console.log(`redis-server ${redis.version}, ${requests} requests per round, 10 callers`);
for (const [name, rounds] of Object.entries(results)) {
  const cpu = median(rounds.map((r) => r.cpu)).toFixed(2);
  const command = median(rounds.map((r) => r.command)).toFixed(2);
  console.log(
    `${name.padEnd(13)} redis-server CPU ${cpu} µs/request, command time ${command} µs/request`,
  );
}
await redis.stop();
