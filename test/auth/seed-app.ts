import { Hono } from "hono";
import { z } from "zod";
import { getSession, requireAuth, requireRole, session } from "../../src/adapters/hono.js";
import { AuthSession } from "../../src/core/auth.js";
import type { Logger } from "../../src/core/engine.js";
import { FlashMessage, FlashMessages } from "../../src/core/flash.js";
import { CSRF_SECRET_KEY } from "../../src/core/session.js";
import type { SessionStore } from "../../src/core/store.js";
import { typedSession } from "../../src/core/typed.js";
import { createSessionEngine } from "../../src/setup.js";

/** A logger that keeps what it is told, so tests can prove a problem was logged. */
export function recordingLogger() {
  const warnings: string[] = [];
  const errors: string[] = [];
  const logger: Logger = {
    warn: (_f: unknown, message: string) => warnings.push(message),
    error: (_f: unknown, message: string) => errors.push(message),
  };
  return { logger, warnings, errors };
}

const escapeHtml = (text: string) =>
  text.replace(
    /[&<>"']/g,
    (ch) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[ch] ?? ch,
  );

/** The seed's `CartSession`, in zod: every field has a default, so the schema gives the default. */
export const CartSession = z.object({
  items: z.array(z.string()).default([]),
  total: z.number().default(0),
});
export const cartSession = typedSession("cart", CartSession);

function renderCart(items: string[], total: number): string {
  return `<ul>${items.map((i) => `<li>${escapeHtml(i)}</li>`).join("")}</ul><p>${total.toFixed(2)}</p>`;
}

async function renderFlash(flash: FlashMessages): Promise<string> {
  return (await flash.messages())
    .map((m) => `<div class="${m.cssClass}" data-icon="${m.icon}">${escapeHtml(m.message)}</div>`)
    .join("");
}

/**
 * The seed's examples as one Hono app: login → dashboard with a flash, admin by role, logout, the
 * shopping cart, and a few probes that expose what the session holds. CSRF is off here: these
 * suites test auth and flash; CSRF has its own.
 */
export function seedApp(store: SessionStore, logger: Logger, now?: () => number) {
  const engine = createSessionEngine({
    env: {},
    secure: false,
    csrf: { enabled: false },
    store,
    logger,
    ...(now ? { now } : {}),
  });
  const app = new Hono();
  // A handler that throws is an ordinary 500 here; keep the test output quiet about it.
  app.onError((_, c) => c.text("Internal Server Error", 500));
  app.use(session(engine));

  app.get("/login", (c) => c.html("<form method=post action=/login>Sign in</form>"));
  app.post("/login", async (c) => {
    const form = await c.req.parseBody();
    const user = String(form.user ?? "");
    const roles = String(form.roles ?? "")
      .split(",")
      .filter(Boolean);
    const auth = await AuthSession.open(getSession(c));
    await auth.login(user, roles);
    await FlashMessages.push(getSession(c), FlashMessage.success(`Welcome back, ${user}!`));
    return c.redirect("/dashboard", 303);
  });
  app.get("/dashboard", requireAuth(), async (c) => {
    const s = getSession(c);
    const auth = await AuthSession.open(s);
    return c.html(
      `<h1>Welcome, ${escapeHtml(auth.userId() ?? "")}!</h1>${await renderFlash(FlashMessages.of(s))}`,
    );
  });
  app.get("/admin", requireRole("admin"), (c) => c.html("Admin dashboard"));
  app.get("/api/me", requireAuth(), async (c) => {
    const auth = await AuthSession.open(getSession(c));
    return c.json(auth.data());
  });
  app.post("/logout", async (c) => {
    const auth = await AuthSession.open(getSession(c));
    await auth.logout();
    await FlashMessages.push(getSession(c), FlashMessage.info("You have been signed out."));
    return c.redirect("/", 303);
  });
  app.get("/", async (c) =>
    c.html(`<h1>Home</h1>${await renderFlash(FlashMessages.of(getSession(c)))}`),
  );

  // The seed's TypedSession example, as written.
  app.post("/cart/:itemId", async (c) => {
    const session = await cartSession.open(getSession(c));
    session.dataMut().items.push(c.req.param("itemId"));
    session.dataMut().total += 9.99;
    await session.save();
    return c.text("Added to cart");
  });
  app.get("/cart", async (c) => {
    const cart = (await cartSession.open(getSession(c))).data();
    return c.html(renderCart(cart.items, cart.total));
  });

  // Probes.
  app.post("/flash/:kind/:text", async (c) => {
    const text = c.req.param("text");
    const message =
      c.req.param("kind") === "error" ? FlashMessage.error(text) : FlashMessage.success(text);
    await FlashMessages.push(getSession(c), message);
    return c.text("pushed");
  });
  app.get("/flash", async (c) => {
    const messages = await FlashMessages.of(getSession(c)).messages();
    return c.json(messages.map((m) => m.message));
  });
  app.get("/flash-then-fail", async (c) => {
    await FlashMessages.of(getSession(c)).messages();
    return c.text("rendering failed", 500);
  });
  app.get("/flash-then-throw", async (c) => {
    await FlashMessages.of(getSession(c)).messages();
    throw new Error("template bug");
  });
  app.post("/csrf-secret", async (c) => {
    // Stands in for rendering a CSRF token, which stores the secret under this key.
    await getSession(c).insert(CSRF_SECRET_KEY, "secret-before");
    return c.text("ok");
  });
  app.get("/keys", async (c) => c.json((await getSession(c).keys()).sort()));
  return { app, engine };
}
