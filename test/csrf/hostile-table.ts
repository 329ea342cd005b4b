import { expect } from "vitest";
import type { CsrfFailureReason } from "../../src/core/csrf.js";
import type { SpyStore } from "../support/spy-store.js";
import { type Driver, FORM, type Probe, type Routes, TRUSTED, visit } from "./harness.js";

/**
 * Hostile requests, written once and run through every adapter. Each row is a request an attacker
 * (or a broken client) could send; `expect` is 403 with a reason, or 200 for the control rows that
 * prove the table is not rejecting everything.
 */

export interface Context {
  cookie: string;
  token: string;
  ownOrigin: string;
  /** A second visitor's session: its token must not work with the first one's cookie. */
  other: { cookie: string; token: string };
}

export interface Row {
  name: string;
  probe: (ctx: Context) => Probe;
  expect: 200 | CsrfFailureReason;
  /** Other reasons that are right for some framework setups (e.g. nested-name form parsers). */
  alsoAccept?: readonly CsrfFailureReason[];
  /** The framework's own body parser may refuse the request first (still: no handler, no save). */
  parserMayRefuse?: true;
}

const POST = (path: string, headers: Array<[string, string]>, body?: Probe["body"]): Probe => ({
  method: "POST",
  path,
  headers,
  ...(body !== undefined ? { body } : {}),
});

function multipart(parts: Array<{ name: string; value: string; filename?: string }>): {
  type: string;
  body: string;
} {
  const boundary = "----coatcheckBoundary7MA4YWxk";
  let body = "";
  for (const p of parts) {
    const file = p.filename !== undefined ? `; filename="${p.filename}"` : "";
    const type = p.filename !== undefined ? "Content-Type: text/plain\r\n" : "";
    body += `--${boundary}\r\nContent-Disposition: form-data; name="${p.name}"${file}\r\n${type}\r\n${p.value}\r\n`;
  }
  return { type: `multipart/form-data; boundary=${boundary}`, body: `${body}--${boundary}--\r\n` };
}

/** Flip one character of a token, keeping it well formed. */
function tamper(token: string): string {
  const i = Math.floor(token.length / 2);
  return token.slice(0, i) + (token[i] === "A" ? "B" : "A") + token.slice(i + 1);
}

