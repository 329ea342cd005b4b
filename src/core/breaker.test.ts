import { describe, expect, it } from "vitest";
import { Breaker } from "./breaker.js";

function breaker(threshold = 3, openMs = 100, maxOpenMs = 400) {
  const clock = { t: 1_000 };
  const b = new Breaker({ threshold, openMs, maxOpenMs }, () => clock.t);
  return { b, clock };
}

describe("Breaker", () => {
  it("stays closed below the threshold, and a success resets the count", () => {
    const { b } = breaker();
    b.timedOut();
    b.timedOut();
    b.succeeded();
    b.timedOut();
    b.timedOut();
    expect(b.state).toBe("closed");
    expect(b.admit()).toBeNull();
  });

  it("opens after consecutive timeouts and refuses with the time left", () => {
    const { b, clock } = breaker();
    for (let i = 0; i < 3; i++) b.timedOut();
    expect(b.state).toBe("open");
    clock.t += 30;
    expect(b.admit()).toEqual({ retryAfterMs: 70 });
  });

  it("lets exactly one probe through after the back-off; its success closes", () => {
    const { b, clock } = breaker();
    for (let i = 0; i < 3; i++) b.timedOut();
    clock.t += 100;
    expect(b.admit()).toBeNull();
    expect(b.state).toBe("probing");
    expect(b.admit()).not.toBeNull();
    b.succeeded();
    expect(b.state).toBe("closed");
    expect(b.admit()).toBeNull();
  });

  it("doubles the back-off when the probe times out, up to the cap", () => {
    const { b, clock } = breaker();
    for (let i = 0; i < 3; i++) b.timedOut();
    const waits: number[] = [];
    for (let round = 0; round < 4; round++) {
      const refusal = b.admit();
      waits.push(refusal?.retryAfterMs ?? -1);
      clock.t += refusal?.retryAfterMs ?? 0;
      expect(b.admit()).toBeNull();
      b.timedOut();
    }
    expect(waits).toEqual([100, 200, 400, 400]);
    clock.t += 400;
    expect(b.admit()).toBeNull();
    b.succeeded();
    for (let i = 0; i < 3; i++) b.timedOut();
    expect(b.admit()).toEqual({ retryAfterMs: 100 });
  });

  it("never opens with threshold 0", () => {
    const { b } = breaker(0);
    for (let i = 0; i < 50; i++) b.timedOut();
    expect(b.state).toBe("closed");
    expect(b.admit()).toBeNull();
  });
});
