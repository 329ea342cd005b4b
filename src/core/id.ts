import { randomBytes } from "node:crypto";

/**
 * Session ids are 24 bytes from the OS CSPRNG (192 bits, well above the 128 bits OWASP asks for),
 * encoded as base64url: exactly 32 characters of `[A-Za-z0-9_-]`, with no padding and no spare bits,
 * so the format check below is exact and a forged or truncated value is rejected before any store
 * call.
 */
const ID_BYTES = 24;
const ID_LENGTH = 32;
const ID_PATTERN = /^[A-Za-z0-9_-]{32}$/;

/** A fresh, unguessable session id. */
export function generateId(): string {
  return randomBytes(ID_BYTES).toString("base64url");
}

/** True when `value` has the exact shape of an id that {@link generateId} could have made. */
export function isWellFormedId(value: unknown): value is string {
  return typeof value === "string" && value.length === ID_LENGTH && ID_PATTERN.test(value);
}
