import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { Hono } from "hono";
import { type Browser, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { getCsrfToken, session } from "../../src/adapters/hono.js";
import { HTMX_HEAD } from "../support/browser.js";
import { csrfEngine } from "./harness.js";

/**
 * The README's "CSRF and HTMX" pattern in a real browser with the htmx the project pins: the meta
 * tag, an `htmx:configRequest` listener that copies it into the header, and the
 * `coatcheck:csrf-failed` event when the check fails. Chromium is Debian's, never downloaded.
 */

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const htmxSource = readFileSync(
  createRequire(import.meta.url).resolve("htmx.org/dist/htmx.min.js"),
);

function layout(meta: string, body: string): string {
  return `<!doctype html><html><head>${meta}
${HTMX_HEAD}</head><body>${body}<p id="status"></p></body></html>`;
}

let browser: Browser;
let server: ReturnType<typeof serve>;
let base: string;
const ran: string[] = [];

beforeAll(async () => {
  const { engine } = csrfEngine({ secure: false });
  const app = new Hono();
  app.get("/htmx.js", (c) => c.body(htmxSource, 200, { "content-type": "text/javascript" }));
  app.use(session(engine));
  app.get("/", async (c) => {
    const csrf = await getCsrfToken(c);
    return c.html(
      layout(
        csrf.asMetaTag(),
        `<button id="go" hx-post="/api-action" hx-swap="outerHTML">Click me</button>
         <form id="plain" method="post" action="/form-action">${csrf.asHiddenField()}<button>Send</button></form>`,
      ),
    );
  });
  app.get("/stale", async (c) => {
    // The session has a secret, but this page's meta tag holds a token of another one.
    (await getCsrfToken(c)).token();
    const stale = `<meta name="csrf-token" content="${"A".repeat(86)}">`;
    return c.html(
      layout(
        stale,
        `<div id="target">kept</div><button id="go" hx-post="/api-action" hx-target="#target">Click me</button>`,
      ),
    );
  });
  app.post("/api-action", (c) => {
    ran.push("api-action");
    return c.html('<p id="done">done</p>');
  });
  app.post("/form-action", (c) => {
    ran.push("form-action");
    return c.html('<p id="posted">posted</p>');
  });
  await new Promise<void>((resolve) => {
    server = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }, () => resolve());
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
});

afterAll(async () => {
  await browser?.close();
  await new Promise((resolve) => server?.close(resolve));
});

describe("CSRF with htmx 2 in Chromium", () => {
  test("the meta tag + htmx:configRequest pattern passes the check", async () => {
    const page = await browser.newPage();
    await page.goto(`${base}/`);
    expect(
      await page.evaluate(() => (window as unknown as { htmx: { version: string } }).htmx.version),
    ).toBe("2.0.11");
    await page.click("#go");
    await page.waitForSelector("#done");
    expect(ran).toContain("api-action");
    await page.close();
  });

  test("a plain form post with the hidden field passes the check", async () => {
    const page = await browser.newPage();
    await page.goto(`${base}/`);
    await Promise.all([page.waitForURL(`${base}/form-action`), page.click("#plain button")]);
    expect(await page.textContent("#posted")).toBe("posted");
    await page.close();
  });

  test("a failed check fires coatcheck:csrf-failed and swaps nothing", async () => {
    const before = ran.length;
    const page = await browser.newPage();
    await page.goto(`${base}/stale`);
    const response = page.waitForResponse(`${base}/api-action`);
    await page.click("#go");
    expect((await response).status()).toBe(403);
    await page.waitForFunction(() => document.getElementById("status")?.textContent !== "");
    expect(await page.textContent("#status")).toBe("csrf failed: token_mismatch");
    expect(await page.textContent("#target")).toBe("kept");
    expect(ran.length).toBe(before);
    await page.close();
  });

  test("a form auto-submitted from another site is refused", async () => {
    const before = ran.length;
    const page = await browser.newPage();
    await page.goto(`${base}/`); // the victim has a session
    // The attacker's page, on another host (localhost is another site than 127.0.0.1).
    const attacker = `http://localhost:${new URL(base).port}`;
    await page.route(`${attacker}/evil`, (route) =>
      route.fulfill({
        contentType: "text/html",
        body: `<form id="f" method="post" action="${base}/form-action"><input name="_csrf" value="guess"></form><script>document.getElementById("f").submit()</script>`,
      }),
    );
    const response = page.waitForResponse(`${base}/form-action`);
    await page.goto(`${attacker}/evil`);
    expect((await response).status()).toBe(403);
    expect(ran.length).toBe(before);
    await page.close();
  });
});
