import { describe, expect, test } from "vitest";
import { SessionValueError } from "../../src/core/errors.js";
import type { SessionMeta } from "../../src/core/expiry.js";
import { FlashMessage, FlashMessages } from "../../src/core/flash.js";
import { generateId } from "../../src/core/id.js";
import { storeCases } from "../auth/stores.js";
import { harnessPerTest } from "../support/engine-harness.js";

const DAY = 86_400_000;
const YEAR = 365 * DAY;

function deepArray(depth: number): string {
  return `${"[".repeat(depth)}${"]".repeat(depth)}`;
}

/** Hostile or oversized records and values: refused on insert, corrupt (and deleted) when read. */
describe.each(storeCases)("stored records and limits on the $name store", ({ make }) => {
  const setup = harnessPerTest(make);

  /** A record written straight into the store, as a forger with store access could. */
  async function plant(
    h: Awaited<ReturnType<typeof setup>>,
    meta: (now: number) => SessionMeta,
    fields: Record<string, string> = { user: '"mallory"' },
  ): Promise<string> {
    const id = generateId();
    const now = h.clock.now();
    const set = Object.assign(Object.create(null) as Record<string, string>, fields);
    expect(await h.store.write(id, { set, del: [], meta: meta(now) }, "create", now)).toBe(true);
    return id;
  }

  test.each([
    [
      "created a year in the future",
      (now: number) => ({ createdAt: now + YEAR, absoluteAt: now + YEAR + DAY, idleMs: 0 }),
    ],
    ["without any deadline", (now: number) => ({ createdAt: now, absoluteAt: 0, idleMs: 0 })],
    [
      "with a deadline beyond 400 days",
      (now: number) => ({ createdAt: now, absoluteAt: now + 500 * DAY, idleMs: 0 }),
    ],
  ])("a record %s is corrupt: not served, deleted, logged once", async (_name, meta) => {
    const h = await setup();
    const id = await plant(h, meta);
    expect(await h.contents(id)).toEqual({});
    expect(h.warnings.filter((w) => w.includes("corrupt"))).toHaveLength(1);
    await new Promise((r) => setImmediate(r));
    expect(await h.store.load(id, h.clock.now())).toBeNull();
    expect(await h.contents(id)).toEqual({});
    expect(h.warnings.filter((w) => w.includes("corrupt"))).toHaveLength(1);
  });

  test.each([
    ["a 5 MB value", { big: JSON.stringify("x".repeat(5 * 1024 * 1024)) }, /max_value_bytes/],
    ["a value nested 10,000 deep", { deep: deepArray(10_000) }, /max_depth/],
    [
      "more than max_session_bytes in all",
      Object.fromEntries(
        Array.from({ length: 5 }, (_, i) => [`k${i}`, JSON.stringify("y".repeat(60_000))]),
      ),
      /max_session_bytes/,
    ],
  ])(
    "a stored record holding %s is corrupt and never reaches the handler",
    async (_name, fields, why) => {
      const h = await setup();
      const id = await plant(
        h,
        (now) => ({ createdAt: now, absoluteAt: now + DAY, idleMs: 0 }),
        fields,
      );
      expect(await h.contents(id)).toEqual({});
      expect(h.warnings.join("\n")).toMatch(why);
    },
  );

  test("a record is judged by its UTF-8 bytes, not its length", async () => {
    const h = await setup();
    const at = (now: number) => ({ createdAt: now, absoluteAt: now + DAY, idleMs: 0 });
    // 5 × 32,000 characters: under max_session_bytes (262,144) in ASCII, over it as 2-byte "é".
    const five = (c: string) =>
      Object.fromEntries(
        Array.from({ length: 5 }, (_, i) => [`k${i}`, JSON.stringify(c.repeat(32_000))]),
      );
    const ascii = await plant(h, at, five("y"));
    expect(Object.keys(await h.contents(ascii))).toHaveLength(5);
    const accented = await plant(h, at, five("é"));
    expect(await h.contents(accented)).toEqual({});
    expect(h.warnings.join("\n")).toMatch(/the record is 3200\d{2} bytes, over max_session_bytes/);
  });

  test("an insert into a loaded record counts what it holds, removals included", async () => {
    const h = await setup();
    const id = await plant(
      h,
      (now) => ({ createdAt: now, absoluteAt: now + DAY, idleMs: 0 }),
      Object.fromEntries(
        Array.from({ length: 4 }, (_, i) => [`k${i}`, JSON.stringify("y".repeat(60_000))]),
      ),
    );
    const error = await h
      .request(id, async (s) => {
        await s.remove("k0");
        await s.insert("a", "z".repeat(60_000));
        await s.insert("b", "z".repeat(60_000));
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SessionValueError);
    expect((error as SessionValueError).key).toBe("b");
  });

  test("inserting over max_value_bytes is an error naming the key and the limit", async () => {
    const h = await setup();
    const error = await h
      .request(null, (s) => s.insert("avatar", "x".repeat(1024 * 1024)))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SessionValueError);
    expect((error as SessionValueError).key).toBe("avatar");
    expect((error as Error).message).toMatch(/"avatar".*max_value_bytes \(65536\)/);
  });

  test("inserting past max_session_bytes is an error naming the key and the limit", async () => {
    const h = await setup();
    const error = await h
      .request(null, async (s) => {
        for (let i = 0; i < 10; i++) await s.insert(`part${i}`, "z".repeat(60_000));
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SessionValueError);
    expect((error as Error).message).toMatch(/"part4".*max_session_bytes \(262144\)/);
  });

  test.each([
    ["a Map", new Map([["a", 1]]), /Map/],
    ["a Set", new Set([1]), /Set/],
    ["a Date", new Date(0), /Date/],
    ["NaN", { n: Number.NaN }, /NaN/],
    ["Infinity", [Number.POSITIVE_INFINITY], /Infinity/],
    ["a nested undefined", { a: { b: undefined } }, /value\.a\.b is undefined/],
    ["an array hole", new Array(3), /hole/],
    ["a function", { f: () => 1 }, /function/],
    [
      "a value nested deeper than max_depth",
      JSON.parse(deepArray(40)) as unknown,
      /max_depth \(32\)/,
    ],
  ])("insert refuses %s, naming the key and the type", async (_name, value, type) => {
    const h = await setup();
    const error = await h.request(null, (s) => s.insert("prefs", value)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SessionValueError);
    expect((error as Error).message).toMatch(/"prefs"/);
    expect((error as Error).message).toMatch(type);
  });

  test("a session keeps at most max_flash_messages flash messages: the oldest go", async () => {
    const h = await setup();
    const pushed = await h.request(null, async (s) => {
      for (let i = 0; i < 500; i++) {
        h.clock.advance(1);
        await FlashMessages.push(s, FlashMessage.info(`m${i}`));
      }
    });
    const shown = await h.request(pushed.cookieId as string, async (s) =>
      (await FlashMessages.of(s).messages()).map((m) => m.message),
    );
    expect(shown.value).toEqual(Array.from({ length: 50 }, (_, i) => `m${450 + i}`));
  });
});
