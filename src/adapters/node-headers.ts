import type { IncomingMessage } from "node:http";

/** Reading header values on Node's `http` objects, for the Express and Fastify adapters. */

/** A header value as one string (repeated values joined), or undefined. */
export function headerText(
  value: number | string | readonly string[] | undefined,
): string | undefined {
  if (value === undefined) return undefined;
  return Array.isArray(value) ? value.join(", ") : String(value);
}

/** One request header as a single string (repeated headers joined), or undefined. */
export function requestHeader(req: IncomingMessage, name: string): string | undefined {
  return headerText(req.headers[name.toLowerCase()]);
}
