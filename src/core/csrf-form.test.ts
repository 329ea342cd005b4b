import { describe, expect, test } from "vitest";
import { formKind, readFormField, urlencodedField } from "./csrf-form.js";

/** What `URLSearchParams` gives for `name`, in the shape `urlencodedField` answers. */
function reference(text: string, name: string): string | string[] | undefined {
  const values = new URLSearchParams(text).getAll(name);
  if (values.length === 0) return undefined;
  return values.length === 1 ? values[0] : values;
}

/** A deterministic pseudo-random generator (xorshift32), so a failure can be replayed. */
function random(seed: number): () => number {
  let x = seed;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x1_0000_0000;
  };
}

const PIECES = [
  "_csrf",
  "_",
  "csrf",
  "%5F",
  "%5f",
  "%",
  "%2",
  "%zz",
  "+",
  "=",
  "&",
  "a",
  "é",
  "%C3%A9",
  "%FF",
  "\u{1F600}",
  " ",
  "title",
  "hello",
];

describe("urlencodedField", () => {
  test("gives what URLSearchParams gives, for 5000 bodies built from awkward pieces", () => {
    const next = random(20261202);
    for (let i = 0; i < 5000; i++) {
      let text = "";
      const pieces = Math.floor(next() * 12);
      for (let j = 0; j < pieces; j++) text += PIECES[Math.floor(next() * PIECES.length)];
      for (const name of ["_csrf", "", "é", "a b", "title"]) {
        expect(urlencodedField(text, name), JSON.stringify({ text, name })).toEqual(
          reference(text, name),
        );
      }
    }
  });

  test.each([
    ["_csrf=abc", "abc"],
    ["title=hello&_csrf=abc", "abc"],
    ["_csrf=a&_csrf=b&_csrf=c", ["a", "b", "c"]],
    ["%5Fcsrf=x%2By+z", "x+y z"],
    ["_csrf", ""],
    ["_csrf=", ""],
    ["&&_csrf=v=w&&", "v=w"],
    ["_csrfx=1&x_csrf=2", undefined],
    ["", undefined],
  ] as const)("%j → %j", (text, expected) => {
    expect(urlencodedField(text, "_csrf")).toEqual(expected);
  });

  test("many repeats of the field stay linear: 100 000 values in one body", () => {
    const text = "_csrf=v&".repeat(100_000);
    const values = urlencodedField(text, "_csrf") as string[];
    expect(values).toHaveLength(100_000);
    expect(values[99_999]).toBe("v");
  });
});

describe("readFormField", () => {
  test("an urlencoded body answers at once; multipart through a promise; others undefined", async () => {
    const bytes = new TextEncoder().encode("_csrf=tok");
    expect(readFormField(bytes, "application/x-www-form-urlencoded", "_csrf")).toBe("tok");
    expect(readFormField(bytes, "application/json", "_csrf")).toBeUndefined();
    const multipart = new TextEncoder().encode(
      '--b\r\nContent-Disposition: form-data; name="_csrf"\r\n\r\ntok\r\n--b--\r\n',
    );
    const field = readFormField(multipart, "multipart/form-data; boundary=b", "_csrf");
    expect(field).toBeInstanceOf(Promise);
    expect(await field).toBe("tok");
  });

  test("a leading BOM in an urlencoded body is dropped, as the Fetch spec's decoding does", () => {
    const bytes = new Uint8Array([0xef, 0xbb, 0xbf, ...new TextEncoder().encode("_csrf=t")]);
    expect(readFormField(bytes, "application/x-www-form-urlencoded", "_csrf")).toBe("t");
  });
});

describe("formKind", () => {
  test.each([
    ["application/x-www-form-urlencoded", "urlencoded"],
    ["Application/X-WWW-Form-URLEncoded; charset=UTF-8", "urlencoded"],
    [" \tapplication/x-www-form-urlencoded \t;", "urlencoded"],
    ["multipart/form-data; boundary=x", "multipart"],
    ["MULTIPART/FORM-DATA", "multipart"],
    ["application/x-www-form-urlencodedx", null],
    ["multipart/form-data-x; boundary=x", null],
    ["text/plain", null],
    ["", null],
    ["\u00a0application/x-www-form-urlencoded", null],
    [undefined, null],
    [null, null],
  ] as const)("%j → %s", (contentType, kind) => {
    expect(formKind(contentType)).toBe(kind);
  });
});
