import { describe, expect, test } from "vitest";
import { MemoryStore } from "../stores/memory.js";
import { AuthSession } from "./auth.js";
import { defineConfig } from "./config.js";
import { CsrfToken } from "./csrf.js";
import { SessionEngine } from "./engine.js";
import { FlashMessages } from "./flash.js";
import { usageOf } from "./session.js";

function engine() {
  return new SessionEngine(defineConfig({ secure: false }), new MemoryStore());
}

describe("usageOf: what a request did with its session", () => {
  test("an untouched session: nothing", () => {
    expect(usageOf(engine().open(undefined))).toEqual({
      loaded: false,
      tokenRendered: false,
      flashConsumed: false,
      rotated: false,
    });
  });

  test("a rendered token, consumed flash and a login each show", async () => {
    const e = engine();
    const s = e.open(undefined);
    (await CsrfToken.from(s)).asHiddenField();
    expect(usageOf(s)).toMatchObject({ loaded: true, tokenRendered: true, rotated: false });
    await FlashMessages.of(s).messages();
    expect(usageOf(s).flashConsumed).toBe(true);
    await (await AuthSession.open(s)).login("alice");
    expect(usageOf(s).rotated).toBe(true);
  });

  test("destroy() counts as rotated: tokens rendered earlier are stale", async () => {
    const s = engine().open(undefined);
    await s.destroy();
    expect(usageOf(s)).toMatchObject({ loaded: false, rotated: true });
  });

  test("the accessor hands out a copy", async () => {
    const s = engine().open(undefined);
    const usage = usageOf(s);
    usage.rotated = true;
    expect(usageOf(s).rotated).toBe(false);
  });
});
