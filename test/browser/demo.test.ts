import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import type { BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createDemoApp } from "../../examples/demo/app.js";
import { launchBrowser } from "../support/browser.js";

/**
 * The demo in a real browser (Debian's Chromium through playwright-core): the whole flow a user
 * clicks through, plus the attacks a browser can mount. With COATCHECK_SCREENSHOT=1 it saves the
 * dashboard screenshot the README shows (docs/demo-dashboard.png).
 */
let base = "";
let attacker = "";
let demo: ReturnType<typeof serve>;
let evil: Server;
let browser: Awaited<ReturnType<typeof launchBrowser>>;

function listening(server: { address(): AddressInfo | string | null }): number {
  return (server.address() as AddressInfo).port;
}

beforeAll(async () => {
  const app = createDemoApp({ env: {} });
  demo = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const s = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }, () => resolve(s));
  });
  // "localhost" and "127.0.0.1" are different sites to the browser: the attacker lives on the latter.
  base = `http://localhost:${listening(demo as unknown as Server)}`;
  evil = createServer((req, res) => {
    const target = new URL(req.url ?? "/", "http://x").searchParams.get("target") ?? "";
    res.writeHead(200, { "content-type": "text/html" });
    res.end(`<!DOCTYPE html><form id="f" method="post" action="${target}">
      <input name="item" value="forged-item"></form>
      <script>document.getElementById("f").submit()</script>`);
  });
  await new Promise<void>((r) => evil.listen(0, "127.0.0.1", r));
  attacker = `http://127.0.0.1:${listening(evil)}`;
  browser = await launchBrowser();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await new Promise((r) => evil?.close(r));
  await new Promise((r) => (demo as unknown as Server | undefined)?.close(r));
});

async function freshPage(): Promise<{ page: Page; context: BrowserContext }> {
  await browser.context.clearCookies();
  const page = await browser.context.newPage();
  return { page, context: browser.context };
}

async function login(page: Page, username: string, password: string, remember = false) {
  await page.goto(`${base}/login`);
  await page.fill('input[name="username"]', username);
  await page.fill('input[name="password"]', password);
  if (remember) await page.check('input[name="remember_me"]');
  await Promise.all([
    page.waitForLoadState("load"),
    page.click('#login-form button[type="submit"]'),
  ]);
}

async function sessionCookie(context: BrowserContext) {
  return (await context.cookies(base)).find((c) => c.name === "session_id");
}

