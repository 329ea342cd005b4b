import { expect, test } from "vitest";
import { rawHeader } from "./hono-request.js";

/** `Headers.get` over the same list is the reference: the Web request would have answered that. */
function viaHeaders(raw: string[], name: string): string | undefined {
  const headers = new Headers();
  for (let i = 0; i + 1 < raw.length; i += 2)
    headers.append(raw[i] as string, raw[i + 1] as string);
  return headers.get(name) ?? undefined;
}

const lists: string[][] = [
  [],
  ["Host", "example.test", "Cookie", "session_id=abc"],
  ["cookie", "a=1", "COOKIE", "b=2", "Cookie", " c=3 "],
  ["Origin", "\thttps://example.test ", "origin", "https://other.test"],
  ["X-Csrf-Token", "", "x-csrf-token", "tok"],
  ["Content-Type", "application/x-www-form-urlencoded; charset=utf-8"],
  ["Cookies", "not-it", "Cooki", "nor-this", "cookie", "yes"],
];

test("reads a header of a Node rawHeaders list exactly as Headers.get would", () => {
  for (const raw of lists) {
    for (const name of ["cookie", "origin", "host", "x-csrf-token", "content-type", "referer"]) {
      expect(rawHeader(raw, name), `${name} of ${JSON.stringify(raw)}`).toBe(viaHeaders(raw, name));
    }
  }
});

test("HTTP/2 pseudo-headers never answer for a header name", () => {
  const raw = [":authority", "example.test", ":method", "POST", "cookie", "x=1"];
  expect(rawHeader(raw, "authority")).toBeUndefined();
  expect(rawHeader(raw, "method")).toBeUndefined();
  expect(rawHeader(raw, "cookie")).toBe("x=1");
});

test("a list of odd length ignores its dangling name", () => {
  expect(rawHeader(["cookie", "a=1", "cookie"], "cookie")).toBe("a=1");
});
