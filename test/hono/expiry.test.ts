import { describe, expect, test } from "vitest";
import type { SessionOptions } from "../../src/core/config.js";
import { MAX_LIFETIME_SECS } from "../../src/core/expiry.js";
import { createSessionEngine } from "../../src/setup.js";
import { MemoryStore } from "../../src/stores/memory.js";
import { fakeClock } from "../support/clock.js";
import { Jar, sessionApp } from "../support/hono-app.js";

function setup(options: SessionOptions) {
  const clock = fakeClock();
  const store = new MemoryStore();
  const engine = createSessionEngine({
    ...options,
    store,
    env: {},
    secure: false,
    now: clock.now,
    csrf: { enabled: false },
  });
  const app = sessionApp(engine);
  const jar = new Jar();
  const send = async (method: string, path: string) => {
    const res = await app.request(path, { method, headers: jar.headers() });
    return { setCookie: jar.take(res), body: await res.text() };
  };
  return { clock, store, send, jar };
}

describe("absolute expiry (expiry_secs)", () => {
  test("the cookie's Max-Age is expiry_secs and the server ends the session at the cap, reads or not", async () => {
    const { clock, send } = setup({ expirySecs: 3600 });
    expect((await send("POST", "/set/user/alice")).setCookie).toMatch(/Max-Age=3600;/);
    clock.seconds(3599);
    expect((await send("GET", "/get/user")).body).toBe('"alice"');
    clock.seconds(1);
    expect((await send("GET", "/get/user")).body).toBe("null");
  });

  test("activity does not extend the absolute cap", async () => {
    const { clock, send } = setup({ expirySecs: 100 });
    await send("POST", "/set/user/alice");
    for (let i = 0; i < 9; i++) {
      clock.seconds(10);
      await send("POST", `/set/n/${i}`);
    }
    clock.seconds(9);
    expect((await send("GET", "/get/user")).body).toBe('"alice"');
    clock.seconds(1);
    expect((await send("GET", "/get/user")).body).toBe("null");
  });

  test("expiry_secs = 0 gives a browser-session cookie; without idle timeout the record lives 86400 s", async () => {
    const { clock, send } = setup({ expirySecs: 0 });
    const { setCookie } = await send("POST", "/set/user/alice");
    expect(setCookie).not.toMatch(/Max-Age/);
    expect(setCookie).not.toMatch(/Expires/);
    clock.seconds(86_399);
    expect((await send("GET", "/get/user")).body).toBe('"alice"');
    clock.seconds(1);
    expect((await send("GET", "/get/user")).body).toBe("null");
  });

  test("expiry_secs = 0 with an idle timeout lives as long as it is used", async () => {
    const { clock, send } = setup({ expirySecs: 0, inactivityTimeoutSecs: 60 });
    await send("POST", "/set/user/alice");
    // 1500 × 59 s is past the 86400 s fallback: with an idle timeout there is no absolute cap.
    for (let i = 0; i < 1500; i++) {
      clock.seconds(59);
      await send("GET", "/get/user");
    }
    expect((await send("GET", "/get/user")).body).toBe('"alice"');
    clock.seconds(60);
    expect((await send("GET", "/get/user")).body).toBe("null");
  });
});

describe("idle timeout (inactivity_timeout_secs)", () => {
  test("a read renews it, without a store write", async () => {
    const { clock, send, store } = setup({ expirySecs: 86_400, inactivityTimeoutSecs: 60 });
    await send("POST", "/set/user/alice");
    const write = store.write.bind(store);
    let writes = 0;
    store.write = (...args) => {
      writes++;
      return write(...args);
    };
    for (let i = 0; i < 5; i++) {
      clock.seconds(59);
      expect((await send("GET", "/get/user")).body).toBe('"alice"');
    }
    expect(writes).toBe(0);
    clock.seconds(60);
    expect((await send("GET", "/get/user")).body).toBe("null");
  });

  test("a request that never touches the session does not renew it", async () => {
    const { clock, send } = setup({ inactivityTimeoutSecs: 60 });
    await send("POST", "/set/user/alice");
    clock.seconds(30);
    await send("GET", "/untouched");
    clock.seconds(30);
    expect((await send("GET", "/get/user")).body).toBe("null");
  });

  test("with both set, whichever comes first ends the session", async () => {
    const { clock, send } = setup({ expirySecs: 100, inactivityTimeoutSecs: 40 });
    await send("POST", "/set/user/alice");
    clock.seconds(39);
    await send("GET", "/get/user");
    clock.seconds(39);
    await send("GET", "/get/user"); // t=78, idle deadline would be 117 but cap is 100
    clock.seconds(22);
    expect((await send("GET", "/get/user")).body).toBe("null");
  });
});

describe("per-session lifetime override (remember-me)", () => {
  test("sets the record's cap and the cookie's Max-Age", async () => {
    const { clock, send } = setup({ expirySecs: 3600 });
    const thirtyDays = 30 * 86_400;
    const { setCookie } = await send("POST", `/remember/${thirtyDays}`);
    expect(setCookie).toMatch(new RegExp(`Max-Age=${thirtyDays};`));
    clock.seconds(thirtyDays - 1);
    expect((await send("GET", "/get/user")).body).toBe('"alice"');
    clock.seconds(1);
    expect((await send("GET", "/get/user")).body).toBe("null");
  });

  test("on an existing session it resends the cookie with the new Max-Age", async () => {
    const { send } = setup({ expirySecs: 3600 });
    await send("POST", "/set/a/1");
    expect((await send("POST", "/remember/7200")).setCookie).toMatch(/Max-Age=7200;/);
  });

  test("is capped at 400 days", async () => {
    const { send } = setup({});
    const { setCookie } = await send("POST", "/remember/99999999999");
    expect(setCookie).toMatch(new RegExp(`Max-Age=${MAX_LIFETIME_SECS};`));
  });

  test("survives a cycleId", async () => {
    const { clock, send } = setup({ expirySecs: 60 });
    await send("POST", "/remember/600");
    await send("POST", "/cycle");
    clock.seconds(300);
    expect((await send("GET", "/get/user")).body).toBe('"alice"');
  });
});