describe("the demo in Chromium", () => {
  test("login, flash shown once, dashboard screenshot, admin, cart via HTMX, logout", async () => {
    const { page, context } = await freshPage();
    await page.goto(`${base}/`);
    expect(await page.textContent("h1")).toBe("coatcheck demo");

    await login(page, "alice", "wonderland");
    expect(new URL(page.url()).pathname).toBe("/dashboard");
    expect(await page.textContent("#user")).toBe("alice");
    expect(await page.textContent("#flash")).toContain("Logged in! Welcome, alice.");
    expect(await page.getAttribute("#flash .flash", "class")).toBe("flash flash-success");
    // The README's picture; rewritten only on request (COATCHECK_SCREENSHOT=1) so a test run leaves
    // the work tree clean.
    const shot = await page.screenshot(
      process.env.COATCHECK_SCREENSHOT === "1" ? { path: "docs/demo-dashboard.png" } : {},
    );
    expect(shot.length).toBeGreaterThan(0);

    // A session cookie without remember-me: the configured expiry_secs (86400).
    const cookie = await sessionCookie(context);
    expect(cookie?.httpOnly).toBe(true);
    expect(cookie?.sameSite).toBe("Lax");
    expect((cookie?.expires ?? 0) - Date.now() / 1000).toBeGreaterThan(86_400 - 120);
    expect((cookie?.expires ?? 0) - Date.now() / 1000).toBeLessThanOrEqual(86_400 + 5);

    await page.reload();
    expect(await page.textContent("#flash")).toBe("");

    await page.goto(`${base}/admin`);
    expect(await page.textContent("#admin-secret")).toContain("Admin content");

    await page.goto(`${base}/cart`);
    expect(await page.textContent("#cart-count")).toBe("0");
    for (const item of ["apple", "pear", "<b>plum</b>"]) {
      await page.fill('input[name="item"]', item);
      await Promise.all([
        page.waitForResponse((r) => r.url().endsWith("/cart/items") && r.status() === 200),
        page.click('#cart-form button[type="submit"]'),
      ]);
    }
    await page.waitForFunction(() => document.querySelector("#cart-count")?.textContent === "3");
    // The item is shown as text, not markup.
    expect(await page.locator("ul.cart li").nth(2).textContent()).toBe("<b>plum</b>");

    // Twenty fast parallel adds from the page, with the token from the meta tag: the per-session
    // lock keeps every one of them.
    const statuses = await page.evaluate(async () => {
      const token =
        document.querySelector<HTMLMetaElement>('meta[name="csrf-token"]')?.content ?? "";
      const add = (i: number) =>
        fetch("/cart/items", {
          method: "POST",
          headers: {
            "X-CSRF-Token": token,
            "HX-Request": "true",
            "content-type": "application/x-www-form-urlencoded",
          },
          body: `item=parallel-${i}`,
        }).then((r) => r.status);
      return Promise.all(Array.from({ length: 20 }, (_, i) => add(i)));
    });
    expect(statuses).toEqual(Array(20).fill(200));
    await page.reload();
    expect(await page.textContent("#cart-count")).toBe("23");

    // Logout: the old cookie is worthless afterwards.
    await page.goto(`${base}/dashboard`);
    const before = await sessionCookie(context);
    await Promise.all([
      page.waitForURL(`${base}/`),
      page.click('#logout-form button[type="submit"]'),
    ]);
    expect(await page.textContent("#flash")).toContain("You have been logged out.");
    expect(await page.getAttribute("#flash .flash", "class")).toBe("flash flash-info");
    const replay = await fetch(`${base}/dashboard`, {
      headers: { cookie: `session_id=${before?.value}`, accept: "text/html" },
      redirect: "manual",
    });
    expect(replay.status).toBe(303);
    expect(replay.headers.get("location")).toBe("/login");

    // Back after logout shows no private data.
    await page.goBack();
    await page.waitForLoadState("load");
    expect(await page.content()).not.toContain("Welcome, <strong");
    expect(new URL(page.url()).pathname).toBe("/login");
    await page.close();
  });

  test("bob is forbidden from /admin", async () => {
    const { page } = await freshPage();
    await login(page, "bob", "builder");
    expect(await page.textContent("#user")).toBe("bob");
    const response = await page.goto(`${base}/admin`);
    expect(response?.status()).toBe(403);
    expect(await page.content()).not.toContain("Admin content");
    await page.close();
  });

  test("a wrong password goes back to the login page with an error flash", async () => {
    const { page } = await freshPage();
    await login(page, "alice", "not-the-password");
    expect(new URL(page.url()).pathname).toBe("/login");
    expect(await page.getAttribute("#flash .flash", "class")).toBe("flash flash-error");
    await page.close();
  });

  test("remember me gives a 30-day cookie", async () => {
    const { page, context } = await freshPage();
    await login(page, "alice", "wonderland", true);
    expect(await page.textContent("#user")).toBe("alice");
    const cookie = await sessionCookie(context);
    const thirtyDays = 30 * 86_400;
    expect((cookie?.expires ?? 0) - Date.now() / 1000).toBeGreaterThan(thirtyDays - 120);
    expect((cookie?.expires ?? 0) - Date.now() / 1000).toBeLessThanOrEqual(thirtyDays + 5);
    await page.close();
  });

  test("a forged cross-site form post is rejected and changes nothing", async () => {
    const { page } = await freshPage();
    await login(page, "alice", "wonderland");
    await page.goto(`${base}/cart`);
    const count = await page.textContent("#cart-count");
    const forged = page.waitForResponse((r) => r.url() === `${base}/cart/items`);
    await page.goto(`${attacker}/?target=${encodeURIComponent(`${base}/cart/items`)}`);
    expect((await forged).status()).toBe(403);
    await page.goto(`${base}/cart`);
    expect(await page.textContent("#cart-count")).toBe(count);
    expect(await page.content()).not.toContain("forged-item");
    await page.close();
  });
});
