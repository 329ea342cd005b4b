import { expect, test } from "vitest";
import { fakeClock } from "../../support/clock.js";
import { describeMatrix } from "./matrix.js";

describeMatrix("expiry", (t) => {
  test("expiry_secs is an absolute cap from creation, however active the session", async () => {
    const clock = fakeClock();
    const app = await t.mount({ now: clock.now, expirySecs: 3600 });
    const client = app.client();
    const first = await client.post("/set/user/alice");
    expect(first.headers.get("set-cookie")).toMatch(/Max-Age=3600/);
    clock.seconds(3000);
    expect((await client.get("/get/user")).text).toBe('"alice"');
    clock.seconds(601);
    expect((await client.get("/get/user")).text).toBe("null");
  });

  test("the idle timeout ends a quiet session and is renewed by reads", async () => {
    const clock = fakeClock();
    const app = await t.mount({ now: clock.now, inactivityTimeoutSecs: 600 });
    const client = app.client();
    await client.post("/set/user/alice");
    for (let i = 0; i < 3; i++) {
      clock.seconds(500);
      expect((await client.get("/get/user")).text).toBe('"alice"');
    }
    clock.seconds(601);
    expect((await client.get("/get/user")).text).toBe("null");
  });

  test("an expired session is not brought back by a write", async () => {
    const clock = fakeClock();
    const app = await t.mount({ now: clock.now, expirySecs: 60 });
    const client = app.client();
    await client.post("/set/user/alice");
    const old = client.cookie;
    clock.seconds(61);
    await client.post("/set/theme/dark");
    expect(client.cookie).not.toBe(old);
    expect((await client.get("/get/user")).text).toBe("null");
    expect((await client.get("/get/theme")).text).toBe('"dark"');
  });

  test("expiry_secs = 0 makes a browser-session cookie", async () => {
    const app = await t.mount({ expirySecs: 0 });
    const res = await app.client().post("/set/user/alice");
    expect(res.headers.get("set-cookie")).not.toMatch(/Max-Age/);
  });
});
