import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type HostileApp, type HostileRequest, hostileApps } from "./hostile-apps.js";

/**
 * Hostile input at volume: fast-check properties over the Cookie header, session ids, CSRF tokens
 * (header and form field) and form bodies (urlencoded, multipart with odd boundaries, truncated
 * and huge), through Hono, Express and Fastify with CSRF on. Every input must get an answer below
 * 500 without a throw; a malformed id must never reach the store. The slowest input of each
 * property is printed (not asserted: the machine may be busy); every test has a generous timeout.
 */

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
/** Printable ASCII and tab: everything a header value may carry on the wire. */
const HEADER_CHARS = Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)).concat("\t");
const NOT_B64 = HEADER_CHARS.filter((c) => !B64.includes(c) && c.trim() !== "");

const b64 = fc.constantFrom(...B64);
const headerText = (maxLength: number) =>
  fc.string({ unit: fc.constantFrom(...HEADER_CHARS), maxLength });
const notSemicolon = fc.constantFrom(...HEADER_CHARS.filter((c) => c !== ";"));

/** Values that can never be a session id once trimmed. */
const malformedId = fc.oneof(
  fc.string({ unit: b64, maxLength: 31 }),
  fc.string({ unit: b64, minLength: 33, maxLength: 120 }),
  fc
    .tuple(
      fc.string({ unit: b64, minLength: 31, maxLength: 31 }),
      fc.constantFrom(...NOT_B64),
      fc.nat(31),
    )
    .map(([rest, bad, at]) => rest.slice(0, at) + bad + rest.slice(at)),
  fc.string({ unit: b64, minLength: 32, maxLength: 32 }).map((id) => `"${id}"`),
  fc.constantFrom("__proto__", "constructor", "null", "undefined", "[object Object]"),
);

/** Other cookies, never named session_id. */
const otherCookie = fc
  .tuple(
    fc.string({ unit: fc.constantFrom(...B64, "_", ".", "$"), minLength: 1, maxLength: 12 }),
    fc.string({ unit: notSemicolon, maxLength: 40 }),
  )
  .filter(([name]) => name !== "session_id")
  .map(([name, value]) => `${name}=${value}`);

const malformedCookieHeader = fc
  .tuple(
    fc.array(otherCookie, { maxLength: 4 }),
    malformedId,
    fc.array(otherCookie, { maxLength: 4 }),
  )
  .map(([before, id, after]) => [...before, `session_id=${id}`, ...after].join("; "));

const timings = new Map<string, number>();
let inputs = 0;

async function timed(app: HostileApp, property: string, request: HostileRequest) {
  const started = performance.now();
  const reply = await app.send(request);
  const ms = performance.now() - started;
  const key = `${app.name} | ${property}`;
  timings.set(key, Math.max(timings.get(key) ?? 0, ms));
  inputs++;
  return reply;
}

/** 5xx answers that the framework gives by itself, without coatcheck (see `HostileApp.control`). */
const frameworkOwn = new Map<string, number>();

/** Below 500, or a 5xx that the same app without coatcheck answers too. */
async function expectNoOwn5xx(app: HostileApp, request: HostileRequest, status: number) {
  if (status < 500) return;
  const control = app.control ? await app.control(request) : 0;
  expect(control, `coatcheck answered ${status}; without it: ${control}`).toBeGreaterThanOrEqual(
    500,
  );
  frameworkOwn.set(app.name, (frameworkOwn.get(app.name) ?? 0) + 1);
}

afterAll(() => {
  const rows = [...timings].map(([k, ms]) => `| ${k} | ${ms.toFixed(1)} |`).join("\n");
  const own = [...frameworkOwn].map(([name, n]) => `${name}: ${n}`).join(", ") || "none";
  console.log(
    `hostile input: ${inputs} requests; 5xx answered by the framework itself, without coatcheck: ${own}\n| adapter | property | slowest input (ms) |\n| --- | --- | --- |\n${rows}`,
  );
});

const LONG = 120_000;

