import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createDemoApp } from "../../examples/demo/app.js";
import { launchIncognito } from "../support/browser.js";

/**
 * The demo's "Your sessions" page in Chromium: two browsers (two contexts, so two cookie jars)
 * signed in as the same user; one lists both and signs the other out, whose next page is anonymous.
 * A demo of its own, so no other test's sessions show up in the list.
 */
let base = "";
let demo: ReturnType<typeof serve>;
let browser: Browser;

beforeAll(async () => {
  const app = createDemoApp({ env: {} });
  demo = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const s = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }, () => resolve(s));
  });
  base = `http://localhost:${((demo as unknown as Server).address() as AddressInfo).port}`;
  browser = await launchIncognito();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await new Promise((r) => (demo as unknown as Server | undefined)?.close(r));
});

const PASSWORDS = { alice: "wonderland", bob: "builder" };

/** A new browser that says `userAgent`, signed in as `user`, on the dashboard. */
async function signedIn(userAgent: string, user: keyof typeof PASSWORDS = "alice"): Promise<Page> {
  const page = await (await browser.newContext({ userAgent })).newPage();
  await page.goto(`${base}/login`);
  await page.fill('input[name="username"]', user);
  await page.fill('input[name="password"]', PASSWORDS[user]);
  await Promise.all([page.waitForURL(`${base}/dashboard`), page.click("#login-form button")]);
  expect(await page.textContent("#user")).toBe(user);
  return page;
}

async function expectSignedOut(page: Page) {
  await page.goto(`${base}/dashboard`);
  expect(new URL(page.url()).pathname).toBe("/login");
  expect(await page.locator("#who").count()).toBe(0);
}

describe("the demo's sessions page in Chromium", () => {
  test("browser A lists both of alice's sessions and signs browser B out", async () => {
    const b = await signedIn("Browser B (test)");
    const a = await signedIn("Browser A (test)");

    // The dashboard links to the page.
    await Promise.all([a.waitForURL(`${base}/account/sessions`), a.click("#sessions-link")]);
    const entries = a.locator("li[data-session-handle]");
    expect(await entries.count()).toBe(2);
    const current = a.locator('li[data-session-handle][data-current="true"]');
    expect(await current.count()).toBe(1);
    expect(await current.locator(".agent").textContent()).toBe("Browser A (test)");
    expect(await current.locator("form").count()).toBe(0);
    const other = a.locator("li[data-session-handle]:not([data-current])");
    expect(await other.locator(".agent").textContent()).toBe("Browser B (test)");
    expect(await other.locator(".address").textContent()).toMatch(
      /^(127\.0\.0\.1|::1|::ffff:127\.0\.0\.1)$/,
    );
    expect(await other.locator("time").count()).toBe(2);
    const handle = await other.getAttribute("data-session-handle");
    expect(handle).toMatch(/^[\w-]+$/);

    // B is signed in until A revokes it.
    await b.goto(`${base}/dashboard`);
    expect(await b.textContent("#user")).toBe("alice");
    await Promise.all([
      a.waitForURL(`${base}/account/sessions`),
      other.locator('button[type="submit"]').click(),
    ]);
    expect(await a.getAttribute("#flash .flash", "class")).toBe("flash flash-success");
    expect(await a.locator("li[data-session-handle]").count()).toBe(1);
    expect(await a.locator(`li[data-session-handle="${handle}"]`).count()).toBe(0);

    await expectSignedOut(b);
    // A is still signed in; when it signs out too, alice has no session left.
    await a.goto(`${base}/dashboard`);
    expect(await a.textContent("#user")).toBe("alice");
    await Promise.all([a.waitForURL(`${base}/`), a.click('#logout-form button[type="submit"]')]);
    const c = await signedIn("Browser C (test)");
    await c.goto(`${base}/account/sessions`);
    expect(await c.locator("li[data-session-handle]").count()).toBe(1);
    await c.context().close();
    await a.context().close();
    await b.context().close();
  }, 60_000);

  test("sign out everywhere else", async () => {
    const others = [await signedIn("Phone (test)", "bob"), await signedIn("Laptop (test)", "bob")];
    const a = await signedIn("Desk (test)", "bob");
    await a.goto(`${base}/account/sessions`);
    expect(await a.locator("li[data-session-handle]").count()).toBe(3);
    await Promise.all([
      a.waitForURL(`${base}/account/sessions`),
      a.click('#revoke-others-form button[type="submit"]'),
    ]);
    expect(await a.textContent("#flash")).toContain("(2 sessions)");
    expect(await a.locator('li[data-session-handle][data-current="true"]').count()).toBe(1);
    expect(await a.locator("li[data-session-handle]").count()).toBe(1);
    for (const o of others) await expectSignedOut(o);
    for (const p of [a, ...others]) await p.context().close();
  }, 60_000);
});
