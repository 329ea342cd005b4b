import { describe, expect, test } from "vitest";
import { decodeBase64url } from "./csrf.js";

/** The definition: the bytes, when encoding them again gives back exactly the same text. */
function byReencoding(text: string): Buffer | null {
  if (text.length === 0 || !/^[A-Za-z0-9_-]+$/.test(text)) return null;
  const bytes = Buffer.from(text, "base64url");
  return bytes.toString("base64url") === text ? bytes : null;
}

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

describe("decodeBase64url", () => {
  test("accepts exactly the texts that re-encode to themselves: every 1-3 character text", () => {
    const texts: string[] = [];
    for (const a of ALPHABET) {
      texts.push(a);
      for (const b of ALPHABET) {
        texts.push(a + b);
        for (const c of "AQgw_-9z") texts.push(a + b + c);
      }
    }
    for (const text of texts) {
      for (const prefix of ["", "AAAA", "qrst"]) {
        const whole = prefix + text;
        expect(decodeBase64url(whole), whole).toEqual(byReencoding(whole));
      }
    }
  });

  test.each(["", "=", "AA==", "A+B/", "ab cd", "é"])("refuses %j", (text) => {
    expect(decodeBase64url(text)).toBeNull();
  });
});
