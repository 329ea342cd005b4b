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