export const ROWS: readonly Row[] = [
  // Controls: the legitimate ways in.
  {
    name: "control: token in the header",
    probe: (c) =>
      POST("/submit", [
        ["cookie", c.cookie],
        ["x-csrf-token", c.token],
      ]),
    expect: 200,
  },
  {
    name: "control: token in an urlencoded field",
    probe: (c) =>
      POST(
        "/submit",
        [
          ["cookie", c.cookie],
          ["content-type", FORM],
        ],
        `a=1&_csrf=${c.token}`,
      ),
    expect: 200,
  },
  {
    name: "control: token in a multipart field",
    probe: (c) => {
      const m = multipart([
        { name: "_csrf", value: c.token },
        { name: "a", value: "1" },
      ]);
      return POST(
        "/submit",
        [
          ["cookie", c.cookie],
          ["content-type", m.type],
        ],
        m.body,
      );
    },
    expect: 200,
  },
  {
    name: "control: odd-case form content type is still a form",
    probe: (c) =>
      POST(
        "/submit",
        [
          ["cookie", c.cookie],
          ["content-type", "Application/X-WWW-Form-Urlencoded; Charset=UTF-8"],
        ],
        `_csrf=${c.token}`,
      ),
    expect: 200,
  },
  {
    name: "control: same-origin Origin and Sec-Fetch-Site",
    probe: (c) =>
      POST("/submit", [
        ["cookie", c.cookie],
        ["x-csrf-token", c.token],
        ["origin", c.ownOrigin],
        ["sec-fetch-site", "same-origin"],
      ]),
    expect: 200,
  },
  {
    name: "control: trusted origin, cross-site, with the token",
    probe: (c) =>
      POST("/submit", [
        ["cookie", c.cookie],
        ["x-csrf-token", c.token],
        ["origin", TRUSTED],
        ["sec-fetch-site", "cross-site"],
      ]),
    expect: 200,
  },
  {
    name: "control: exempt path needs no token",
    probe: () => POST("/api/hook", [["content-type", "application/json"]], "{}"),
    expect: 200,
  },
  { name: "control: GET is safe", probe: () => ({ method: "GET", path: "/submit" }), expect: 200 },
  {
    name: "control: OPTIONS is safe",
    probe: () => ({ method: "OPTIONS", path: "/submit" }),
    expect: 200,
  },

  // No token, whatever the content type (CVE-2024-43787, CVE-2024-48913).
  {
    name: "no token, no content type",
    probe: (c) => POST("/submit", [["cookie", c.cookie]]),
    expect: "token_missing",
  },
  {
    name: "token in a text/plain body",
    probe: (c) =>
      POST(
        "/submit",
        [
          ["cookie", c.cookie],
          ["content-type", "text/plain"],
        ],
        `_csrf=${c.token}`,
      ),
    expect: "token_missing",
  },
  {
    name: "token in an odd-case Text/Plain body",
    probe: (c) =>
      POST(
        "/submit",
        [
          ["cookie", c.cookie],
          ["content-type", "Text/Plain; charset=UTF-8"],
        ],
        `_csrf=${c.token}`,
      ),
    expect: "token_missing",
  },
  {
    name: "token in a body without content type",
    probe: (c) => POST("/submit", [["cookie", c.cookie]], `_csrf=${c.token}`),
    expect: "token_missing",
  },
  {
    name: "token in a JSON body",
    probe: (c) =>
      POST(
        "/submit",
        [
          ["cookie", c.cookie],
          ["content-type", "application/json"],
        ],
        JSON.stringify({ _csrf: c.token }),
      ),
    expect: "token_missing",
  },
  {
    name: "token in the query string",
    probe: (c) => POST(`/submit?_csrf=${c.token}`, [["cookie", c.cookie]]),
    expect: "token_missing",
  },
  {
    name: "token in a cookie",
    probe: (c) =>
      POST("/submit", [["cookie", `${c.cookie}; _csrf=${c.token}; X-CSRF-Token=${c.token}`]]),
    expect: "token_missing",
  },
  {
    name: "form field under another name",
    probe: (c) =>
      POST(
        "/submit",
        [
          ["cookie", c.cookie],
          ["content-type", FORM],
        ],
        `csrf=${c.token}`,
      ),
    expect: "token_missing",
  },
  {
    name: "array-shaped field name _csrf[]",
    probe: (c) =>
      POST(
        "/submit",
        [
          ["cookie", c.cookie],
          ["content-type", FORM],
        ],
        `_csrf[]=${c.token}`,
      ),
    expect: "token_missing",
    // Express's extended (qs) parser turns it into `_csrf: [token]`: an array, refused as such.
    alsoAccept: ["token_not_string"],
  },
  {
    name: "object-shaped field name _csrf[a]",
    probe: (c) =>
      POST(
        "/submit",
        [
          ["cookie", c.cookie],
          ["content-type", FORM],
        ],
        `_csrf[a]=${c.token}`,
      ),
    expect: "token_missing",
    alsoAccept: ["token_not_string"],
  },
  {
    name: "malformed multipart body",
    probe: (c) =>
      POST(
        "/submit",
        [
          ["cookie", c.cookie],
          ["content-type", "multipart/form-data; boundary=nope"],
        ],
        `_csrf=${c.token}`,
      ),
    expect: "token_missing",
    parserMayRefuse: true,
  },

  // Shapes the field must not have.
  {
    name: "repeated form field (both valid)",
    probe: (c) =>
      POST(
        "/submit",
        [
          ["cookie", c.cookie],
          ["content-type", FORM],
        ],
        `_csrf=${c.token}&_csrf=${c.token}`,
      ),
    expect: "token_not_string",
  },
  {
    name: "repeated multipart field",
    probe: (c) => {
      const m = multipart([
        { name: "_csrf", value: c.token },
        { name: "_csrf", value: c.token },
      ]);
      return POST(
        "/submit",
        [
          ["cookie", c.cookie],
          ["content-type", m.type],
        ],
        m.body,
      );
    },
    expect: "token_not_string",
  },
  {
    name: "token sent as a file part",
    probe: (c) => {
      const m = multipart([{ name: "_csrf", value: c.token, filename: "t.txt" }]);
      return POST(
        "/submit",
        [
          ["cookie", c.cookie],
          ["content-type", m.type],
        ],
        m.body,
      );
    },
    expect: "token_not_string",
  },

  // Malformed tokens.
  {
    name: "empty header",
    probe: (c) =>
      POST("/submit", [
        ["cookie", c.cookie],
        ["x-csrf-token", ""],
      ]),
    expect: "token_malformed",
  },
  {
    name: "empty field",
    probe: (c) =>
      POST(
        "/submit",
        [
          ["cookie", c.cookie],
          ["content-type", FORM],
        ],
        "_csrf=",
      ),
    expect: "token_malformed",
  },
  {
    name: "field without value",
    probe: (c) =>
      POST(
        "/submit",
        [
          ["cookie", c.cookie],
          ["content-type", FORM],
        ],
        "_csrf",
      ),
    expect: "token_malformed",
  },
  {
    name: "over-long header (10 000 characters)",
    probe: (c) =>
      POST("/submit", [
        ["cookie", c.cookie],
        ["x-csrf-token", "A".repeat(10_000)],
      ]),
    expect: "token_malformed",
  },
  {
    name: "over-long field (100 000 characters)",
    probe: (c) =>
      POST(
        "/submit",
        [
          ["cookie", c.cookie],
          ["content-type", FORM],
        ],
        `_csrf=${"A".repeat(100_000)}`,
      ),
    expect: "token_malformed",
  },
  {
    name: "token twice in the header (repeated header)",
    probe: (c) =>
      POST("/submit", [
        ["cookie", c.cookie],
        ["x-csrf-token", c.token],
        ["x-csrf-token", c.token],
      ]),
    expect: "token_malformed",
  },
  {
    name: "non-ASCII (Latin-1) header",
    probe: (c) =>
      POST("/submit", [
        ["cookie", c.cookie],
        ["x-csrf-token", `${c.token}é`],
      ]),
    expect: "token_malformed",
  },
  {
    name: "non-ASCII field",
    probe: (c) =>
      POST(
        "/submit",
        [
          ["cookie", c.cookie],
          ["content-type", FORM],
        ],
        `_csrf=${encodeURIComponent(`✓${c.token.slice(1)}`)}`,
      ),
    expect: "token_malformed",
  },
  {
    name: "standard base64 alphabet and padding",
    probe: (c) =>
      POST("/submit", [
        ["cookie", c.cookie],
        ["x-csrf-token", `${c.token.replace(/-/g, "+").replace(/_/g, "/")}+/==`],
      ]),
    expect: "token_malformed",
  },
  {
    name: "truncated token",
    probe: (c) =>
      POST("/submit", [
        ["cookie", c.cookie],
        // 84 characters are exactly 63 bytes: an odd length is never pad and masked secret.
        ["x-csrf-token", c.token.slice(0, 84)],
      ]),
    expect: "token_malformed",
  },
  {
    name: "whitespace inside the token",
    probe: (c) =>
      POST("/submit", [
        ["cookie", c.cookie],
        ["x-csrf-token", `${c.token.slice(0, 10)} ${c.token.slice(10)}`],
      ]),
    expect: "token_malformed",
  },

  // Well-formed but wrong.
  {
    name: "one character changed",
    probe: (c) =>
      POST("/submit", [
        ["cookie", c.cookie],
        ["x-csrf-token", tamper(c.token)],
      ]),
    expect: "token_mismatch",
  },
  {
    name: "another session's token",
    probe: (c) =>
      POST("/submit", [
        ["cookie", c.cookie],
        ["x-csrf-token", c.other.token],
      ]),
    expect: "token_mismatch",
  },
  {
    name: "wrong header is not rescued by a valid field",
    probe: (c) =>
      POST(
        "/submit",
        [
          ["cookie", c.cookie],
          ["content-type", FORM],
          ["x-csrf-token", c.other.token],
        ],
        `_csrf=${c.token}`,
      ),
    expect: "token_mismatch",
  },
  {
    name: "empty header is not rescued by a valid field",
    probe: (c) =>
      POST(
        "/submit",
        [
          ["cookie", c.cookie],
          ["content-type", FORM],
          ["x-csrf-token", ""],
        ],
        `_csrf=${c.token}`,
      ),
    expect: "token_malformed",
  },
  {
    name: "valid token, no session cookie",
    probe: (c) => POST("/submit", [["x-csrf-token", c.token]]),
    expect: "no_session",
  },
  {
    name: "valid token, unknown session id",
    probe: (c) =>
      POST("/submit", [
        ["cookie", "session_id=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"],
        ["x-csrf-token", c.token],
      ]),
    expect: "no_session",
  },

  // Methods.
  {
    name: "PUT without token",
    probe: (c) => ({ method: "PUT", path: "/submit", headers: [["cookie", c.cookie]] }),
    expect: "token_missing",
  },
  {
    name: "DELETE without token",
    probe: (c) => ({ method: "DELETE", path: "/submit", headers: [["cookie", c.cookie]] }),
    expect: "token_missing",
  },
  {
    name: "PATCH without token",
    probe: (c) => ({ method: "PATCH", path: "/submit", headers: [["cookie", c.cookie]] }),
    expect: "token_missing",
  },
  {
    name: "method override header cannot make a POST safe",
    probe: (c) =>
      POST("/submit", [
        ["cookie", c.cookie],
        ["x-http-method-override", "GET"],
        ["x-http-method", "GET"],
        ["x-method-override", "GET"],
      ]),
    expect: "token_missing",
  },
  {
    name: "_method field cannot make a POST safe",
    probe: (c) =>
      POST(
        "/submit",
        [
          ["cookie", c.cookie],
          ["content-type", FORM],
        ],
        "_method=GET&a=1",
      ),
    expect: "token_missing",
  },
  {
    name: "_method in the query cannot make a POST safe",
    probe: (c) => POST("/submit?_method=GET", [["cookie", c.cookie]]),
    expect: "token_missing",
  },

  // Origin and Fetch Metadata: they add to the token, never replace it.
  {
    name: "Sec-Fetch-Site: cross-site, even with the token",
    probe: (c) =>
      POST("/submit", [
        ["cookie", c.cookie],
        ["x-csrf-token", c.token],
        ["sec-fetch-site", "cross-site"],
      ]),
    expect: "cross_site",
  },
  {
    name: "Sec-Fetch-Site: CROSS-SITE in capitals",
    probe: (c) =>
      POST("/submit", [
        ["cookie", c.cookie],
        ["x-csrf-token", c.token],
        ["sec-fetch-site", "CROSS-SITE"],
      ]),
    expect: "cross_site",
  },
  {
    name: "Sec-Fetch-Site: cross-site inside a list a proxy joined",
    probe: (c) =>
      POST("/submit", [
        ["cookie", c.cookie],
        ["x-csrf-token", c.token],
        ["sec-fetch-site", "same-origin,\t Cross-Site "],
      ]),
    expect: "cross_site",
  },
  {
    name: "Sec-Fetch-Site: a value that only contains cross-site is not cross-site",
    probe: (c) =>
      POST("/submit", [
        ["cookie", c.cookie],
        ["sec-fetch-site", "cross-sites, not-cross-site"],
      ]),
    expect: "token_missing",
  },
  {
    name: "foreign Origin, even with the token",
    probe: (c) =>
      POST("/submit", [
        ["cookie", c.cookie],
        ["x-csrf-token", c.token],
        ["origin", "https://evil.example"],
      ]),
    expect: "origin_mismatch",
  },
  {
    name: "Origin: null, even with the token",
    probe: (c) =>
      POST("/submit", [
        ["cookie", c.cookie],
        ["x-csrf-token", c.token],
        ["origin", "null"],
      ]),
    expect: "origin_null",
  },
  {
    name: "own host over plain http when cookies are secure",
    probe: (c) =>
      POST("/submit", [
        ["cookie", c.cookie],
        ["x-csrf-token", c.token],
        ["origin", c.ownOrigin.replace("https:", "http:")],
      ]),
    expect: "origin_mismatch",
  },
  {
    name: "look-alike origin (own host as a subdomain of another)",
    probe: (c) =>
      POST("/submit", [
        ["cookie", c.cookie],
        ["x-csrf-token", c.token],
        ["origin", `${c.ownOrigin}.evil.example`],
      ]),
    expect: "origin_mismatch",
  },
  {
    name: "Origin with a path",
    probe: (c) =>
      POST("/submit", [
        ["cookie", c.cookie],
        ["x-csrf-token", c.token],
        ["origin", `${c.ownOrigin}/`],
      ]),
    expect: "origin_mismatch",
  },
  {
    name: "two Origin headers",
    probe: (c) =>
      POST("/submit", [
        ["cookie", c.cookie],
        ["x-csrf-token", c.token],
        ["origin", "https://evil.example"],
        ["origin", c.ownOrigin],
      ]),
    expect: "origin_mismatch",
  },
  {
    name: "trusted origin does not replace the token",
    probe: (c) =>
      POST("/submit", [
        ["cookie", c.cookie],
        ["x-csrf-token", c.other.token],
        ["origin", TRUSTED],
      ]),
    expect: "token_mismatch",
  },
  {
    name: "trusted origin without any token",
    probe: (c) =>
      POST("/submit", [
        ["cookie", c.cookie],
        ["origin", TRUSTED],
      ]),
    expect: "token_missing",
  },

  // Exempt paths are prefixes on a segment boundary only.
  {
    name: "/apix is not under the exempt /api",
    probe: (c) => POST("/apix", [["cookie", c.cookie]]),
    expect: "token_missing",
  },
];

