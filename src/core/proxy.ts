import { BlockList, isIP, type Socket } from "node:net";

/**
 * Which peers may tell coatcheck how a request reached them (`trust_proxy`):
 * - `false` (default): nobody; forwarded headers are ignored and the connection itself decides.
 * - `true`: every hop (only when nothing but your proxies can reach the app);
 * - a number `n`: the `n` hops nearest the app (1 = the proxy that connects to it);
 * - a list of addresses and CIDR ranges (`"10.0.0.0/8"`, `"::1"`), or the names `loopback`,
 *   `private` and `linklocal`: a hop is trusted when its address is in the list.
 */
export type TrustProxy = boolean | number | readonly string[];

/** How the client reached the first proxy we trust (or us, without one). */
export interface ClientView {
  protocol: "http" | "https";
  /** `host[:port]` as the client addressed it; undefined when the request carries none. */
  host: string | undefined;
}

/** What an adapter knows about the connection a request came on. */
export interface ConnectionFacts {
  /** The socket's remote address. */
  peer: string | undefined;
  /** The socket is TLS. */
  encrypted: boolean;
  /** `Host`, or `:authority` on HTTP/2. */
  host: string | undefined;
  /** A request header by lower-case name. */
  header(name: string): string | undefined;
}

const PRESETS: Record<string, Array<[string, number, "ipv4" | "ipv6"]>> = {
  loopback: [
    ["127.0.0.0", 8, "ipv4"],
    ["::1", 128, "ipv6"],
  ],
  private: [
    ["10.0.0.0", 8, "ipv4"],
    ["172.16.0.0", 12, "ipv4"],
    ["192.168.0.0", 16, "ipv4"],
    ["fc00::", 7, "ipv6"],
  ],
  linklocal: [
    ["169.254.0.0", 16, "ipv4"],
    ["fe80::", 10, "ipv6"],
  ],
};

/**
 * Check one `trust_proxy` list entry; an error message, or undefined when it is valid. Used by the
 * configuration at start-up, so a typo never reaches a request.
 */
export function checkTrustEntry(entry: string): string | undefined {
  if (PRESETS[entry]) return undefined;
  const [address, prefix, extra] = entry.split("/");
  const family = isIP(address ?? "");
  if (family === 0 || extra !== undefined)
    return `"${entry}" is not an IP address, a CIDR range or one of loopback, private, linklocal`;
  if (prefix === undefined) return undefined;
  const bits = Number(prefix);
  const max = family === 4 ? 32 : 128;
  if (!/^\d+$/.test(prefix) || bits > max)
    return `"${entry}" has a prefix length outside 0..${max}`;
  return undefined;
}

/** An IPv4 address written as IPv6 (`::ffff:10.0.0.1`, what a dual-stack socket reports). */
function unmapped(address: string): string {
  return address.startsWith("::ffff:") && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}

/** Decide once, at start-up, how hop `n` (0 = the socket peer) at `address` is judged. */
export function compileTrust(
  trust: TrustProxy,
): (address: string | undefined, hop: number) => boolean {
  if (trust === true) return () => true;
  if (trust === false) return () => false;
  if (typeof trust === "number") return (_, hop) => hop < trust;
  const list = new BlockList();
  for (const entry of trust) {
    const problem = checkTrustEntry(entry);
    if (problem) throw new TypeError(`trust_proxy: ${problem}`);
    const preset = PRESETS[entry];
    if (preset) {
      for (const [net, bits, type] of preset) list.addSubnet(net, bits, type);
      continue;
    }
    const [address, prefix] = entry.split("/") as [string, string | undefined];
    const type = isIP(address) === 4 ? "ipv4" : "ipv6";
    if (prefix === undefined) list.addAddress(address, type);
    else list.addSubnet(address, Number(prefix), type);
  }
  return (address) => {
    if (address === undefined) return false;
    const plain = unmapped(address.trim());
    const family = isIP(plain);
    return family !== 0 && list.check(plain, family === 4 ? "ipv4" : "ipv6");
  };
}

/** One element of a `Forwarded` header (RFC 7239 §4): its `for`, `proto` and `host` parameters. */
interface ForwardedElement {
  for?: string;
  proto?: string;
  host?: string;
}

