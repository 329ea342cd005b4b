import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { Hono } from "hono";
import { expect, test } from "vitest";
import { getSession, session } from "../../src/adapters/hono.js";
import { createSessionEngine } from "../../src/setup.js";
import { MemoryStore } from "../../src/stores/memory.js";
import { fakeClock } from "../support/clock.js";

/**
 * Soak, short version of `npm run reliability:soak`: a stream of new sessions with a 5 s expiry
 * into a capped MemoryStore, through Hono, over six simulated minutes (a fake clock, so the run
 * takes seconds). Phase A sends 50 new sessions per simulated second (about 250 alive: expiry
 * governs); phase B sends 500 per second (2500 would be alive: the cap of 1000 governs). The record
 * count must level off in each phase and never exceed the cap; the expiry heap stays proportional
 * to the records; the JS heap after a full GC does not grow with the number of sessions served.
 */

const EXPIRY_SECS = 5;
const CAP = 1000;

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

function heapAfterGc(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

test("memory store under a stream of new sessions: records and heap level off, the cap holds", {
  timeout: 120_000,
}, async () => {
  const clock = fakeClock();
  const store = new MemoryStore({ maxSessions: CAP });
  const engine = createSessionEngine({
    env: {},
    secure: false,
    csrf: { enabled: false },
    expirySecs: EXPIRY_SECS,
    store,
    now: clock.now,
  });
  const app = new Hono();
  app.use(session(engine));
  app.get("/visit", async (c) => {
    await getSession(c).insert("cart", { items: [1, 2, 3], note: "x".repeat(200) });
    return c.text("welcome");
  });

  const samples: Array<{ phase: string; t: number; records: number; scheduled: number }> = [];
  let t = 0;
  let maxRecords = 0;
  let badSchedule = 0;
  const run = async (phase: string, perSecond: number, seconds: number) => {
    for (let s = 0; s < seconds; s++) {
      for (let i = 0; i < perSecond; i++) {
        const res = await app.request("/visit");
        expect(res.status).toBe(200);
        const { records, scheduled } = store.stats();
        maxRecords = Math.max(maxRecords, records);
        if (scheduled > 2 * records + 1024) badSchedule++;
        clock.advance(1000 / perSecond);
      }
      t++;
      if (t % 20 === 0) samples.push({ phase, t, ...store.stats() });
    }
  };

  await run("A", 50, 300);
  const phaseA = samples.slice();
  const heapA = heapAfterGc();
  await run("B", 500, 40);
  const heapMid = heapAfterGc();
  await run("B", 500, 40);
  const heapEnd = heapAfterGc();

  console.log(
    `soak (simulated): ${samples.length} samples\n| phase | t (s) | records | scheduled |\n| --- | --- | --- | --- |\n` +
      samples.map((s) => `| ${s.phase} | ${s.t} | ${s.records} | ${s.scheduled} |`).join("\n") +
      `\nheap after GC: end of A ${(heapA / 2 ** 20).toFixed(1)} MB, mid B ${(heapMid / 2 ** 20).toFixed(1)} MB, end of B ${(heapEnd / 2 ** 20).toFixed(1)} MB`,
  );

  // Phase A: 50/s × 5 s ≈ 250 alive; expired records are reclaimed as new ones arrive.
  for (const s of phaseA) expect(s.records).toBeGreaterThanOrEqual(240);
  for (const s of phaseA) expect(s.records).toBeLessThanOrEqual(260);
  // Phase B: the cap is reached and held, never exceeded.
  expect(maxRecords).toBe(CAP);
  for (const s of samples.filter((x) => x.phase === "B")) expect(s.records).toBe(CAP);
  expect(badSchedule).toBe(0);
  // 20 000 more sessions served between the two readings; a leak of even 500 bytes each would
  // show as 10 MB.
  expect(heapEnd - heapMid).toBeLessThan(8 * 2 ** 20);
});
