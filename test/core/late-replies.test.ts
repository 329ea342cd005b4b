import { afterEach, describe, expect, test } from "vitest";
import { StoreUnavailableError } from "../../src/core/errors.js";
import { FlashMessage, FlashMessages } from "../../src/core/flash.js";
import type { LockStore, RecordStore } from "../../src/core/store.js";
import { storeCases } from "../auth/stores.js";
import { engineHarness } from "../support/engine-harness.js";
import { LateStore } from "../support/late-store.js";

/**
 * A timeout means "outcome unknown": the store did the work, its reply came after the engine gave
 * up. Each case checks that such a reply costs the user a retry, never the session.
 */
describe.each(storeCases)("late store replies on the $name store", ({ make }) => {
  let late: LateStore;
  afterEach(async () => {
    await late?.idle();
    await late?.close();
  });

  async function setup(options = {}) {
    late = new LateStore((await make()) as RecordStore & LockStore);
    return engineHarness(late, { operationTimeoutMs: 250, ...options });
  }

  test("cycleId whose claim answers late: 503, and the old cookie still holds the session", async () => {
    const h = await setup();
    const id = await h.seed({ user: "alice", cart: ["book"] });
    late.lateOnce("claim");
    await expect(h.request(id, (s) => s.cycleId())).rejects.toBeInstanceOf(StoreUnavailableError);
    await late.idle();
    // The claim ran and deleted the record; its late reply wrote it back under the old id.
    expect(await h.contents(id)).toEqual({ user: "alice", cart: ["book"] });
    // The retry works, and the old id dies with it.
    const retry = await h.request(id, (s) => s.cycleId());
    expect(retry.cookieId).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(await h.contents(retry.cookieId as string)).toEqual({ user: "alice", cart: ["book"] });
    expect(await h.contents(id)).toEqual({});
  });

  test("cycleId whose new record's create answers late: 503, old session intact, orphan removed", async () => {
    const h = await setup();
    const id = await h.seed({ user: "alice" });
    late.lateOnce("write", "create");
    await expect(h.request(id, (s) => s.cycleId())).rejects.toBeInstanceOf(StoreUnavailableError);
    await late.idle();
    expect(await h.contents(id)).toEqual({ user: "alice" });
    // The orphan the late create left behind was deleted when its reply came.
    const created = late.calls.filter((c) => c === "write:create").length;
    expect(created).toBe(2);
    expect(late.calls).toContain("destroy");
  });

  test("an update that answers late was applied: the 503 costs a retry, and the retry is idempotent", async () => {
    const h = await setup();
    const id = await h.seed({ user: "alice" });
    late.lateOnce("write", "update");
    await expect(h.request(id, (s) => s.insert("theme", "dark"))).rejects.toBeInstanceOf(
      StoreUnavailableError,
    );
    await late.idle();
    expect(await h.contents(id)).toEqual({ user: "alice", theme: "dark" });
    const retry = await h.request(id, (s) => s.insert("theme", "dark"));
    expect(retry.setCookie).toBeUndefined();
    expect(await h.contents(id)).toEqual({ user: "alice", theme: "dark" });
  });

  test("a flash take whose reply is late: 503, and the messages are back for the next request", async () => {
    const h = await setup();
    const id = await h.seed({ user: "alice" });
    await h.request(id, (s) => FlashMessages.push(s, FlashMessage.success("saved")));
    late.lateOnce("take");
    await expect(h.request(id, (s) => FlashMessages.of(s).messages())).rejects.toBeInstanceOf(
      StoreUnavailableError,
    );
    await late.idle();
    const next = await h.request(id, async (s) =>
      (await FlashMessages.of(s).messages()).map((m) => m.message),
    );
    expect(next.value).toEqual(["saved"]);
  });

  test("a lock whose acquire answers late is released with the engine's token, not left for its TTL", async () => {
    const h = await setup({ lockTimeoutMs: 300 });
    const id = await h.seed({ n: 0 });
    late.lateOnce("acquireLock");
    await expect(
      h.request(id, async (s) => {
        await s.lock();
        await s.load();
      }),
    ).rejects.toBeInstanceOf(StoreUnavailableError);
    await late.idle();
    // The lock's TTL is 30 s and more: only a release with the right token frees it this soon.
    const next = await h.request(id, async (s) => {
      await s.lock();
      await s.insert("n", ((await s.get<number>("n")) ?? 0) + 1);
    });
    expect(next.result.action).toBe("update");
    expect(await h.contents(id)).toEqual({ n: 1 });
  });
});
