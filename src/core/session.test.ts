import { describe, expect, test } from "vitest";
import { MemoryStore } from "../stores/memory.js";
import { AuthSession } from "./auth.js";
import { defineConfig } from "./config.js";
import { CsrfToken } from "./csrf.js";
import { SessionEngine } from "./engine.js";
import { StoreUnavailableError } from "./errors.js";
import { FlashMessages } from "./flash.js";
import { commitNow } from "./lifecycle.js";
import { usageOf } from "./session.js";
import type { StoredSession } from "./store.js";

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

/** A memory store that says which of its two reads the engine used; `down` makes both fail. */
class TwoReadStore extends MemoryStore {
  readonly calls: string[] = [];
  down = false;
  override async load(id: string, now: number): Promise<StoredSession | null> {
    this.calls.push("load");
    if (this.down) throw new Error("down");
    return super.loadNow(id, now);
  }
  override loadNow(id: string, now: number): StoredSession | null {
    this.calls.push("loadNow");
    if (this.down) throw new Error("down");
    return super.loadNow(id, now);
  }
}

/** A record holding `user: "alice"` in `store`, and the cookie header that names it. */
async function storedSession(store: MemoryStore): Promise<{ e: SessionEngine; cookie: string }> {
  const e = new SessionEngine(defineConfig({ secure: false }), store);
  const first = e.open(undefined);
  await first.insert("user", "alice");
  const result = await commitNow(e, first, 200);
  const cookie = result.setCookie?.split(";", 1)[0];
  if (cookie === undefined) throw new Error("the first commit set no cookie");
  return { e, cookie };
}

describe("in-process stores are read in the same turn", () => {
  test("a store with loadNow: the session is loaded before get() is awaited", async () => {
    const store = new TwoReadStore();
    const { e, cookie } = await storedSession(store);
    store.calls.length = 0;
    const s = e.open(cookie);
    const reading = s.get("user");
    expect(usageOf(s).loaded).toBe(true);
    expect(await reading).toBe("alice");
    expect(store.calls).toEqual(["loadNow"]);
  });

  test("a loadNow that throws is a store outage, and the next read tries again", async () => {
    const store = new TwoReadStore();
    const { e, cookie } = await storedSession(store);
    const s = e.open(cookie);
    store.down = true;
    await expect(s.get("user")).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(usageOf(s).loaded).toBe(false);
    store.down = false;
    expect(await s.get("user")).toBe("alice");
  });

  test("a subclass that overrides load alone is read through its load", async () => {
    const calls: string[] = [];
    class CountingStore extends MemoryStore {
      override load(id: string, now: number) {
        calls.push("load");
        return super.load(id, now);
      }
    }
    const { e, cookie } = await storedSession(new CountingStore());
    calls.length = 0;
    const s = e.open(cookie);
    const reading = s.get("user");
    expect(usageOf(s).loaded).toBe(false);
    expect(await reading).toBe("alice");
    expect(calls).toEqual(["load"]);
  });
});
