import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { Hono } from "hono";
import type { BrowserContext } from "playwright-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { getCsrfToken, getSession, session } from "../../src/adapters/hono.js";
import { AuthSession } from "../../src/core/auth.js";
import { createSessionEngine } from "../../src/setup.js";
import { MemoryStore } from "../../src/stores/memory.js";
import { HTMX_HEAD, launchBrowser } from "../support/browser.js";

/**
 * Login and logout through `hx-post` rotate the session id and the CSRF secret, so the page's meta
 * token dies. In Chromium with htmx 2: coatcheck's answer (`HX-Refresh`, or `HX-Redirect` for a
 * redirect) makes htmx load a page with a fresh token, and the next htmx post is accepted.
 */

const htmxSource = readFileSync(
  createRequire(import.meta.url).resolve("htmx.org/dist/htmx.min.js"),
);

function page(token: string, who: string, extra = ""): string {
  return `<!doctype html><html><head>${token}
${HTMX_HEAD}</head><body>
<p id="who">${who}</p>${extra}
<button id="login" hx-post="/login" hx-target="#status">Sign in</button>
<button id="login-redirect" hx-post="/login-redirect" hx-target="#status">Sign in, redirected</button>
<button id="logout" hx-post="/logout" hx-target="#status">Sign out</button>
<button id="save" hx-post="/save" hx-target="#status">Save</button>
<p id="status"></p></body></html>`;
}

let close: () => Promise<void>;
let context: BrowserContext;
let server: ReturnType<typeof serve>;
let base: string;

beforeAll(async () => {
  const engine = createSessionEngine({ env: {}, secure: false, store: new MemoryStore() });
  const app = new Hono();
  app.get("/htmx.js", (c) => c.body(htmxSource, 200, { "content-type": "text/javascript" }));
  app.use(session(engine));
  const render = async (c: import("hono").Context, extra = "") => {
    const auth = await AuthSession.open(getSession(c));
    const who = auth.isAuthenticated() ? `signed in as ${auth.userId()}` : "signed out";
    return c.html(page((await getCsrfToken(c)).asMetaTag(), who, extra));
  };
  app.get("/", (c) => render(c));
  app.get("/home", (c) => render(c, '<p id="home">home</p>'));
  app.post("/login", async (c) => {
    await (await AuthSession.open(getSession(c))).login("alice", []);
    return c.html("signed in");
  });
  app.post("/login-redirect", async (c) => {
    await (await AuthSession.open(getSession(c))).login("alice", []);
    return c.redirect("/home", 303);
  });
  app.post("/logout", async (c) => {
    await (await AuthSession.open(getSession(c))).logout();
    return c.html("signed out");
  });
  app.post("/save", (c) => c.html("saved"));
  await new Promise<void>((resolve) => {
    server = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }, () => resolve());
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  ({ context, close } = await launchBrowser());
});

afterAll(async () => {
  await close?.();
  await new Promise((resolve) => server?.close(resolve));
});

describe("htmx 2 in Chromium: a rotation never leaves the page with a dead token", () => {
  test("login and logout through hx-post reload the page; the next post is accepted", async () => {
    const tab = await context.newPage();
    await tab.goto(`${base}/`);
    const before = await tab.locator('meta[name="csrf-token"]').getAttribute("content");
    await tab.click("#login");
    await tab.waitForFunction(
      () => document.getElementById("who")?.textContent === "signed in as alice",
    );
    const after = await tab.locator('meta[name="csrf-token"]').getAttribute("content");
    expect(after).not.toBe(before);
    await tab.click("#save");
    await tab.waitForFunction(() => document.getElementById("status")?.textContent !== "");
    expect(await tab.textContent("#status")).toBe("saved");

    await tab.click("#logout");
    await tab.waitForFunction(() => document.getElementById("who")?.textContent === "signed out");
    await tab.click("#save");
    await tab.waitForFunction(() => document.getElementById("status")?.textContent !== "");
    expect(await tab.textContent("#status")).toBe("saved");
    await tab.close();
  });

  test("a redirect after the rotation loads the next page as a whole, with a fresh token", async () => {
    const tab = await context.newPage();
    await tab.goto(`${base}/`);
    await tab.click("#login-redirect");
    await tab.waitForURL(`${base}/home`);
    expect(await tab.textContent("#who")).toBe("signed in as alice");
    await tab.click("#save");
    await tab.waitForFunction(() => document.getElementById("status")?.textContent !== "");
    expect(await tab.textContent("#status")).toBe("saved");
    await tab.close();
  });
});
