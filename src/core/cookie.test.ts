import { describe, expect, test } from "vitest";
import { MemoryStore } from "../stores/memory.js";
import { defineConfig } from "./config.js";
import { readCookie } from "./cookie.js";
import { SessionEngine } from "./engine.js";
import { generateId } from "./id.js";

describe("readCookie trims only SP and HTAB around a pair (RFC 6265 OWS)", () => {
  const id = generateId();
  test.each([
    [` \tsession_id=${id}\t `, { kind: "present", value: id }],
    [`a=1;  session_id = ${id} ;b=2`, { kind: "present", value: id }],
    [`\u00a0session_id=${id}`, { kind: "absent" }],
    [`\u000bsession_id=${id}`, { kind: "absent" }],
    [`\u000csession_id=${id}`, { kind: "absent" }],
    [`\u2003session_id=${id}`, { kind: "absent" }],
    [`\ufeffsession_id=${id}`, { kind: "absent" }],
    [`session_id\u00a0=${id}`, { kind: "absent" }],
    // A planted look-alike next to the real cookie is not a duplicate of it either.
    [`\u00a0session_id=${"x".repeat(32)}; session_id=${id}`, { kind: "present", value: id }],
  ])("%j", (header, expected) => {
    expect(readCookie(header, "session_id")).toEqual(expected);
  });

  test("a value keeps characters other than SP and HTAB at its edges", () => {
    expect(readCookie("sid=\u00a0x\u00a0", "sid")).toEqual({
      kind: "present",
      value: "\u00a0x\u00a0",
    });
  });

  test.each([
    ["pairs without =", ";".repeat(60_000)],
    ["names without values", "a;".repeat(30_000)],
    ["one = at the very end", `${";".repeat(60_000)}x=1`],
  ])("a 64 KB header of %s is read in one pass, to the right answer", (_name, filler) => {
    const header = `${filler}; sid=found`.slice(-64 * 1024);
    expect(readCookie(header, "sid")).toEqual({ kind: "present", value: "found" });
  });

  test("through the engine: a look-alike name opens no session and costs no store call", async () => {
    const store = new MemoryStore();
    const engine = new SessionEngine(defineConfig({ secure: false }), store);
    const session = engine.open(`\u00a0session_id=${id}`);
    expect(await session.isEmpty()).toBe(true);
    expect(session.id).toBeNull();
  });
});