/**
 * Run every row through `mount()`: a fresh app per row, two visitors, then the row's request. A
 * rejected row must not run the handler, must not write to the store and must not set a cookie.
 */
export async function runRow(
  row: Row,
  mount: () => Promise<{ driver: Driver; routes: Routes; store: SpyStore }>,
): Promise<void> {
  const { driver, routes, store } = await mount();
  try {
    const first = await visit(driver);
    const other = await visit(driver);
    store.reset();
    const probe = row.probe({ ...first, other, ownOrigin: driver.ownOrigin });
    // HTMX callers get the reason in the HX-Trigger event detail; it changes nothing else.
    const headers = [...(probe.headers ?? []), ["hx-request", "true"] as [string, string]];
    const ranBefore = routes.ran.length;
    const reply = await driver.send({ ...probe, headers });
    if (row.expect === 200) {
      expect(reply.status, reply.text).toBe(200);
      return;
    }
    if (row.parserMayRefuse && reply.status !== 403) {
      expect(reply.status).toBeGreaterThanOrEqual(400);
    } else {
      expect(reply.status).toBe(403);
      const trigger = JSON.parse(reply.headers.get("hx-trigger") ?? "null");
      expect([row.expect, ...(row.alsoAccept ?? [])]).toContain(
        trigger?.["coatcheck:csrf-failed"]?.reason,
      );
      expect(reply.headers.get("hx-reswap")).toBe("none");
    }
    expect(routes.ran.length).toBe(ranBefore);
    expect(reply.headers.get("set-cookie")).toBeNull();
    expect(store.calls.filter((c) => c !== "load")).toEqual([]);
    expect(reply.text).not.toBe("ok");
  } finally {
    await driver.close();
  }
}
