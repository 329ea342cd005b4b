import { beforeAll, describe, expect, test } from "vitest";

describe("a suite whose beforeAll throws", () => {
  beforeAll(() => {
    throw new Error("Chromium not found");
  });
  test("never runs 1", () => expect(1).toBe(1));
  test("never runs 2", () => expect(1).toBe(1));
});

describe("a healthy suite beside it", () => {
  test("passes", () => expect(1).toBe(1));
  test.skipIf(true)("is skipped on purpose", () => expect(1).toBe(1));
});