describe.each(hostileApps.map((make) => [make.name.replace(/App$/, ""), make] as const))(
  "hostile input at volume [%s]",
  (_name, make) => {
    let app: HostileApp;
    let cookie: string;
    let token: string;
    beforeAll(async () => {
      app = await make();
      const res = await app.send({ method: "GET", path: "/token" });
      cookie = (res.setCookie ?? "").split(";")[0] ?? "";
      token = res.text;
      expect(cookie).toMatch(/^session_id=[A-Za-z0-9_-]{32}$/);
    });
    afterAll(() => app.close());

    /** A request with the real session and, unless given, its valid token. */
    const signed = (request: HostileRequest): HostileRequest => ({
      ...request,
      headers: { cookie, ...request.headers },
    });

    test("malformed session ids in any Cookie header: no session, no store call", {
      timeout: LONG,
    }, async () => {
      await fc.assert(
        fc.asyncProperty(malformedCookieHeader, async (header) => {
          app.store.reset();
          const read = await timed(app, "malformed id", {
            method: "GET",
            path: "/read",
            headers: { cookie: header },
          });
          expect(read.status).toBe(200);
          expect(read.text).toBe("null");
          expect(read.setCookie).toBeNull();
          const post = await timed(app, "malformed id", {
            method: "POST",
            path: "/submit",
            headers: { cookie: header, "x-csrf-token": token },
          });
          expect(post.status).toBe(403);
          expect(app.store.calls).toEqual([]);
        }),
        { numRuns: 150 },
      );
    });

    test("Cookie header soup, with or without the real cookie: 200, at most one store read", {
      timeout: LONG,
    }, async () => {
      const soup = fc.oneof(
        headerText(300),
        fc.tuple(headerText(100), headerText(100)).map(([a, b]) => `${a}; ${cookie}; ${b}`),
        fc
          .tuple(headerText(100), fc.string({ unit: b64, minLength: 32, maxLength: 32 }))
          .map(([a, id]) => `${cookie}; ${a}; session_id=${id}`),
        fc.constantFrom(
          `${cookie}; x=${"y".repeat(70_000)}`,
          `${";".repeat(5000)}${cookie}`,
          "=".repeat(2000),
        ),
      );
      await fc.assert(
        fc.asyncProperty(soup, async (header) => {
          app.store.reset();
          const read = await timed(app, "cookie soup", {
            method: "GET",
            path: "/read",
            headers: { cookie: header },
          });
          expect(read.status).toBe(200);
          expect(["null", '"alice"']).toContain(read.text);
          expect(["", "load"]).toContain(app.store.calls.join(","));
        }),
        { numRuns: 150 },
      );
    });

    test("well-formed unknown ids: one store read, never adopted", { timeout: LONG }, async () => {
      await fc.assert(
        fc.asyncProperty(fc.string({ unit: b64, minLength: 32, maxLength: 32 }), async (id) => {
          app.store.reset();
          const read = await timed(app, "unknown id", {
            method: "GET",
            path: "/read",
            headers: { cookie: `session_id=${id}` },
          });
          expect(read.status).toBe(200);
          expect(read.text).toBe("null");
          expect(read.setCookie).toBeNull();
          expect(app.store.calls).toEqual(["load"]);
        }),
        { numRuns: 100 },
      );
    });

    test("forged and mangled CSRF tokens in the header: 403, handler not run, nothing written", {
      timeout: LONG,
    }, async () => {
      const mangled = fc.oneof(
        headerText(400),
        fc.nat(token.length - 1).map((n) => token.slice(0, n)),
        fc.tuple(fc.nat(token.length - 1), b64).map(([at, c]) => {
          const swapped = token[at] === c ? (c === "A" ? "B" : "A") : c;
          return token.slice(0, at) + swapped + token.slice(at + 1);
        }),
        fc.string({ unit: b64, minLength: 1, maxLength: 50 }).map((tail) => token + tail),
        fc.constantFrom(
          `${token}=`,
          `${token}, ${token}`,
          ` ${token}x`,
          token.toUpperCase(),
          "",
          "null",
        ),
      );
      await fc.assert(
        fc.asyncProperty(mangled, async (forged) => {
          const before = app.runs.count;
          app.store.reset();
          const res = await timed(
            app,
            "csrf header",
            signed({ method: "POST", path: "/submit", headers: { "x-csrf-token": forged } }),
          );
          expect(res.status).toBe(403);
          expect(app.runs.count).toBe(before);
          expect(app.store.calls.filter((c) => c.startsWith("write"))).toEqual([]);
        }),
        { numRuns: 200 },
      );
    });

    test("CSRF form field: forged values in urlencoded and multipart bodies are refused, never 5xx", {
      timeout: LONG,
    }, async () => {
      const body = fc.oneof(
        headerText(300).map((v) => ({
          type: "application/x-www-form-urlencoded",
          text: `_csrf=${encodeURIComponent(v)}&a=b`,
        })),
        headerText(300).map((v) => ({ type: "application/x-www-form-urlencoded", text: v })),
        headerText(200).map((v) => ({
          type: "multipart/form-data; boundary=XyZ",
          text: `--XyZ\r\nContent-Disposition: form-data; name="_csrf"\r\n\r\n${v}\r\n--XyZ--\r\n`,
        })),
        fc.constant({
          type: "application/x-www-form-urlencoded",
          text: `_csrf=${token}&_csrf=${token}`,
        }),
      );
      await fc.assert(
        fc.asyncProperty(body, async ({ type, text }) => {
          const before = app.runs.count;
          const request = signed({
            method: "POST",
            path: "/submit",
            headers: { "content-type": type },
            body: text,
          });
          const res = await timed(app, "csrf form field", request);
          await expectNoOwn5xx(app, request, res.status);
          expect(res.status).not.toBe(200);
          expect(app.runs.count).toBe(before);
        }),
        { numRuns: 150 },
      );
    });

    test("multipart with odd boundaries, truncated anywhere: an answer below 500, a valid token still works", {
      timeout: LONG,
    }, async () => {
      const boundaryChars = fc.constantFrom(
        ...B64,
        "'",
        "(",
        ")",
        "+",
        ",",
        ".",
        "/",
        ":",
        "=",
        "?",
        " ",
        '"',
        ";",
      );
      const part = fc.record({
        boundary: fc.string({ unit: boundaryChars, maxLength: 90 }),
        quoted: fc.boolean(),
        cut: fc.option(fc.nat(400), { nil: undefined }),
        filler: fc.string({ unit: fc.constantFrom(...HEADER_CHARS), maxLength: 200 }),
      });
      let accepted = 0;
      await fc.assert(
        fc.asyncProperty(part, async ({ boundary, quoted, cut, filler }) => {
          const full =
            `--${boundary}\r\nContent-Disposition: form-data; name="note"\r\n\r\n${filler}\r\n` +
            `--${boundary}\r\nContent-Disposition: form-data; name="_csrf"\r\n\r\n${token}\r\n--${boundary}--\r\n`;
          const text = cut === undefined ? full : full.slice(0, cut);
          const type = `multipart/form-data; boundary=${quoted ? `"${boundary}"` : boundary}`;
          const before = app.runs.count;
          const request = signed({
            method: "POST",
            path: "/submit",
            headers: { "content-type": type },
            body: text,
          });
          const res = await timed(app, "multipart", request);
          await expectNoOwn5xx(app, request, res.status);
          if (res.status === 200) {
            accepted++;
            expect(app.runs.count).toBe(before + 1);
          } else expect(app.runs.count).toBe(before);
        }),
        { numRuns: 150 },
      );
      // The well-formed cases among them went through: the check is not simply refusing everything.
      expect(accepted).toBeGreaterThan(0);
    });

    test("huge and empty form bodies: refused without reading past the limit, never 5xx", {
      timeout: LONG,
    }, async () => {
      const big = (n: number) => `a=${"x".repeat(n)}&_csrf=${token}`;
      const cases: Array<[string, string]> = [
        ["application/x-www-form-urlencoded", big(1.2 * 1024 * 1024)],
        ["application/x-www-form-urlencoded", big(5 * 1024 * 1024)],
        [
          "multipart/form-data; boundary=b",
          `--b\r\nContent-Disposition: form-data; name="f"\r\n\r\n${"y".repeat(2 * 1024 * 1024)}`,
        ],
        ["application/x-www-form-urlencoded", ""],
        ["multipart/form-data", "--\r\n"],
        ["multipart/form-data; boundary=", ""],
      ];
      for (const [type, text] of cases) {
        const before = app.runs.count;
        const request = signed({
          method: "POST",
          path: "/submit",
          headers: { "content-type": type },
          body: text,
        });
        const res = await timed(app, "huge/empty body", request);
        await expectNoOwn5xx(app, request, res.status);
        expect(res.status).not.toBe(200);
        expect(app.runs.count).toBe(before);
      }
      const ok = await timed(
        app,
        "huge/empty body",
        signed({
          method: "POST",
          path: "/submit",
          headers: { "content-type": "application/x-www-form-urlencoded" },
          body: `note=hi&_csrf=${token}`,
        }),
      );
      expect(ok.status).toBe(200);
    });
  },
);
