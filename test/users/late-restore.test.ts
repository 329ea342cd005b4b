import { afterEach, expect, test } from "vitest";
import { AuthSession } from "../../src/core/auth.js";
import type { IndexEntry, IndexSelection, UserIndexStore } from "../../src/core/store.js";
import { MemoryStore } from "../../src/stores/memory.js";
import { engineHarness } from "../support/engine-harness.js";
import { LateStore } from "../support/late-store.js";

/** A {@link LateStore} whose user index answers at once, from the same memory store. */
class LateIndexedStore extends LateStore implements UserIndexStore {
  readonly #index: MemoryStore;
  constructor(inner: MemoryStore) {
    super(inner);
    this.#index = inner;
  }
  indexPut(u: string, e: IndexEntry, id: string, r: string | null, now: number) {
    return this.#index.indexPut(u, e, id, r, now);
  }
  indexRemove(u: string, s: IndexSelection, now: number, destroy: boolean) {
    return this.#index.indexRemove(u, s, now, destroy);
  }
  indexList(u: string, now: number) {
    return this.#index.indexList(u, now);
  }
  peek(refs: readonly string[], now: number) {
    return this.#index.peek(refs, now);
  }
}

let late: LateIndexedStore;
afterEach(async () => {
  await late?.idle();
});

async function setup() {
  late = new LateIndexedStore(new MemoryStore());
  const h = engineHarness(late, { operationTimeoutMs: 250 });
  const signIn = async (user: string) =>
    (
      await h.request(null, async (s) => {
        await (await AuthSession.open(s)).login(user);
      })
    ).cookieId as string;
  const userOf = async (id: string) =>
    (await h.request(id, async (s) => (await AuthSession.open(s)).userId())).value;
  const rotateLate = async (id: string) => {
    late.lateOnce("claim");
    await expect(
      h.request(id, async (s) => {
        await (await AuthSession.open(s)).rotate();
      }),
    ).rejects.toThrow(/timed out/);
  };
  return { ...h, signIn, userOf, rotateLate };
}

test("a claim that answers late puts the signed-in record back under its old id", async () => {
  const { signIn, userOf, rotateLate, engine } = await setup();
  const id = await signIn("fay");
  await rotateLate(id);
  await late.idle();
  expect(await userOf(id)).toBe("fay");
  expect(await engine.listUserSessions("fay")).toHaveLength(1);
});

test("a revocation while the claim's reply is late is not undone by the write-back", async () => {
  const { signIn, userOf, rotateLate, engine } = await setup();
  const id = await signIn("gus");
  await rotateLate(id);
  expect(await engine.revokeUserSessions("gus")).toBe(1);
  await late.idle();
  expect(await userOf(id)).toBeNull();
  expect(await engine.listUserSessions("gus")).toEqual([]);
});
