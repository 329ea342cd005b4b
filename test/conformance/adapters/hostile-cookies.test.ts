import { expect, test } from "vitest";
import { generateId } from "../../../src/core/id.js";
import { describeMatrix } from "./matrix.js";

const malformed: Array<[string, string]> = [
  ["empty value", "session_id="],
  ["too short", "session_id=abc"],
  ["one character too long", `session_id=${generateId()}x`],
  ["bad alphabet", `session_id=${"+".repeat(32)}`],
  ["quoted", `session_id="${generateId()}"`],
  ["100 kB value", `session_id=${"a".repeat(100_000)}`],
  ["100 kB of other cookies", `junk=${"b".repeat(100_000)}; session_id=${generateId()}`],
  ["__proto__ value", "session_id=__proto__"],
  ["__proto__ and constructor names", "__proto__=1; constructor=2; prototype=3"],
  ["no equals sign", "session_id"],
  ["only separators", ";;; ;=;"],
];

describeMatrix("hostile cookies", (t) => {
  test.each(malformed)("%s: no session, no store call, no cookie", async (_name, cookie) => {
    const app = await t.mount();
    const res = await app.driver.request("GET", "/get/user", { headers: { cookie } });
    expect(res.status).toBe(200);
    expect(res.text).toBe("null");
    expect(res.headers.get("set-cookie")).toBeNull();
    expect(app.store.calls).toEqual([]);
  });

  test("a duplicated session cookie is no session, without a store call", async () => {
    const app = await t.mount();
    const client = app.client();
    await client.post("/set/user/alice");
    app.store.reset();
    const shadow = `session_id=${generateId()}`;
    for (const cookie of [`${client.cookie}; ${shadow}`, `${shadow}; ${client.cookie}`]) {
      const res = await app.driver.request("GET", "/get/user", { headers: { cookie } });
      expect(res.text).toBe("null");
    }
    expect(app.store.calls).toEqual([]);
  });

  test("__proto__-named cookies beside ours change nothing", async () => {
    const app = await t.mount();
    const client = app.client();
    await client.post("/set/user/alice");
    const cookie = `__proto__=x; ${client.cookie}; constructor=y`;
    const res = await app.driver.request("GET", "/get/user", { headers: { cookie } });
    expect(res.text).toBe('"alice"');
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });

  test("an unknown well-formed id is looked up once and never adopted", async () => {
    const app = await t.mount();
    const forged = generateId();
    const res = await app.driver.request("POST", "/set/user/mallory", {
      headers: { cookie: `session_id=${forged}` },
    });
    expect(app.store.calls).toEqual(["load", "write:create"]);
    const set = res.headers.get("set-cookie") ?? "";
    expect(set).toMatch(/^session_id=[A-Za-z0-9_-]{32};/);
    expect(set).not.toContain(forged);
    const again = await app.driver.request("GET", "/get/user", {
      headers: { cookie: `session_id=${forged}` },
    });
    expect(again.text).toBe("null");
  });
});
