import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { afterEach, describe, expect, test } from "vitest";
import { AuthSession } from "../../src/core/auth.js";
import type { SessionOptions } from "../../src/core/config.js";
import { EVENTS } from "../../src/core/events.js";
import type { SessionStore } from "../../src/core/store.js";
import { fakeClock } from "../support/clock.js";
import { browser, type Listed, usersApp, usersEngine } from "./app.js";

/** The user-index behaviour every store with an index must show, through real Hono requests. */
export function userIndexSuite(name: string, make: () => Promise<SessionStore>) {
  describe(`user sessions on the ${name} store`, () => {
    const stores: SessionStore[] = [];
    afterEach(async () => {
      for (const store of stores.splice(0)) await store.close?.();
    });

    async function setup(options: SessionOptions = {}) {
      const store = await make();
      stores.push(store);
      const clock = fakeClock(Date.now());
      const engine = usersEngine(store, options, clock.now);
      const app = usersApp(engine);
      const user = `u-${Math.random().toString(36).slice(2)}`;
      const signedIn = async (ua = "test-browser/1.0", address = "192.0.2.1") => {
        const b = browser(app, ua);
        const res = await b.post(`/login/${user}`, { headers: { "x-address": address } });
        expect(res.status).toBe(200);
        return b;
      };
      const list = (b: ReturnType<typeof browser>) => b.json<Listed[]>("GET", "/sessions");
      return { store, engine, app, clock, user, signedIn, list };
    }

    test("lists every device of the user, this one marked current, with what sign-in recorded", async () => {
      const { signedIn, list, engine, user } = await setup();
      const laptop = await signedIn("Laptop/1", "192.0.2.10");
      const phone = await signedIn("Phone/2", "2001:db8::1");
      const other = browser(usersApp(engine));
      await other.post("/login/someone-else");
      const seen = await list(laptop);
      expect(seen).toHaveLength(2);
      const mine = seen.find((s) => s.current);
      expect(mine?.userAgent).toBe("Laptop/1");
      expect(mine?.address).toBe("192.0.2.10");
      expect(seen.find((s) => !s.current)?.userAgent).toBe("Phone/2");
      const cookies = [laptop.jar.cookie, phone.jar.cookie].map((c) => c.split("=")[1] as string);
      for (const s of seen) {
        expect(s.handle).toMatch(/^[A-Za-z0-9_-]{22}$/);
        for (const id of cookies) expect(id).not.toContain(s.handle);
        expect(Date.parse(s.lastSeenAt)).toBeGreaterThanOrEqual(Date.parse(s.createdAt));
      }
      expect((await list(phone)).filter((s) => s.current)[0]?.userAgent).toBe("Phone/2");
      const admin = await engine.listUserSessions(user);
      expect(admin.map((s) => s.handle).sort()).toEqual(seen.map((s) => s.handle).sort());
      expect(admin.every((s) => !s.current)).toBe(true);
      expect(await browser(usersApp(engine)).json("GET", "/sessions")).toEqual([]);
    });

    test("revoking a device by handle signs it out at once; the handle then revokes nothing", async () => {
      const { signedIn, list } = await setup();
      const laptop = await signedIn("Laptop/1");
      const phone = await signedIn("Phone/2");
      const target = (await list(laptop)).find((s) => !s.current)?.handle as string;
      const revoke = () =>
        laptop.post("/revoke", {
          headers: { "content-type": "application/x-www-form-urlencoded" },
          body: new URLSearchParams({ session: target }).toString(),
        });
      expect(await (await revoke()).json()).toEqual({ revoked: true });
      expect(await phone.me()).toBeNull();
      expect(await laptop.me()).not.toBeNull();
      expect(await (await revoke()).json()).toEqual({ revoked: false });
      expect((await list(laptop)).map((s) => s.current)).toEqual([true]);
    });

    test("another user's handle, garbage and huge handles revoke nothing and never crash", async () => {
      const { signedIn, list, engine, app } = await setup();
      const alice = await signedIn();
      const mallory = browser(app);
      await mallory.post("/login/mallory");
      const aliceHandle = (await list(alice))[0]?.handle as string;
      expect(await mallory.json("POST", `/revoke/${aliceHandle}`)).toEqual({ revoked: false });
      for (const bad of ["x", "%00", "A".repeat(22 * 1000), "../../etc", "__proto__"]) {
        const res = await mallory.post("/revoke", {
          headers: { "content-type": "application/x-www-form-urlencoded" },
          body: new URLSearchParams({ session: bad }).toString(),
        });
        expect(res.status).toBe(200);
        expect(await res.json()).toEqual({ revoked: false });
      }
      expect(await engine.revokeUserSession("mallory", aliceHandle)).toBe(false);
      expect(await alice.me()).not.toBeNull();
      expect(await mallory.me()).toBe("mallory");
    });

    test("revoking the current handle is a sign-out; revokeOtherSessions keeps only this one", async () => {
      const { signedIn, list } = await setup();
      const a = await signedIn();
      const b = await signedIn();
      const c = await signedIn();
      expect(await a.json("POST", "/revoke-others")).toEqual({ revoked: 2 });
      expect(await b.me()).toBeNull();
      expect(await c.me()).toBeNull();
      expect(await a.me()).not.toBeNull();
      const mine = (await list(a))[0] as Listed;
      expect(mine.current).toBe(true);
      expect(await a.json("POST", `/revoke/${mine.handle}`)).toEqual({ revoked: true });
      expect(await a.me()).toBeNull();
      expect(await a.json("POST", "/revoke-others")).toEqual({ revoked: 0 });
    });

    test("passwordChanged ends the other sessions and rotates this one", async () => {
      const { signedIn, list } = await setup();
      const a = await signedIn();
      const b = await signedIn();
      const before = a.jar.cookie;
      const handle = (await list(a)).find((s) => s.current)?.handle;
      expect(await a.json("POST", "/password")).toEqual({ revoked: 1 });
      expect(a.jar.cookie).not.toBe(before);
      expect(await b.me()).toBeNull();
      expect(await a.me()).not.toBeNull();
      const after = await list(a);
      expect(after.map((s) => [s.handle, s.current])).toEqual([[handle, true]]);
      const stale = browser(usersApp((await setup()).engine));
      stale.jar.cookie = before;
      expect(await stale.me()).toBeNull();
    });

    test("the index follows cycles (same handle), sign-out, destroy and expiry", async () => {
      const { signedIn, list, engine, user, clock } = await setup({ expirySecs: 3600 });
      const a = await signedIn();
      const b = await signedIn();
      const c = await signedIn();
      const handle = (await list(a)).find((s) => s.current)?.handle;
      const oldCookie = a.jar.cookie;
      await a.post("/rotate");
      expect(a.jar.cookie).not.toBe(oldCookie);
      expect((await list(a)).find((s) => s.current)?.handle).toBe(handle);
      expect(await engine.listUserSessions(user)).toHaveLength(3);
      await b.post("/logout");
      await c.post("/destroy");
      expect((await list(a)).map((s) => s.handle)).toEqual([handle]);
      clock.seconds(3601);
      expect(await engine.listUserSessions(user)).toEqual([]);
    });

    test("lastSeenAt follows the record's renewal when an idle timeout is set", async () => {
      const { signedIn, engine, user, clock } = await setup({ inactivityTimeoutSecs: 600 });
      const a = await signedIn();
      const signedAt = clock.now();
      clock.seconds(120);
      await a.me();
      const [s] = await engine.listUserSessions(user);
      expect(s?.createdAt.getTime()).toBe(signedAt);
      expect(s?.lastSeenAt.getTime()).toBe(signedAt + 120_000);
    });

    test("a lifetime change keeps the session listed past its first deadline", async () => {
      const { signedIn, engine, user, clock } = await setup({ expirySecs: 3600 });
      const a = await signedIn();
      await a.post("/remember");
      clock.seconds(7200);
      expect(await a.me()).toBe(user);
      expect(await engine.listUserSessions(user)).toHaveLength(1);
    });

    test("max_sessions_per_user revokes the oldest session by default", async () => {
      const { signedIn, list, clock } = await setup({ maxSessionsPerUser: 2 });
      const first = await signedIn("First");
      clock.seconds(1);
      const second = await signedIn("Second");
      clock.seconds(1);
      const third = await signedIn("Third");
      expect(await first.me()).toBeNull();
      expect(await second.me()).not.toBeNull();
      expect((await list(third)).map((s) => s.userAgent)).toEqual(["Third", "Second"]);
    });

    test("max_sessions_per_user counts live sessions: one ended by its idle timeout costs no other", async () => {
      const { signedIn, list, clock } = await setup({
        maxSessionsPerUser: 2,
        inactivityTimeoutSecs: 600,
      });
      const active = await signedIn("Active");
      clock.seconds(1);
      const idle = await signedIn("Idle");
      clock.seconds(500);
      expect(await active.me()).not.toBeNull();
      clock.seconds(200);
      // "Idle" ended 101 s ago; its entry is still in the index, but it is not live.
      const third = await signedIn("Third");
      expect(await active.me()).not.toBeNull();
      expect(await idle.me()).toBeNull();
      expect((await list(third)).map((s) => s.userAgent)).toEqual(["Third", "Active"]);
      clock.seconds(1);
      const fourth = await signedIn("Fourth");
      expect(await active.me()).toBeNull();
      expect((await list(fourth)).map((s) => s.userAgent)).toEqual(["Fourth", "Third"]);
    });

    test('session_limit_action = "refuse" signs nobody in over the limit', async () => {
      const { signedIn, app, user, list } = await setup({
        maxSessionsPerUser: 2,
        sessionLimitAction: "refuse",
      });
      const a = await signedIn();
      await signedIn();
      const third = browser(app);
      const res = await third.post(`/login/${user}`);
      expect(res.status).toBe(403);
      expect(await res.json()).toEqual({ refused: "SessionLimitError" });
      expect(await third.me()).toBeNull();
      // Signing in again on a session already counted is not over the limit.
      expect((await a.post(`/login/${user}`)).status).toBe(200);
      await a.post("/logout");
      expect((await third.post(`/login/${user}`)).status).toBe(200);
      expect(await list(third)).toHaveLength(2);
    });

    test("coatcheck:session:revoked is published once per revoked session, with the reason", async () => {
      const { signedIn, engine, user, clock } = await setup({ maxSessionsPerUser: 3 });
      const seen: Array<{ session: string; reason: string }> = [];
      const listener = (m: unknown) => seen.push(m as { session: string; reason: string });
      subscribe(EVENTS.revoked, listener);
      try {
        const a = await signedIn();
        const b = await signedIn();
        await signedIn();
        const bHandle = (await b.json<Listed[]>("GET", "/sessions")).find((s) => s.current)?.handle;
        await a.post(`/revoke/${bHandle}`);
        expect(seen.map((m) => m.reason)).toEqual(["user"]);
        await a.post("/revoke-others");
        expect(seen.map((m) => m.reason)).toEqual(["user", "others"]);
        clock.seconds(1);
        const d = await signedIn();
        await d.post("/password");
        expect(seen.map((m) => m.reason)).toEqual(["user", "others", "password-changed"]);
        await signedIn();
        await signedIn();
        await signedIn();
        expect(seen.map((m) => m.reason).at(-1)).toBe("limit");
        expect(await engine.revokeUserSessions(user)).toBe(3);
        expect(seen.slice(-3).map((m) => m.reason)).toEqual(["all", "all", "all"]);
        for (const m of seen) expect(m.session).toMatch(/^[0-9a-f]{12}$/);
      } finally {
        unsubscribe(EVENTS.revoked, listener);
      }
    });

    test("engine calls revoke one session or all but one", async () => {
      const { signedIn, engine, user, list } = await setup();
      const a = await signedIn();
      const b = await signedIn();
      const c = await signedIn();
      const keep = (await list(a)).find((s) => s.current)?.handle as string;
      const bHandle = (await list(b)).find((s) => s.current)?.handle as string;
      expect(await engine.revokeUserSession(user, bHandle)).toBe(true);
      expect(await b.me()).toBeNull();
      expect(await engine.revokeUserSessions(user, { exceptHandle: keep })).toBe(1);
      expect(await c.me()).toBeNull();
      expect(await a.me()).toBe(user);
      expect(await engine.revokeUserSessions(user)).toBe(1);
      expect(await a.me()).toBeNull();
    });

    test("device strings are cleaned and cut to a bounded length", async () => {
      const { engine, user, app } = await setup();
      const s = engine.open(undefined);
      const auth = await AuthSession.open(s);
      await auth.login(user, [], {
        userAgent: `\u0000evil\r\nheader${"x".repeat(5000)}`,
        address: 42 as unknown as string,
      });
      await engine.commit(s, 200);
      const [listed] = await engine.listUserSessions(user);
      expect(listed?.userAgent?.startsWith("evilheader")).toBe(true);
      expect(listed?.userAgent?.length).toBe(256);
      expect(listed?.address).toBeNull();
      void app;
    });
  });
}
