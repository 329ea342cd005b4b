import { SessionValueError } from "./errors.js";

/**
 * What may go into a session value, and how big a stored record may be. A value is stored as JSON
 * text, so anything JSON would silently change (a `Map` becomes `{}`, `NaN` becomes `null`, an
 * `undefined` property vanishes) is refused at `insert` instead of surprising the next request.
 */

/** The limits from the configuration (`max_value_bytes`, `max_session_bytes`, `max_depth`). */
export interface ValueLimits {
  maxValueBytes: number;
  maxSessionBytes: number;
  maxDepth: number;
}

function typeName(value: object): string {
  const proto = Object.getPrototypeOf(value) as { constructor?: { name?: unknown } } | null;
  const name = proto?.constructor?.name;
  return typeof name === "string" && name.length > 0 ? `a ${name}` : "a class instance";
}

/** Why `value` does not survive a JSON round trip unchanged, or `null`. Recursion is bounded. */
function problemOf(value: unknown, depth: number, limit: number, path: string): string | null {
  switch (typeof value) {
    case "string":
    case "boolean":
      return null;
    case "number":
      return Number.isFinite(value) ? null : `${path} is ${value} (JSON has no such number)`;
    case "undefined":
      return `${path} is undefined (JSON would drop it)`;
    case "object":
      break;
    default:
      return `${path} is a ${typeof value}`;
  }
  if (value === null) return null;
  if (depth >= limit) return `nests deeper than max_depth (${limit})`;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      if (!(i in value)) return `${path}[${i}] is an array hole (JSON would make it null)`;
      const found = problemOf(value[i], depth + 1, limit, `${path}[${i}]`);
      if (found !== null) return found;
    }
    return null;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) {
    return `${path} is ${typeName(value)}, which JSON does not bring back (use a plain object or array)`;
  }
  for (const key of Object.keys(value)) {
    const found = problemOf(
      (value as Record<string, unknown>)[key],
      depth + 1,
      limit,
      `${path}.${key}`,
    );
    if (found !== null) return found;
  }
  return null;
}

/** UTF-8 length of a string. */
export function byteLength(text: string): number {
  return Buffer.byteLength(text, "utf8");
}

/**
 * The JSON text to store for `value` under `key`.
 *
 * @throws SessionValueError naming the key for a value JSON cannot round-trip, one nested deeper
 * than `maxDepth`, or one over `maxValueBytes`.
 */
export function encodeValue(key: string, value: unknown, limits: ValueLimits): string {
  const problem = problemOf(value, 0, limits.maxDepth, "value");
  if (problem !== null) throw new SessionValueError(key, `cannot be stored: ${problem}`);
  const text = JSON.stringify(value);
  const bytes = byteLength(text);
  if (bytes > limits.maxValueBytes) {
    throw new SessionValueError(
      key,
      `is ${bytes} bytes of JSON, over max_value_bytes (${limits.maxValueBytes})`,
    );
  }
  return text;
}

/** True when the JSON text nests arrays and objects deeper than `limit`. Linear, no parsing. */
export function nestsDeeper(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

/** UTF-8 bytes of a record's keys and values. */
export function fieldBytes(fields: Record<string, string>): number {
  let bytes = 0;
  for (const key in fields) bytes += byteLength(key) + byteLength(fields[key] as string);
  return bytes;
}

/**
 * Why a stored record's fields break a read limit, or `null`, and its size (UTF-8 bytes of its keys
 * and values) when that had to be counted, else `NaN` (count it with {@link fieldBytes} when it is
 * needed). A record over a limit was not written by this engine with this configuration: it is
 * treated as corrupt.
 *
 * UTF-8 takes at most three bytes per UTF-16 unit, so texts whose length tripled is within a limit
 * are within it without being counted: a read of a small session counts nothing.
 */
export function measureFields(
  fields: Record<string, string>,
  limits: ValueLimits,
): { bytes: number; problem: string | null } {
  let bound = 0;
  for (const key in fields) {
    const text = fields[key] as string;
    if (3 * text.length > limits.maxValueBytes) {
      const size = byteLength(text);
      if (size > limits.maxValueBytes) {
        return {
          bytes: Number.NaN,
          problem: `key "${key}" is ${size} bytes, over max_value_bytes (${limits.maxValueBytes})`,
        };
      }
    }
    // Each level takes a character, so a text no longer than the limit cannot nest deeper.
    if (text.length > limits.maxDepth && nestsDeeper(text, limits.maxDepth)) {
      return {
        bytes: Number.NaN,
        problem: `key "${key}" nests deeper than max_depth (${limits.maxDepth})`,
      };
    }
    bound += 3 * (text.length + key.length);
  }
  if (bound <= limits.maxSessionBytes) return { bytes: Number.NaN, problem: null };
  const bytes = fieldBytes(fields);
  const problem =
    bytes > limits.maxSessionBytes
      ? `the record is ${bytes} bytes, over max_session_bytes (${limits.maxSessionBytes})`
      : null;
  return { bytes, problem };
}
