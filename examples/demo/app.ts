import { createHash, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import {
  AuthSession,
  type CoatcheckOptions,
  CsrfToken,
  type DeviceInfo,
  FlashMessage,
  FlashMessages,
  type Session,
  SessionEngine,
  typedSession,
} from "coatcheck";
import {
  getCsrfToken,
  getSession,
  requireAuth,
  requireRole,
  session,
  sessionLock,
} from "coatcheck/hono";
import { Hono } from "hono";
import { z } from "zod";
import {
  CSRF_HTMX_SCRIPT,
  cartFragment,
  esc,
  type FlashView,
  layout,
  sessionsBody,
} from "./views.js";

/** The demo's users. Passwords are compared as SHA-256 digests in constant time. */
const USERS: Record<string, { password: string; roles: string[] }> = {
  alice: { password: "wonderland", roles: ["user", "admin"] },
  bob: { password: "builder", roles: ["user"] },
};

const digest = (text: string) => createHash("sha256").update(text).digest();

function checkCredentials(
  username: unknown,
  password: unknown,
): { id: string; roles: string[] } | null {
  if (typeof username !== "string" || typeof password !== "string") return null;
  const user = Object.hasOwn(USERS, username) ? USERS[username] : undefined;
  // Compare even for unknown users, so the timing does not tell which names exist.
  const ok = timingSafeEqual(digest(password), digest(user?.password ?? "\u0000"));
  return user && ok ? { id: username, roles: user.roles } : null;
}

/** A shopping cart, as a schema-validated typed session. */
const Cart = z.object({ items: z.array(z.string().min(1).max(100)).max(500).default([]) });
const cartSession = typedSession("cart", Cart);

const REMEMBER_ME_SECS = 30 * 24 * 60 * 60;
const htmxPath = createRequire(import.meta.url).resolve("htmx.org/dist/htmx.min.js");

/**
 * What the sessions page shows about the device that signs in: its User-Agent header and the
 * address of the connection (through `@hono/node-server`; there is none in `app.request()`). The
 * demo trusts no proxy, so behind one this is the proxy's address. coatcheck drops control
 * characters and cuts both to a bounded length; the page escapes them.
 */
function deviceOf(c: import("hono").Context): DeviceInfo {
  const incoming = (c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined)
    ?.incoming;
  const userAgent = c.req.header("user-agent");
  const address = incoming?.socket?.remoteAddress;
  return { ...(userAgent ? { userAgent } : {}), ...(address ? { address } : {}) };
}

/**
 * Page chrome shared by every page: user, flash messages and, on pages that post something, the
 * CSRF meta tag. A page has something to post when it holds a form or an htmx action (`posts`),
 * or when a user is signed in (the header's logout form). Pages that only read render no token, so
 * an anonymous visit creates no session, sets no cookie and writes nothing to the store.
 */
async function page(
  s: Session,
  title: string,
  body: string,
  { posts = false }: { posts?: boolean } = {},
): Promise<string> {
  const [auth, flash] = await Promise.all([AuthSession.open(s), FlashMessages.of(s).messages()]);
  const user = auth.isAuthenticated()
    ? { id: auth.userId() as string, roles: [...auth.data().roles] }
    : null;
  const csrf = posts || user ? await CsrfToken.from(s) : null;
  const views: FlashView[] = flash.map((m) => ({
    cssClass: m.cssClass,
    icon: m.icon,
    text: m.message,
  }));
  return layout({
    title,
    user,
    flash: views,
    ...(csrf ? { csrfMeta: csrf.asMetaTag(), csrfField: csrf.asHiddenField() } : {}),
    body,
  });
}

/** The demo's `config.toml`, beside this file. */
export const DEMO_CONFIG = fileURLToPath(new URL("./config.toml", import.meta.url));

/**
 * Build the demo app from `config.toml` (and `COATCHECK_SESSION__…` environment overrides), or from
 * a ready engine (tests pass one to close its store afterwards).
 */
export function createDemoApp(options: CoatcheckOptions | SessionEngine = {}): Hono {
  const app = new Hono();
  app.use(
    session(options instanceof SessionEngine ? options : { configFile: DEMO_CONFIG, ...options }),
  );

  // Pages that show a user's data must not be kept by the browser's or a proxy's cache: after
  // logout, Back must not bring them back.
  const privatePage = async (c: import("hono").Context, next: () => Promise<void>) => {
    await next();
    c.header("Cache-Control", "no-store");
  };

  app.get("/static/htmx.min.js", (c) => {
    c.header("Cache-Control", "public, max-age=86400");
    return c.body(readFileSync(htmxPath), 200, {
      "content-type": "text/javascript; charset=utf-8",
    });
  });
  app.get("/static/csrf-htmx.js", (c) =>
    c.body(CSRF_HTMX_SCRIPT, 200, { "content-type": "text/javascript; charset=utf-8" }),
  );

  app.get("/", async (c) => {
    const body = `<h1>coatcheck demo</h1>
<p>Server-side sessions for an HTMX app: sign in as <code>alice</code> / <code>wonderland</code>
(user, admin) or <code>bob</code> / <code>builder</code> (user).</p>
<p><a href="/login">Log in</a> · <a href="/cart">Cart</a></p>`;
    return c.html(await page(getSession(c), "Home", body));
  });

  app.get("/login", async (c) => {
    const csrf = await getCsrfToken(c);
    const body = `<h1>Log in</h1>
<form method="post" action="/login" id="login-form">
  ${csrf.asHiddenField()}
  <label>Username <input type="text" name="username" autocomplete="username" required></label>
  <label>Password <input type="password" name="password" autocomplete="current-password" required></label>
  <label><input type="checkbox" name="remember_me" value="on"> Remember me for 30 days</label>
  <button type="submit">Log in</button>
</form>`;
    return c.html(await page(getSession(c), "Log in", body, { posts: true }));
  });

  app.post("/login", async (c) => {
    const form = await c.req.parseBody();
    const s = getSession(c);
    const user = checkCredentials(form.username, form.password);
    if (!user) {
      await FlashMessages.push(s, FlashMessage.error("Invalid username or password."));
      return c.redirect("/login", 303);
    }
    const auth = await AuthSession.open(s);
    // Saves, gives a new session id and CSRF secret, and records the session under the user.
    await auth.login(user.id, user.roles, deviceOf(c));
    if (form.remember_me === "on") await s.setExpiry(REMEMBER_ME_SECS);
    await FlashMessages.push(s, FlashMessage.success(`Logged in! Welcome, ${user.id}.`));
    return c.redirect("/dashboard", 303);
  });

  app.get("/dashboard", privatePage, requireAuth({ loginUrl: "/login" }), async (c) => {
    const s = getSession(c);
    const auth = await AuthSession.open(s);
    const since = new Date((auth.data().authenticatedAt ?? 0) * 1000).toISOString();
    const body = `<h1>Dashboard</h1>
<p>Welcome, <strong id="user">${esc(auth.userId())}</strong>!</p>
<p>Roles: <span id="roles">${esc(auth.data().roles.join(", "))}</span> · signed in at ${esc(since)}</p>
<p><a href="/cart">Go to your cart</a> · <a href="/account/sessions" id="sessions-link">Your sessions</a>${auth.hasRole("admin") ? ' · <a href="/admin">Admin</a>' : ""}</p>`;
    return c.html(await page(s, "Dashboard", body));
  });

  app.get("/admin", privatePage, requireRole("admin", { loginUrl: "/login" }), async (c) => {
    const body = `<h1>Admin</h1><p id="admin-secret">Admin content: only users with the admin role see this.</p>`;
    return c.html(await page(getSession(c), "Admin", body));
  });

  app.get("/cart", privatePage, async (c) => {
    const s = getSession(c);
    const cart = await cartSession.open(s);
    const body = `<h1>Cart</h1>
<form hx-post="/cart/items" hx-target="#cart" hx-swap="outerHTML" id="cart-form">
  <label>Item <input type="text" name="item" maxlength="100" required></label>
  <button type="submit">Add to cart</button>
</form>
${cartFragment([...cart.data().items])}`;
    return c.html(await page(s, "Cart", body, { posts: true }));
  });

  app.post("/cart/items", sessionLock(), async (c) => {
    const form = await c.req.parseBody();
    const item = typeof form.item === "string" ? form.item.trim() : "";
    if (item.length === 0 || item.length > 100) {
      return c.html(
        '<div id="cart"><p class="flash flash-error">Item must be 1 to 100 characters.</p></div>',
        422,
      );
    }
    const cart = await cartSession.open(getSession(c));
    if (cart.data().items.length >= 500) {
      return c.html(
        '<div id="cart"><p class="flash flash-error">Your cart is full.</p></div>',
        422,
      );
    }
    cart.dataMut().items.push(item);
    await cart.save();
    c.header("Cache-Control", "no-store");
    return c.html(cartFragment([...cart.data().items]));
  });

  const signedIn = requireAuth({ loginUrl: "/login" });

  app.get("/account/sessions", privatePage, signedIn, async (c) => {
    const s = getSession(c);
    const auth = await AuthSession.open(s);
    const [sessions, csrf] = await Promise.all([auth.listSessions(), getCsrfToken(c)]);
    // This browser first, then the most recently seen.
    sessions.sort((a, b) => Number(b.current) - Number(a.current) || +b.lastSeenAt - +a.lastSeenAt);
    const body = sessionsBody(sessions, csrf.asHiddenField());
    return c.html(await page(s, "Your sessions", body, { posts: true }));
  });

  app.post("/account/sessions/revoke", signedIn, async (c) => {
    const s = getSession(c);
    const handle = (await c.req.parseBody()).session;
    const auth = await AuthSession.open(s);
    // false for anything but a handle of one of this user's live sessions: it revokes nothing.
    const revoked = typeof handle === "string" && (await auth.revokeSession(handle));
    await FlashMessages.push(
      s,
      revoked
        ? FlashMessage.success("That session is signed out.")
        : FlashMessage.error("No such session: it may have ended already."),
    );
    return c.redirect("/account/sessions", 303);
  });

  app.post("/account/sessions/revoke-others", signedIn, async (c) => {
    const s = getSession(c);
    const count = await (await AuthSession.open(s)).revokeOtherSessions();
    await FlashMessages.push(
      s,
      count > 0
        ? FlashMessage.success(
            `Signed out everywhere else (${count} session${count === 1 ? "" : "s"}).`,
          )
        : FlashMessage.info("There were no other sessions to sign out."),
    );
    return c.redirect("/account/sessions", 303);
  });

  app.post("/logout", async (c) => {
    const s = getSession(c);
    const auth = await AuthSession.open(s);
    await auth.logout(); // new session id: the old cookie is worthless from now on
    await FlashMessages.push(s, FlashMessage.info("You have been logged out."));
    return c.redirect("/", 303);
  });

  return app;
}
