import { describe, expect, test } from "vitest";
import { FlashMessage, FlashMessages } from "../../src/core/flash.js";
import { storeCases } from "../auth/stores.js";
import { harnessPerTest } from "../support/engine-harness.js";

const DAY = 86_400_000;

/** What the end of a request does when parallel requests changed the record under it. */
describe.each(storeCases)("commit under parallel requests on the $name store", ({ make }) => {
  const setup = harnessPerTest(make);

  test.each(["cycleId", "destroy"] as const)(
    "a save that finds its record gone after a parallel %s sends no Set-Cookie",
    async (op) => {
      const h = await setup();
      const id = await h.seed({ user: "alice" });
      const slow = await h.begin(id, (s) => s.insert("extra", "late"));
      const winner = await h.request(id, (s) => s[op]());
      expect(winner.setCookie).toBeDefined();
      const loser = await slow.commit();
      // An expired cookie here would wipe the winner's cookie in the browser: signed out.
      expect(loser.setCookie).toBeUndefined();
      expect(loser.result.action).toBe("nothing");
      expect(await h.contents(id)).toEqual({});
    },
  );

  test("a cycleId whose claim finds the record gone sends no Set-Cookie and leaves no record", async () => {
    const h = await setup();
    const id = await h.seed({ user: "alice" });
    const slow = await h.begin(id, (s) => s.cycleId());
    const destroyed = await h.request(id, (s) => s.destroy());
    expect(destroyed.cookieId).toBeNull();
    const loser = await slow.commit();
    expect(loser.setCookie).toBeUndefined();
    expect(loser.result.action).toBe("discard-new");
    if ("size" in h.store) expect((h.store as { size: number }).size).toBe(0);
  });

  test("a cycleId keeps what a parallel request wrote, and drops what it took, meanwhile", async () => {
    const h = await setup();
    const id = await h.seed({ user: "alice", "_flash:1": { kind: "info", message: "hi" } });
    const login = await h.begin(id, async (s) => {
      await s.insert("role", "admin");
      await s.cycleId();
    });
    await h.request(id, async (s) => {
      await s.insert("theme", "dark");
      await FlashMessages.of(s).messages();
    });
    const moved = await login.commit();
    expect(await h.contents(moved.cookieId as string)).toEqual({
      user: "alice",
      role: "admin",
      theme: "dark",
    });
  });

  test("a parallel request that changes a key keeps the lifetime another request set", async () => {
    const h = await setup();
    const id = await h.seed({ user: "alice" });
    const other = await h.begin(id, (s) => s.insert("theme", "dark"));
    const remember = await h.request(id, (s) => s.setExpiry(30 * 86_400));
    expect(remember.setCookie).toMatch(/Max-Age=2592000/);
    expect((await other.commit()).setCookie).toBeUndefined();
    // Past the configured one-day lifetime, inside the 30 days the cookie says.
    h.clock.advance(2 * DAY);
    expect(await h.contents(id)).toEqual({ user: "alice", theme: "dark" });
  });

  test("a 5xx puts taken flash messages back with the lifetime as loaded, not the request's", async () => {
    const h = await setup();
    const id = await h.seed({ user: "alice" });
    await h.request(id, (s) => FlashMessages.push(s, FlashMessage.info("saved")));
    const failed = await h.request(
      id,
      async (s) => {
        const shown = await FlashMessages.of(s).messages();
        await s.setExpiry(400 * 86_400);
        return shown.map((m) => m.message);
      },
      500,
    );
    expect(failed.value).toEqual(["saved"]);
    expect(failed.setCookie).toBeUndefined();
    const again = await h.request(id, async (s) =>
      (await FlashMessages.of(s).messages()).map((m) => m.message),
    );
    expect(again.value).toEqual(["saved"]);
    // The failed request's 400 days were not persisted: the configured day still ends it.
    h.clock.advance(2 * DAY);
    expect(await h.contents(id)).toEqual({});
  });

  test("read the flash, destroy, then fail with 500: the record and its flash are both kept", async () => {
    const h = await setup();
    const id = await h.seed({ user: "alice" });
    await h.request(id, (s) => FlashMessages.push(s, FlashMessage.warning("careful")));
    const failed = await h.request(
      id,
      async (s) => {
        await FlashMessages.of(s).messages();
        await s.destroy();
      },
      500,
    );
    expect(failed.setCookie).toBeUndefined();
    const next = await h.request(id, async (s) => ({
      user: await s.get("user"),
      flash: (await FlashMessages.of(s).messages()).map((m) => m.message),
    }));
    expect(next.value).toEqual({ user: "alice", flash: ["careful"] });
  });

  test("consume() of a key overwritten earlier in the request takes the stored copy too", async () => {
    const h = await setup();
    const id = await h.seed({ "note:1": "old", keep: 1 });
    const answer = await h.request(id, async (s) => {
      await s.insert("note:1", "new");
      return s.consume("note:");
    });
    expect(answer.value).toEqual([{ key: "note:1", value: "new" }]);
    expect(await h.contents(id)).toEqual({ keep: 1 });
  });
});
