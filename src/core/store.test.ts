import { describe, expect, test } from "vitest";
import { inheritsNothing, newFields } from "./store.js";

describe("newFields", () => {
  test("a record inherits nothing: hostile key names are plain keys of its own", () => {
    const fields = newFields();
    expect("toString" in fields).toBe(false);
    expect("hasOwnProperty" in fields).toBe(false);
    expect(fields.constructor).toBeUndefined();
    for (const key of ["__proto__", "constructor", "prototype", "toString"])
      fields[key] = `"${key}"`;
    expect(Object.keys(fields)).toEqual(["__proto__", "constructor", "prototype", "toString"]);
    expect(Object.hasOwn(fields, "__proto__")).toBe(true);
    expect(inheritsNothing(fields)).toBe(true);
    expect(({} as Record<string, unknown>).prototype).toBeUndefined();
    // Copies made the usual ways keep those keys as data.
    expect(JSON.parse(JSON.stringify(fields))).toEqual(Object.assign(Object.create(null), fields));
    expect(Object.keys(Object.assign(newFields(), fields))).toHaveLength(4);
  });

  test("the shared prototype cannot be changed through a record", () => {
    const proto = Object.getPrototypeOf(newFields()) as object;
    expect(Object.isFrozen(proto)).toBe(true);
    expect(Object.getPrototypeOf(proto)).toBeNull();
    expect(Reflect.ownKeys(proto)).toEqual([]);
    expect(Reflect.set(proto, "polluted", "yes")).toBe(false);
    expect("polluted" in newFields()).toBe(false);
  });

  test("inheritsNothing tells records apart from ordinary objects", () => {
    expect(inheritsNothing(Object.create(null) as object)).toBe(true);
    expect(inheritsNothing(newFields())).toBe(true);
    expect(inheritsNothing({})).toBe(false);
    expect(inheritsNothing(Object.create(Object.create(null) as object) as object)).toBe(false);
  });
});
