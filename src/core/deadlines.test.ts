import { describe, expect, it } from "vitest";
import { DeadlineQueue } from "./deadlines.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("DeadlineQueue", () => {
  it("expires an operation that is still running once its limit has passed", async () => {
    const queue = new DeadlineQueue(20);
    const expired: string[] = [];
    queue.add(() => expired.push("a"));
    expect(expired).toEqual([]);
    await sleep(80);
    expect(expired).toEqual(["a"]);
    expect(queue.size).toBe(0);
  });

  it("never expires a settled operation", async () => {
    const queue = new DeadlineQueue(20);
    const expired: string[] = [];
    queue.add(() => expired.push("a")).settle();
    const b = queue.add(() => expired.push("b"));
    await sleep(80);
    b.settle();
    expect(expired).toEqual(["b"]);
  });

  it("gives each operation its own deadline, one timer for all", async () => {
    // Clock under the test's control: the timer only decides when to look.
    let now = 0;
    const queue = new DeadlineQueue(30, () => now);
    const expired: string[] = [];
    queue.add(() => expired.push("early"));
    now = 20;
    queue.add(() => expired.push("late"));
    now = 35; // past the first deadline (30), not the second (50)
    await sleep(80);
    expect(expired).toEqual(["early"]);
    now = 60;
    await sleep(80);
    expect(expired).toEqual(["early", "late"]);
  });

  it("forgets settled operations as it goes, so a busy store keeps a short queue", () => {
    const queue = new DeadlineQueue(60_000);
    for (let i = 0; i < 10_000; i++) queue.add(() => {}).settle();
    expect(queue.size).toBeLessThanOrEqual(1);
    const running = queue.add(() => {});
    for (let i = 0; i < 3_000; i++) queue.add(() => {}).settle();
    // Held behind the running one until it settles or expires.
    expect(queue.size).toBe(3_001);
    running.settle();
    queue.add(() => {}).settle();
    expect(queue.size).toBeLessThanOrEqual(1);
  });
});
