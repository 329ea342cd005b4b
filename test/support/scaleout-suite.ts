import { expect, test } from "vitest";
import {
  logoutEverywhere,
  parallelKeys,
  parallelLockedCounter,
  roundRobinCounters,
} from "../../scripts/reliability/scaleout-checks.js";

/** How much traffic the shared scale-out checks send. */
export interface ScaleoutSizes {
  /** Clients of the round-robin counter, each sending 15 increments over three processes. */
  clients: number;
  /** Parallel writes of different keys. */
  keys: number;
}

/**
 * The scale-out checks every shared store must pass with three app processes behind `bases()`:
 * exact round-robin counts, no lost parallel key writes, locked increments handed out once, and a
 * logout seen by every process at once.
 */
export function describeScaleoutChecks(bases: () => string[], sizes: ScaleoutSizes): void {
  test("a counter incremented round-robin through three processes ends at the exact count", {
    timeout: 60_000,
  }, async () => {
    const run = await roundRobinCounters(bases(), sizes.clients, 15, 60);
    expect(run.failed).toEqual({});
    expect(run.ok).toBe(sizes.clients * 15);
    expect(run.wrong).toBe(0);
    expect(run.perInstance.every((n) => n === (sizes.clients * 15) / 3)).toBe(true);
  });

  test("parallel writes of different keys through three processes: none lost", {
    timeout: 60_000,
  }, async () => {
    expect(await parallelKeys(bases(), sizes.keys)).toEqual({
      requests: sizes.keys,
      failed: 0,
      lost: 0,
    });
  });

  test("parallel locked increments through three processes: each count handed out once", {
    timeout: 60_000,
  }, async () => {
    expect(await parallelLockedCounter(bases(), 30)).toEqual({
      requests: 30,
      failed: 0,
      counter: 30,
      distinct: true,
    });
  });

  test("a logout through one process is refused by the other two at once", {
    timeout: 60_000,
  }, async () => {
    const r = await logoutEverywhere(bases());
    expect(r.signedInEverywhere).toBe(true);
    expect(r.logoutStatus).toBe(200);
    expect(r.whoamiAfter).toEqual([401, 401]);
    // The old cookie no longer has a session, so its CSRF check fails before any write.
    expect(r.writesAfter).toEqual([403, 403]);
    expect(r.resurrected).toBe(false);
  });
}
