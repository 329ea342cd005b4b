/** HTML for the demo: small template functions, every interpolated value escaped. */

const ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/** Escape text for HTML content and attribute values. */
export function esc(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (ch) => ESCAPES[ch] as string);
}

export interface FlashView {
  cssClass: string;
  icon: string;
  text: string;
}

export interface LayoutInput {
  title: string;
  /** `<meta name="csrf-token" …>` from CsrfToken.asMetaTag(), already escaped. */
  csrfMeta?: string;
  /** The hidden `_csrf` input from CsrfToken.asHiddenField(), for the logout form. */
  csrfField?: string;
  user?: { id: string; roles: string[] } | null;
  flash?: FlashView[];
  body: string;
}

const ICONS: Record<string, string> = {
  "check-circle": "✔",
  "info-circle": "ℹ",
  "exclamation-triangle": "⚠",
  "x-circle": "✖",
};

const STYLE = `
  body { font: 16px/1.5 system-ui, sans-serif; margin: 0; background: #f6f7f9; color: #1d232b; }
  header { background: #243447; color: #fff; padding: .75rem 1.5rem; display: flex; gap: 1.25rem; align-items: center; }
  header a { color: #cfe3ff; text-decoration: none; }
  header .who { margin-left: auto; }
  header form { display: inline; }
  main { max-width: 46rem; margin: 2rem auto; background: #fff; padding: 1.5rem 2rem; border-radius: 8px; box-shadow: 0 1px 3px #0002; }
  .flash { padding: .6rem 1rem; border-radius: 6px; margin-bottom: .75rem; }
  .flash-success { background: #e3f6e8; border: 1px solid #7cc896; }
  .flash-info { background: #e6f0fb; border: 1px solid #86b2e5; }
  .flash-warning { background: #fff6dd; border: 1px solid #e7c35a; }
  .flash-error { background: #fde8e8; border: 1px solid #e48a8a; }
  label { display: block; margin: .5rem 0; }
  input[type=text], input[type=password] { padding: .35rem .5rem; width: 16rem; }
  button { padding: .4rem .9rem; border-radius: 5px; border: 1px solid #47627f; background: #2f4a66; color: #fff; cursor: pointer; }
  ul.cart li { padding: .15rem 0; }
  ul.sessions { list-style: none; padding: 0; }
  ul.sessions li { border: 1px solid #d6dbe1; border-radius: 6px; padding: .6rem 1rem; margin-bottom: .6rem; }
  ul.sessions li[data-current] { border-color: #7cc896; background: #f3fbf5; }
  ul.sessions form { margin-top: .4rem; }
  .tag { font-size: .8rem; background: #2f7a4a; color: #fff; border-radius: 4px; padding: 0 .4rem; margin-left: .4rem; }
  .muted { color: #5d6875; }
`;

export function layout({
  title,
  csrfMeta = "",
  csrfField = "",
  user,
  flash = [],
  body,
}: LayoutInput): string {
  const flashHtml = flash
    .map(
      (m) =>
        `<div class="flash ${esc(m.cssClass)}" role="status" data-icon="${esc(m.icon)}">${ICONS[m.icon] ?? ""} ${esc(m.text)}</div>`,
    )
    .join("\n");
  const who = user
    ? `<span class="who">Signed in as <strong id="who">${esc(user.id)}</strong></span>
       <form method="post" action="/logout" id="logout-form">${csrfField}<button type="submit">Log out</button></form>`
    : `<a class="who" href="/login">Log in</a>`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${esc(title)} · coatcheck demo</title>
${csrfMeta}
<style>${STYLE}</style>
<script src="/static/htmx.min.js"></script>
<script src="/static/csrf-htmx.js" defer></script>
</head>
<body>
<header>
  <strong>coatcheck</strong>
  <a href="/">Home</a>
  <a href="/dashboard">Dashboard</a>
  <a href="/admin">Admin</a>
  <a href="/cart">Cart</a>
  ${who}
</header>
<main>
<div id="flash">${flashHtml}</div>
${body}
</main>
</body>
</html>`;
}

/**
 * The HTMX pattern: read the token from the meta tag and send it as X-CSRF-Token on every
 * htmx request. Served as a file (not inline) so a strict Content-Security-Policy can be used.
 */
export const CSRF_HTMX_SCRIPT = `document.body.addEventListener("htmx:configRequest", (e) => {
  const meta = document.querySelector('meta[name="csrf-token"]');
  if (meta) e.detail.headers["X-CSRF-Token"] = meta.content;
});
document.body.addEventListener("coatcheck:csrf-failed", () => {
  const box = document.getElementById("flash");
  if (box) box.innerHTML = '<div class="flash flash-error" role="alert">Your form expired. Reload the page and try again.</div>';
});
`;

export function cartFragment(items: string[]): string {
  const list = items.length
    ? `<ul class="cart">${items.map((i) => `<li>${esc(i)}</li>`).join("")}</ul>`
    : `<p class="muted">Your cart is empty.</p>`;
  return `<div id="cart"><p><strong id="cart-count">${items.length}</strong> item(s)</p>${list}</div>`;
}

/** One of the user's sessions as the sessions page shows it (the library's `SessionListing`). */
export interface SessionView {
  handle: string;
  createdAt: Date;
  lastSeenAt: Date;
  current: boolean;
  userAgent: string | null;
  address: string | null;
}

/** A date as `2026-12-01 23:10:05 UTC`, inside a machine-readable `<time>`. */
function timeTag(date: Date): string {
  const iso = date.toISOString();
  return `<time datetime="${esc(iso)}">${esc(`${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC`)}</time>`;
}

/**
 * The "Your sessions" page body: one `<li data-session-handle>` per session (the current one also
 * `data-current="true"`), a revoke form on every other one, and "sign out everywhere else" when
 * there is any other. `csrfField` is the hidden `_csrf` input the forms post.
 */
export function sessionsBody(sessions: readonly SessionView[], csrfField: string): string {
  const items = sessions.map((s) => {
    const revoke = s.current
      ? ""
      : `<form method="post" action="/account/sessions/revoke" class="revoke-form">${csrfField}
    <input type="hidden" name="session" value="${esc(s.handle)}">
    <button type="submit">Sign out this session</button>
  </form>`;
    return `<li data-session-handle="${esc(s.handle)}"${s.current ? ' data-current="true"' : ""}>
  <strong class="agent">${esc(s.userAgent ?? "Unknown browser")}</strong>${s.current ? '<span class="tag">this browser</span>' : ""}
  <div class="muted">from <span class="address">${esc(s.address ?? "an unknown address")}</span> · signed in ${timeTag(s.createdAt)} · last seen ${timeTag(s.lastSeenAt)}</div>
  ${revoke}
</li>`;
  });
  const others = sessions.some((s) => !s.current)
    ? `<form method="post" action="/account/sessions/revoke-others" id="revoke-others-form">${csrfField}
  <button type="submit">Sign out everywhere else</button>
</form>`
    : `<p class="muted">You are signed in on this browser only.</p>`;
  return `<h1>Your sessions</h1>
<p>Everywhere you are signed in. Signing a session out takes effect on its next request.</p>
<ul class="sessions" id="sessions">${items.join("\n")}</ul>
${others}`;
}
