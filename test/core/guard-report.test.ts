import { expect, test } from "vitest";
import { guardStore } from "../../src/core/store.js";

// A report (logger / event subscriber) that throws while a timeout is being reported: the operation
// still rejects (with that throw), and the shared deadline timer goes on expiring the others.
test("a throwing report on timeout still rejects the operation, nothing escapes", async () => {
  const never = new Promise<never>(() => {});
  const store = { load: () => never } as never;
  const ops = guardStore(store, {
    timeoutMs: 20,
    warming: () => null,
    report: () => {
      throw new Error("logger broke");
    },
  }) as unknown as { load: (id: string, now: number) => Promise<unknown> };
  const outcome = await Promise.race([
    ops.load("x", 0).then(
      () => "resolved",
      (e: unknown) => `rejected: ${(e as Error).message}`,
    ),
    new Promise((r) => setTimeout(() => r("still pending after 300 ms"), 300)),
  ]);
  expect(outcome).toMatch(/^rejected/);
});

test("one throwing report does not stop the timer expiring the other stalled operations", async () => {
  const never = new Promise<never>(() => {});
  const store = { load: () => never } as never;
  let calls = 0;
  const ops = guardStore(store, {
    timeoutMs: 20,
    warming: () => null,
    report: () => {
      calls++;
      if (calls === 1) throw new Error("logger broke once");
    },
  }) as unknown as { load: (id: string, now: number) => Promise<unknown> };
  void ops.load("first", 0).catch(() => {});
  const second = ops.load("second", 0).then(
    () => "resolved",
    () => "rejected",
  );
  const outcome = await Promise.race([
    second,
    new Promise((r) => setTimeout(() => r("still pending after 300 ms"), 300)),
  ]);
  expect(outcome).toBe("rejected");
});
