import { inspect } from "node:util";
import { describe, expect, test } from "vitest";
import { AuthSession } from "../../src/core/auth.js";
import { CsrfToken } from "../../src/core/csrf.js";
import { SessionCommittedError } from "../../src/core/errors.js";
import { FlashMessage, FlashMessages } from "../../src/core/flash.js";
import { CSRF_SECRET_KEY } from "../../src/core/session.js";
import { typedSession } from "../../src/core/typed.js";
import { storeCases } from "../auth/stores.js";
import { harnessPerTest } from "../support/engine-harness.js";

const cart = typedSession("cart", () => ({ items: [] as string[] }));

/** The session owns its state: views follow destroy/cycleId, writes after the commit are refused. */
describe.each(storeCases)("one owner of a session's state on the $name store", ({ make }) => {
  const setup = harnessPerTest(make, { csrf: { enabled: true } });

  async function signedIn(h: Awaited<ReturnType<typeof setup>>, roles = ["user"]) {
    const answer = await h.request(null, async (s) => {
      await (await AuthSession.open(s)).login("alice", roles);
      (await CsrfToken.from(s)).token();
    });
    return answer.cookieId as string;
  }

  test("after a plain destroy(), the auth view in the same request is signed out", async () => {
    const h = await setup();
    const id = await signedIn(h);
    const answer = await h.request(id, async (s) => {
      const before = await AuthSession.open(s);
      const was = before.isAuthenticated();
      await s.destroy();
      return {
        was,
        held: before.isAuthenticated(),
        opened: (await AuthSession.open(s)).isAuthenticated(),
      };
    });
    expect(answer.value).toEqual({ was: true, held: false, opened: false });
    expect(answer.cookieId).toBeNull();
  });

  test("a typed value read before destroy() is not written into the replacement session", async () => {
    const h = await setup();
    const id = await h.seed({ cart: { items: ["book"] } });
    const answer = await h.request(id, async (s) => {
      const view = await cart.open(s);
      view.dataMut().items.push("pen");
      await s.destroy();
      await s.insert("fresh", true);
      await view.save();
    });
    expect(await h.contents(answer.cookieId as string)).toEqual({
      fresh: true,
      cart: { items: [] },
    });
  });

  test("a write after the commit throws SessionCommittedError, naming what to do", async () => {
    const h = await setup();
    const open = await h.begin(null, (s) => s.insert("a", 1));
    const committed = await open.commit();
    const s = open.session;
    const error = await s.insert("b", 2).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SessionCommittedError);
    expect((error as Error).message).toMatch(/await every session change before the response/i);
    await expect(s.remove("a")).rejects.toBeInstanceOf(SessionCommittedError);
    await expect(s.cycleId()).rejects.toBeInstanceOf(SessionCommittedError);
    await expect(s.destroy()).rejects.toBeInstanceOf(SessionCommittedError);
    await expect(s.setExpiry(60)).rejects.toBeInstanceOf(SessionCommittedError);
    await expect(FlashMessages.push(s, FlashMessage.info("late"))).rejects.toBeInstanceOf(
      SessionCommittedError,
    );
    expect(await h.contents(committed.cookieId as string)).toEqual({ a: 1 });
  });

  test("granting a role through dataMut() + save() rotates the session id and the CSRF secret", async () => {
    const h = await setup();
    const id = await signedIn(h);
    const secretBefore = (await h.contents(id))[CSRF_SECRET_KEY];
    expect(typeof secretBefore).toBe("string");
    const answer = await h.request(id, async (s) => {
      const auth = await AuthSession.open(s);
      auth.dataMut().roles.push("admin");
      await auth.save();
      return auth.hasRole("admin");
    });
    expect(answer.value).toBe(true);
    expect(answer.cookieId).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(answer.cookieId).not.toBe(id);
    expect(await h.contents(id)).toEqual({});
    const after = await h.contents(answer.cookieId as string);
    expect(after[CSRF_SECRET_KEY]).toBeUndefined();
    expect((after._auth as { roles: string[] }).roles).toEqual(["user", "admin"]);
  });

  test("a save that changes nothing about the user keeps the id; rotate() rotates on demand", async () => {
    const h = await setup();
    const id = await signedIn(h);
    const same = await h.request(id, async (s) => {
      const auth = await AuthSession.open(s);
      auth.dataMut().extra.theme = "dark";
      await auth.save();
    });
    expect(same.setCookie).toBeUndefined();
    const rotated = await h.request(id, async (s) => (await AuthSession.open(s)).rotate());
    expect(rotated.cookieId).not.toBe(id);
    expect(await h.contents(id)).toEqual({});
  });

  test("util.inspect and console.log of a session never show the raw id", async () => {
    const h = await setup();
    const id = await h.seed({ user: "alice" });
    const answer = await h.request(id, async (s) => {
      await s.load();
      return { shown: inspect(s, { showHidden: true, depth: 10 }), json: JSON.stringify(s) };
    });
    expect(answer.value.shown).not.toContain(id);
    expect(answer.value.shown).toContain("[redacted]");
    expect(answer.value.json).not.toContain(id);
  });
});
