import { expect, test } from "vitest";

function load(): never {
  throw new Error("cannot load");
}
load();
test("never collected", () => expect(1).toBe(1));
