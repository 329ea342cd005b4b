import { describe, expect, it } from "vitest";
import { BurstLimiter, formatEntry } from "./log.js";

describe("formatEntry", () => {
  it("prints the message once, then the fields", () => {
    expect(formatEntry({ reason: "token_mismatch", path: "/cart add" }, "CSRF check failed")).toBe(
      '[coatcheck] CSRF check failed reason=token_mismatch path="/cart add"',
    );
  });

  it("keeps an error's cause chain", () => {
    const err = new Error("save failed", { cause: new Error("connect ECONNREFUSED") });
    expect(formatEntry({ err }, "store unavailable")).toBe(
      '[coatcheck] store unavailable err="Error: save failed (cause: Error: connect ECONNREFUSED)"',
    );
  });
});

describe("BurstLimiter", () => {
  it("logs the first of a burst and counts the rest", () => {
    const clock = { t: 0 };
    const limiter = new BurstLimiter(1000, () => clock.t);
    expect(limiter.admit("store")).toBe(0);
    expect(limiter.admit("store")).toBeNull();
    expect(limiter.admit("store")).toBeNull();
    expect(limiter.admit("csrf")).toBe(0);
    clock.t = 1000;
    expect(limiter.admit("store")).toBe(2);
    expect(limiter.admit("store")).toBeNull();
  });
});
