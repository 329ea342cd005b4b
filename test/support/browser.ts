import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Browser, type BrowserContext, chromium } from "playwright-core";

/** Debian's Chromium; browser tests never download a browser. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/** Flags that keep Chromium off the network (this machine has none) and quiet. */
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

function requireChromium(): void {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `Chromium not found at ${CHROMIUM}: install Debian's chromium package (apt-get install chromium)`,
    );
  }
}

/**
 * Launch headless Chromium with an empty profile. Returns the context and a function that closes
 * it and removes the profile.
 */
export async function launchBrowser(): Promise<{
  context: BrowserContext;
  close: () => Promise<void>;
}> {
  requireChromium();
  const profile = mkdtempSync(join(tmpdir(), "coatcheck-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
  });
  return {
    context,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/**
 * Launch headless Chromium for tests that need several browsers at once: each
 * `browser.newContext()` is one more device, with cookies of its own.
 */
export async function launchIncognito(): Promise<Browser> {
  requireChromium();
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
}

/**
 * The README's htmx client snippet, as a page's `<head>` holds it: htmx, the meta token copied into
 * the header of every htmx request, and the `coatcheck:csrf-failed` event shown in `#status`.
 */
export const HTMX_HEAD = `<script src="/htmx.js"></script>
<script>
  // On document, not document.body: in <head> the body does not exist yet; htmx events bubble.
  document.addEventListener("htmx:configRequest", (e) => {
    e.detail.headers["X-CSRF-Token"] = document.querySelector('meta[name="csrf-token"]').content;
  });
  document.addEventListener("coatcheck:csrf-failed", (e) => {
    document.getElementById("status").textContent = "csrf failed: " + e.detail.reason;
  });
</script>`;
