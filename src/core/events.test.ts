import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { describe, expect, it } from "vitest";
import { EVENTS, idHash, listening, publish } from "./events.js";

describe("events", () => {
  it("builds nothing when nobody listens", () => {
    let built = 0;
    publish(EVENTS.csrfRejected, () => {
      built++;
      return { reason: "token_missing", method: "POST", path: "/" };
    });
    expect(built).toBe(0);
    expect(listening(EVENTS.csrfRejected)).toBe(false);
  });

  it("delivers the message to subscribers of the named channel", () => {
    const got: unknown[] = [];
    const listener = (message: unknown) => got.push(message);
    subscribe("coatcheck:csrf:rejected", listener);
    try {
      expect(listening(EVENTS.csrfRejected)).toBe(true);
      publish(EVENTS.csrfRejected, () => ({ reason: "cross_site", method: "POST", path: "/x" }));
      publish(EVENTS.storeError, () => ({ operation: "load", kind: "timeout", message: "late" }));
    } finally {
      unsubscribe("coatcheck:csrf:rejected", listener);
    }
    expect(got).toEqual([{ reason: "cross_site", method: "POST", path: "/x" }]);
  });

  it("hashes ids to a short stable handle that is not the id", () => {
    const id = "a".repeat(32);
    expect(idHash(id)).toMatch(/^[0-9a-f]{12}$/);
    expect(idHash(id)).toBe(idHash(id));
    expect(idHash(id)).not.toBe(idHash("b".repeat(32)));
    expect(id).not.toContain(idHash(id));
  });

  it("every channel name is under coatcheck:", () => {
    for (const name of Object.values(EVENTS)) expect(name).toMatch(/^coatcheck:[a-z]+:[a-z]+$/);
  });
});