/** Parse `Forwarded`; null when it is malformed (then it is ignored as a whole). */
export function parseForwarded(header: string): ForwardedElement[] | null {
  const elements: ForwardedElement[] = [];
  // Commas and semicolons inside quoted strings are part of the value.
  const tokens = header.match(/(?:[^,;"]+|"(?:[^"\\]|\\.)*")+|[,;]/g);
  if (tokens === null) return null;
  let current: ForwardedElement = {};
  for (const token of tokens) {
    if (token === ",") {
      elements.push(current);
      current = {};
      continue;
    }
    if (token === ";") continue;
    const eq = token.indexOf("=");
    if (eq <= 0) return null;
    const name = token.slice(0, eq).trim().toLowerCase();
    let value = token.slice(eq + 1).trim();
    if (value.startsWith('"')) {
      if (value.length < 2 || !value.endsWith('"')) return null;
      value = value.slice(1, -1).replace(/\\(.)/g, "$1");
    }
    if (name === "for" || name === "proto" || name === "host") current[name] = value;
  }
  elements.push(current);
  return elements;
}

/** The address in a `for=` value or an X-Forwarded-For entry: `"[::1]:80"` → `::1`. */
function nodeAddress(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (v.startsWith("[")) return v.slice(1, v.indexOf("]"));
  const colon = v.indexOf(":");
  return colon > 0 && v.indexOf(":", colon + 1) < 0 ? v.slice(0, colon) : v;
}

const HOST = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

function splitList(header: string | undefined): string[] {
  return header === undefined ? [] : header.split(",").map((v) => v.trim());
}

/**
 * How many hops, counted from the socket peer, are trusted: the peer itself, then each address it
 * and the next proxies reported, for as long as each one is trusted.
 */
function trustedHops(
  trusted: (address: string | undefined, hop: number) => boolean,
  peer: string | undefined,
  reported: readonly (string | undefined)[],
): number {
  let hops = 0;
  let address = peer;
  while (hops <= reported.length && trusted(address, hops)) {
    hops++;
    address = reported[reported.length - hops];
  }
  return hops;
}

/**
 * How the client reached us. Forwarded headers count only as far as the chain of trusted proxies
 * goes: each proxy appends what it saw, so the value we use is the one written by the trusted
 * proxy furthest from us, the one the client itself connected to. `Forwarded` is preferred over
 * `X-Forwarded-Proto` / `X-Forwarded-Host` when both are present; a malformed value is ignored.
 */
export function clientView(
  trusted: (address: string | undefined, hop: number) => boolean,
  facts: ConnectionFacts,
): ClientView {
  const direct: ClientView = { protocol: facts.encrypted ? "https" : "http", host: facts.host };
  if (!trusted(facts.peer, 0)) return direct;

  const forwarded = facts.header("forwarded");
  const elements = forwarded === undefined ? null : parseForwarded(forwarded);
  let proto: string | undefined;
  let host: string | undefined;
  if (elements !== null && elements.length > 0) {
    const hops = trustedHops(
      trusted,
      facts.peer,
      elements.map((e) => nodeAddress(e.for)),
    );
    const first = elements[Math.max(0, elements.length - hops)] as ForwardedElement;
    proto = first.proto;
    host = first.host;
  } else {
    const hops = trustedHops(
      trusted,
      facts.peer,
      splitList(facts.header("x-forwarded-for")).map(nodeAddress),
    );
    const protos = splitList(facts.header("x-forwarded-proto"));
    const hosts = splitList(facts.header("x-forwarded-host"));
    proto = protos[Math.max(0, protos.length - hops)];
    host = hosts[Math.max(0, hosts.length - hops)];
  }
  const protocol = proto?.toLowerCase();
  return {
    protocol: protocol === "https" || protocol === "http" ? protocol : direct.protocol,
    host: host !== undefined && HOST.test(host) ? host.toLowerCase() : direct.host,
  };
}

/** The peer address and TLS-ness of a socket (a TLS socket has `encrypted: true`). */
export function socketFacts(socket: Pick<Socket, "remoteAddress"> | undefined | null): {
  peer: string | undefined;
  encrypted: boolean;
} {
  return {
    peer: socket?.remoteAddress ?? undefined,
    encrypted: (socket as { encrypted?: unknown } | undefined | null)?.encrypted === true,
  };
}
