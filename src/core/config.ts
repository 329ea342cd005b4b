import { readFileSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import { parse as parseToml } from "smol-toml";
import { ConfigError } from "./errors.js";
import { MAX_LIFETIME_SECS } from "./expiry.js";
import { checkTrustEntry, type TrustProxy } from "./proxy.js";
import { identifierProblem } from "./sql-identifier.js";

/**
 * Configuration: the `[session]` and `[session.csrf]` tables of `config.toml`, the same keys as camelCase
 * options, and `COATCHECK_SESSION__…` environment overrides. Everything is validated once, here,
 * at start-up; an invalid or unsafe combination never reaches a request.
 */

/** Fully resolved configuration. */
export interface SessionConfig {
  cookieName: string;
  cookiePath: string;
  cookieDomain: string | undefined;
  /** `Secure` on the cookie: always, never, or `"auto"`: exactly on requests that came over HTTPS. */
  secure: boolean | "auto";
  httpOnly: boolean;
  sameSite: "strict" | "lax" | "none";
  /** Absolute lifetime in seconds; 0 = browser-session cookie. */
  expirySecs: number;
  /** Idle timeout in seconds; 0 = none. */
  inactivityTimeoutSecs: number;
  storage: "memory" | "redis" | "postgres";
  redisUrl: string | undefined;
  /** PostgreSQL connection URL, for `storage = "postgres"`. */
  postgresUrl: string | undefined;
  /** Schema of the PostgreSQL session tables. */
  postgresSchema: string;
  /** Name of the PostgreSQL sessions table (locks go to this name + `_locks`). */
  postgresTable: string;
  /** Create the PostgreSQL tables at start-up when they are missing. */
  postgresCreateTable: boolean;
  /** Redis Cluster: URLs of nodes to start from (a few are enough; the rest is discovered). */
  redisClusterNodes: string[];
  /** Redis Sentinel: the sentinels' `host:port` addresses. */
  redisSentinels: string[];
  /** Redis Sentinel: the name the sentinels monitor the primary under. */
  redisSentinelName: string | undefined;
  redisSentinelUsername: string | undefined;
  redisSentinelPassword: string | undefined;
  /** Credentials of the data nodes when their URLs carry none (and of Sentinel's primary/replicas). */
  redisUsername: string | undefined;
  redisPassword: string | undefined;
  /** Replicas that must acknowledge a new record (`WAIT`) before the request succeeds; 0 = off. */
  redisWaitReplicas: number;
  /** How long a new record waits for those acknowledgements before the request answers 503. */
  redisWaitTimeoutMs: number;
  /** Prefix of every Redis key. */
  keyPrefix: string;
  /** A store operation slower than this fails with 503. */
  operationTimeoutMs: number;
  /** Consecutive store timeouts that open the circuit breaker; 0 = no breaker. */
  breakerThreshold: number;
  /** First back-off of the open breaker, ms (doubles while probes fail). */
  breakerOpenMs: number;
  /** Longest back-off of the open breaker, ms. */
  breakerMaxOpenMs: number;
  /** How long a request waits for the per-session lock before giving up with 503. */
  lockTimeoutMs: number;
  /** Memory store: most records kept; past it the soonest-to-expire record is evicted. */
  maxSessions: number;
  /** Most live signed-in sessions one user may have; 0 = no limit. */
  maxSessionsPerUser: number;
  /** What a sign-in over `maxSessionsPerUser` does: revoke the user's oldest session, or refuse. */
  sessionLimitAction: "revoke_oldest" | "refuse";
  /** Largest JSON text of one session value, in UTF-8 bytes. */
  maxValueBytes: number;
  /** Largest total of a session's keys and values, in UTF-8 bytes. */
  maxSessionBytes: number;
  /** Most pending flash messages a session keeps; pushing more drops the oldest. */
  maxFlashMessages: number;
  /** Deepest nesting of arrays and objects in a value. */
  maxDepth: number;
  /** Which peers may report how a request reached them (forwarded headers); see {@link TrustProxy}. */
  trustProxy: TrustProxy;
  /** The origins (scheme://host[:port]) the site is reached at; the CSRF check expects these, whatever `Host` says. Empty = from the request. */
  publicOrigin: string[];
  csrf: CsrfConfig;
}

export interface CsrfConfig {
  enabled: boolean;
  /** Secret length in bytes. */
  tokenLength: number;
  headerName: string;
  formFieldName: string;
  /** Origins (scheme://host[:port]) allowed to post cross-site. */
  trustedOrigins: string[];
  /** Path prefixes the CSRF check skips (e.g. a bearer-token API beside the UI). */
  exemptPaths: string[];
}

/** Every key optional, one level into nested tables. */
export type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? Partial<T[K]> : T[K] };
/** Programmatic options: any subset of {@link SessionConfig}, in camelCase (`publicOrigin` may be one string). */
export type SessionOptions = Omit<DeepPartial<SessionConfig>, "publicOrigin"> & {
  publicOrigin?: string | string[];
};

/** The value type of a configuration key; `mixed` keys parse their own values (see `KeySpec.parse`). */
export type Kind = "string" | "boolean" | "integer" | "string[]" | "mixed";

/** One row per key: the single source for TOML, environment, options, defaults and the README. */
export interface KeySpec {
  /** snake_case name in `config.toml`. */
  toml: string;
  /** camelCase option name. */
  option: string;
  kind: Kind;
  default: unknown;
  /** One line for the README's configuration table. */
  doc: string;
  /** Returns an error message ("must be …") or undefined. */
  check?: (value: never) => string | undefined;
  /** Canonical form of an accepted value, applied before `check` (e.g. lower case). */
  normalize?: (value: never) => unknown;
  /**
   * For `mixed` keys: the value from raw input (an environment variable is always text), or a
   * problem ("must be …").
   */
  parse?: (raw: unknown, fromEnv: boolean) => { value: unknown } | { problem: string };
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/; // RFC 9110 §5.6.2 token
/** A `;` would start a new cookie attribute, a control character could split the header. */
function unsafeAttribute(v: string): boolean {
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 0x20 || c === 0x7f || c === 0x3b) return true;
  }
  return false;
}
const int = (min: number, max: number) => (v: number) =>
  Number.isInteger(v) && v >= min && v <= max
    ? undefined
    : `must be an integer from ${min} to ${max}`;

export const SESSION_KEYS: readonly KeySpec[] = [
  {
    toml: "cookie_name",
    option: "cookieName",
    kind: "string",
    default: "session_id",
    doc: "Name of the session cookie.",
    check: (v: string) =>
      TOKEN.test(v) ? undefined : "must be a cookie-name token (letters, digits, !#$%&'*+-.^_`|~)",
  },
  {
    toml: "cookie_path",
    option: "cookiePath",
    kind: "string",
    default: "/",
    doc: "Cookie Path.",
    check: (v: string) =>
      v.startsWith("/") && !unsafeAttribute(v)
        ? undefined
        : "must start with / and hold no ; or control characters",
  },
  {
    toml: "cookie_domain",
    option: "cookieDomain",
    kind: "string",
    default: undefined,
    doc: "Cookie Domain; unset = host-only cookie (safer).",
    check: (v: string) =>
      v.length > 0 && !unsafeAttribute(v) && !/\s/.test(v) && !v.includes(":")
        ? undefined
        : "must be a host name without a port, ; spaces or control characters",
  },
  {
    toml: "secure",
    option: "secure",
    kind: "mixed",
    default: true,
    doc: 'Send the cookie over HTTPS only. false for plain-HTTP development; "auto" = Secure exactly on requests that came over HTTPS (directly or through a trusted proxy).',
    parse: (raw, fromEnv) => {
      if (typeof raw === "boolean") return { value: raw };
      const text = typeof raw === "string" ? raw.trim().toLowerCase() : undefined;
      if (text === "auto") return { value: "auto" };
      if (fromEnv && text !== undefined && /^(true|1|yes|on)$/.test(text)) return { value: true };
      if (fromEnv && text !== undefined && /^(false|0|no|off)$/.test(text)) return { value: false };
      return { problem: fromEnv ? 'must be true, false or "auto"' : 'must be a boolean or "auto"' };
    },
  },
  {
    toml: "http_only",
    option: "httpOnly",
    kind: "boolean",
    default: true,
    doc: "Hide the cookie from JavaScript.",
  },
  {
    toml: "same_site",
    option: "sameSite",
    kind: "string",
    default: "lax",
    doc: '"strict", "lax" or "none" (none requires secure).',
    normalize: (v: string) => v.toLowerCase(),
    check: (v: string) =>
      ["strict", "lax", "none"].includes(v) ? undefined : 'must be one of "strict", "lax", "none"',
  },
  {
    toml: "expiry_secs",
    option: "expirySecs",
    kind: "integer",
    default: 86_400,
    doc: "Absolute session lifetime from creation; 0 = browser-session cookie.",
    check: int(0, MAX_LIFETIME_SECS),
  },
  {
    toml: "inactivity_timeout_secs",
    option: "inactivityTimeoutSecs",
    kind: "integer",
    default: 0,
    doc: "Idle timeout, renewed by every request that loads the session; 0 = none.",
    check: int(0, MAX_LIFETIME_SECS),
  },
  {
    toml: "storage",
    option: "storage",
    kind: "string",
    default: "memory",
    doc: '"memory" (development, one process), "redis" or "postgres" (production, many instances).',
    check: (v: string) =>
      v === "memory" || v === "redis" || v === "postgres"
        ? undefined
        : 'must be "memory", "redis" or "postgres"',
  },
  {
    toml: "redis_url",
    option: "redisUrl",
    kind: "string",
    default: undefined,
    doc: "redis://[user:pass@]host:port[/db] or rediss://…; required for redis storage.",
    check: (v: string) => {
      try {
        const u = new URL(v);
        return u.protocol === "redis:" || u.protocol === "rediss:"
          ? undefined
          : "must be a redis:// or rediss:// URL";
      } catch {
        return "must be a redis:// or rediss:// URL";
      }
    },
  },
  {
    toml: "postgres_url",
    option: "postgresUrl",
    kind: "string",
    default: undefined,
    doc: "postgres://[user:pass@]host[:port]/database; required for postgres storage.",
    check: (v: string) => {
      try {
        const u = new URL(v);
        return u.protocol === "postgres:" || u.protocol === "postgresql:"
          ? undefined
          : "must be a postgres:// or postgresql:// URL";
      } catch {
        return "must be a postgres:// or postgresql:// URL";
      }
    },
  },
  {
    toml: "postgres_schema",
    option: "postgresSchema",
    kind: "string",
    default: "public",
    doc: "Schema of the PostgreSQL session tables.",
    check: (v: string) => identifierProblem(v),
  },
  {
    toml: "postgres_table",
    option: "postgresTable",
    kind: "string",
    default: "coatcheck_sessions",
    doc: "PostgreSQL sessions table; its locks go to the same name plus _locks.",
    check: (v: string) => identifierProblem(v),
  },
  {
    toml: "postgres_create_table",
    option: "postgresCreateTable",
    kind: "boolean",
    default: false,
    doc: "Create the PostgreSQL tables at start-up when missing (else run the migration).",
  },
  {
    toml: "redis_cluster_nodes",
    option: "redisClusterNodes",
    kind: "string[]",
    default: [],
    doc: "Redis Cluster nodes to start from (redis:// or rediss:// URLs; the rest is discovered); instead of redis_url.",
    check: (v: string[]) => {
      for (const u of v) {
        try {
          const p = new URL(u).protocol;
          if (p !== "redis:" && p !== "rediss:") return `holds "${u}", not a redis:// URL`;
        } catch {
          return `holds "${u}", not a redis:// or rediss:// URL`;
        }
      }
      return undefined;
    },
  },
  {
    toml: "redis_sentinels",
    option: "redisSentinels",
    kind: "string[]",
    default: [],
    doc: "Redis Sentinel addresses (host:port); with redis_sentinel_name, instead of redis_url.",
    check: (v: string[]) => {
      for (const a of v) {
        const port = Number(/^(\[[0-9A-Fa-f:.]+\]|[^\s:/[\]]+):(\d{1,5})$/.exec(a)?.[2]);
        if (!(port > 0 && port < 65536)) return `holds "${a}", not a host:port address`;
      }
      return undefined;
    },
  },
  {
    toml: "redis_sentinel_name",
    option: "redisSentinelName",
    kind: "string",
    default: undefined,
    doc: "The primary's name as the sentinels know it (sentinel monitor <name> …).",
    check: (v: string) => (/^[^\s]+$/.test(v) ? undefined : "must be a name without spaces"),
  },
  {
    toml: "redis_sentinel_username",
    option: "redisSentinelUsername",
    kind: "string",
    default: undefined,
    doc: "ACL user for the sentinels.",
  },
  {
    toml: "redis_sentinel_password",
    option: "redisSentinelPassword",
    kind: "string",
    default: undefined,
    doc: "Password of the sentinels (their requirepass).",
  },
  {
    toml: "redis_username",
    option: "redisUsername",
    kind: "string",
    default: undefined,
    doc: "ACL user for the data nodes, when their URLs carry none (Sentinel: primary and replicas).",
  },
  {
    toml: "redis_password",
    option: "redisPassword",
    kind: "string",
    default: undefined,
    doc: "Password of the data nodes, when their URLs carry none (Sentinel: primary and replicas).",
  },
  {
    toml: "redis_wait_replicas",
    option: "redisWaitReplicas",
    kind: "integer",
    default: 0,
    doc: "New records (sign-in, cycle, first write) wait until this many replicas have them (WAIT); 0 = off.",
    check: int(0, 16),
  },
  {
    toml: "redis_wait_timeout_ms",
    option: "redisWaitTimeoutMs",
    kind: "integer",
    default: 500,
    doc: "How long a new record waits for redis_wait_replicas; fewer acknowledgements answer 503.",
    check: int(1, 60_000),
  },
  {
    toml: "key_prefix",
    option: "keyPrefix",
    kind: "string",
    default: "coatcheck:",
    doc: "Prefix of every Redis key.",
    check: (v: string) =>
      v.length <= 64 && !/[{}\s]/.test(v)
        ? undefined
        : "must be at most 64 characters without braces or spaces",
  },
  {
    toml: "operation_timeout_ms",
    option: "operationTimeoutMs",
    kind: "integer",
    default: 1000,
    doc: "A store operation slower than this fails the request with 503.",
    check: int(1, 60_000),
  },
  {
    toml: "breaker_threshold",
    option: "breakerThreshold",
    kind: "integer",
    default: 3,
    doc: "Consecutive store timeouts after which requests get 503 at once for a back-off; 0 = never.",
    check: int(0, 1000),
  },
  {
    toml: "breaker_open_ms",
    option: "breakerOpenMs",
    kind: "integer",
    default: 250,
    doc: "How long the breaker answers 503 before it lets one probe through (doubles while probes time out).",
    check: int(1, 600_000),
  },
  {
    toml: "breaker_max_open_ms",
    option: "breakerMaxOpenMs",
    kind: "integer",
    default: 1000,
    doc: "Longest back-off of the breaker: recovery is noticed within about this long after the store answers again.",
    check: int(1, 600_000),
  },
  {
    toml: "lock_timeout_ms",
    option: "lockTimeoutMs",
    kind: "integer",
    default: 5000,
    doc: "How long a locked route waits for the per-session lock before 503.",
    check: int(1, 60_000),
  },
  {
    toml: "max_sessions",
    option: "maxSessions",
    kind: "integer",
    default: 100_000,
    doc: "Memory store cap; past it the session closest to expiry is evicted.",
    check: int(1, 100_000_000),
  },
  {
    toml: "max_sessions_per_user",
    option: "maxSessionsPerUser",
    kind: "integer",
    default: 0,
    doc: "Most live signed-in sessions one user may have (0 = no limit); needs a store with a user index (memory, Redis, PostgreSQL).",
    check: int(0, 10_000),
  },
  {
    toml: "session_limit_action",
    option: "sessionLimitAction",
    kind: "string",
    default: "revoke_oldest",
    doc: 'A sign-in over max_sessions_per_user: "revoke_oldest" ends the user\'s oldest sessions, "refuse" makes login() throw SessionLimitError.',
    normalize: (v: string) => v.toLowerCase(),
    check: (v: string) =>
      v === "revoke_oldest" || v === "refuse" ? undefined : 'must be "revoke_oldest" or "refuse"',
  },
  {
    toml: "max_value_bytes",
    option: "maxValueBytes",
    kind: "integer",
    default: 65_536,
    doc: "Largest session value (its JSON, in bytes). Inserting more is an error naming the key; a stored value over it makes the record corrupt.",
    check: int(64, 16 * 1024 * 1024),
  },
  {
    toml: "max_session_bytes",
    option: "maxSessionBytes",
    kind: "integer",
    default: 262_144,
    doc: "Largest session (all keys and values, in bytes). Same rules as `max_value_bytes`.",
    check: int(64, 64 * 1024 * 1024),
  },
  {
    toml: "max_flash_messages",
    option: "maxFlashMessages",
    kind: "integer",
    default: 50,
    doc: "Most pending flash messages per session; pushing more drops the oldest.",
    check: int(1, 10_000),
  },
  {
    toml: "max_depth",
    option: "maxDepth",
    kind: "integer",
    default: 32,
    doc: "Deepest nesting of arrays and objects in a value; deeper is refused on insert and corrupt when read.",
    check: int(1, 1000),
  },
  {
    toml: "trust_proxy",
    option: "trustProxy",
    kind: "mixed",
    default: false,
    doc: 'Whose forwarded headers (Forwarded, X-Forwarded-Proto/-Host) count: false = nobody; true = every hop; a hop count; or a list of addresses, CIDR ranges and "loopback", "private", "linklocal" (environment: true, false, a number or a comma list).',
    parse: parseTrustProxy,
  },
  {
    toml: "public_origin",
    option: "publicOrigin",
    kind: "mixed",
    default: [],
    doc: "The origin(s) the site is reached at (scheme://host[:port]; one or a list): the CSRF check expects these instead of the request's Host.",
    parse: (raw, fromEnv) => {
      const list =
        typeof raw === "string"
          ? fromEnv
            ? splitComma(raw)
            : [raw]
          : Array.isArray(raw) && raw.every((x) => typeof x === "string")
            ? (raw as string[])
            : undefined;
      if (list === undefined) return { problem: "must be an origin or a list of origins" };
      const problem = originListProblem(list);
      return problem === undefined ? { value: list } : { problem };
    },
  },
];

function splitComma(text: string): string[] {
  return text.trim() === "" ? [] : text.split(",").map((s) => s.trim());
}

/** `trust_proxy`: a boolean, a hop count, a list; from the environment, the same written as text. */
function parseTrustProxy(raw: unknown, fromEnv: boolean): { value: unknown } | { problem: string } {
  let value: unknown = raw;
  if (fromEnv && typeof raw === "string") {
    const text = raw.trim();
    if (/^(true|false)$/i.test(text)) value = text.toLowerCase() === "true";
    else if (/^\d+$/.test(text)) value = Number(text);
    else value = splitComma(text);
  }
  if (typeof value === "boolean") return { value };
  if (typeof value === "bigint") value = Number(value);
  if (typeof value === "number")
    return Number.isInteger(value) && value >= 1 && value <= 32
      ? { value }
      : { problem: "must be a hop count from 1 to 32 (or true, false, a list)" };
  if (Array.isArray(value) && value.every((x) => typeof x === "string")) {
    for (const entry of value as string[]) {
      const problem = checkTrustEntry(entry.trim());
      if (problem) return { problem: `holds ${problem}` };
    }
    return { value: (value as string[]).map((e) => e.trim()) };
  }
  return { problem: "must be true, false, a hop count or a list of addresses and CIDR ranges" };
}

/** A list of origins, each exactly scheme://host[:port]; the problem with the first bad one. */
function originListProblem(v: readonly string[]): string | undefined {
  for (const o of v) {
    try {
      if (new URL(o).origin !== o)
        return `holds "${o}", which is not an origin (scheme://host[:port], no path)`;
    } catch {
      return `holds "${o}", which is not an origin (scheme://host[:port])`;
    }
  }
  return undefined;
}

export const CSRF_KEYS: readonly KeySpec[] = [
  {
    toml: "enabled",
    option: "enabled",
    kind: "boolean",
    default: true,
    doc: "Check a CSRF token on every method but GET, HEAD, OPTIONS.",
  },
  {
    toml: "token_length",
    option: "tokenLength",
    kind: "integer",
    default: 32,
    doc: "CSRF secret length in bytes.",
    check: int(16, 128),
  },
  {
    toml: "header_name",
    option: "headerName",
    kind: "string",
    default: "X-CSRF-Token",
    doc: "Request header carrying the token (HTMX, fetch).",
    check: (v: string) => (TOKEN.test(v) ? undefined : "must be an HTTP header name"),
  },
  {
    toml: "form_field_name",
    option: "formFieldName",
    kind: "string",
    default: "_csrf",
    doc: "Form field carrying the token (plain forms).",
    check: (v: string) =>
      /^[A-Za-z0-9_.\-[\]]{1,64}$/.test(v)
        ? undefined
        : "must be 1-64 characters of letters, digits, _ . - [ ]",
  },
  {
    toml: "trusted_origins",
    option: "trustedOrigins",
    kind: "string[]",
    default: [],
    doc: "Other origins allowed to post (scheme://host[:port]).",
    check: originListProblem,
  },
  {
    toml: "exempt_paths",
    option: "exemptPaths",
    kind: "string[]",
    default: [],
    doc: "Path prefixes without CSRF check (e.g. a bearer-token API).",
    check: (v: string[]) =>
      v.every((p) => p.startsWith("/")) ? undefined : "must hold paths that start with /",
  },
];

/** Where a raw value came from, for error messages. */
type Source = "config.toml" | "environment" | "options";

function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** Levenshtein distance, for "did you mean" suggestions. */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0] as number;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j] as number;
      row[j] = Math.min(
        (row[j] as number) + 1,
        (row[j - 1] as number) + 1,
        prev + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
      prev = tmp;
    }
  }
  return row[b.length] as number;
}

/**
 * " Did you mean …?" for a near miss, else the list of valid names. `show` turns a candidate into
 * the form the user writes (an environment variable name, say).
 */
function suggest(
  name: string,
  candidates: readonly string[],
  show: (candidate: string) => string = (c) => c,
  noun = "keys",
): string {
  let best = "";
  let bestScore = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    const a = name.toLowerCase();
    const b = c.toLowerCase();
    // A key that is a fragment of a valid one ("header" for "header_name") is a near miss too.
    const d = a.length >= 4 && (b.includes(a) || a.includes(b)) ? 1 : distance(a, b);
    if (d < bestScore) {
      best = c;
      bestScore = d;
    }
  }
  return bestScore <= Math.max(2, Math.floor(best.length / 3))
    ? ` Did you mean "${show(best)}"?`
    : ` Valid ${noun}: ${candidates.map(show).join(", ")}.`;
}

function article(word: string): string {
  return /^[aeiou]/.test(word) ? "an" : "a";
}

function coerce(spec: KeySpec, raw: unknown, path: string, source: Source): unknown {
  if (spec.parse) {
    const parsed = spec.parse(raw, source === "environment");
    if ("value" in parsed) return parsed.value;
    const from = source === "environment" ? "from the environment" : `in ${source}`;
    throw new ConfigError(
      path,
      `got ${describe(typeof raw === "bigint" ? Number(raw) : raw)} ${from}; ${parsed.problem}`,
    );
  }
  if (source === "environment" && typeof raw === "string") {
    const text = raw.trim();
    switch (spec.kind) {
      case "boolean":
        if (/^(true|1|yes|on)$/i.test(text)) return true;
        if (/^(false|0|no|off)$/i.test(text)) return false;
        throw new ConfigError(
          path,
          `got ${describe(raw)} from the environment; must be true or false`,
        );
      case "integer":
        if (/^-?\d+$/.test(text)) return Number(text);
        throw new ConfigError(
          path,
          `got ${describe(raw)} from the environment; must be an integer`,
        );
      case "string[]":
        return text === "" ? [] : text.split(",").map((s) => s.trim());
      default:
        return raw;
    }
  }
  const ok =
    spec.kind === "string[]"
      ? Array.isArray(raw) && raw.every((x) => typeof x === "string")
      : spec.kind === "integer"
        ? typeof raw === "number" || typeof raw === "bigint"
        : typeof raw === spec.kind;
  if (!ok) {
    const want =
      spec.kind === "string[]" ? "a list of strings" : `${article(spec.kind)} ${spec.kind}`;
    throw new ConfigError(
      path,
      `got ${describe(typeof raw === "bigint" ? Number(raw) : raw)} in ${source}; must be ${want}`,
    );
  }
  return typeof raw === "bigint" ? Number(raw) : raw;
}

/** How one layer names its keys in messages. */
interface Naming {
  source: Source;
  /** The name at fault as the user wrote it (`session.expiry_sec`, `COATCHECK_SESSION__EXPIRY_SEC`). */
  path: (name: string) => string;
  /** Valid names to suggest from, and how to show one. */
  candidates: readonly string[];
  show?: (candidate: string) => string;
}

function applyTable(
  target: Record<string, unknown>,
  input: Record<string, unknown>,
  specs: readonly KeySpec[],
  naming: Naming,
  nested: readonly string[],
): void {
  const { source } = naming;
  const byName = new Map<string, KeySpec>();
  for (const s of specs) byName.set(source === "options" ? s.option : s.toml, s);
  for (const [name, raw] of Object.entries(input)) {
    if (nested.includes(name)) continue;
    const spec = byName.get(name);
    const path = naming.path(name);
    if (!spec) {
      const env = source === "environment";
      const what = env ? "unknown variable" : `unknown key in ${source}`;
      const hint = suggest(name, naming.candidates, naming.show, env ? "variables" : "keys");
      throw new ConfigError(path, `${what}.${hint}`);
    }
    if (raw === undefined) continue;
    let value = coerce(spec, raw, path, source);
    if (spec.normalize) value = (spec.normalize as (v: unknown) => unknown)(value);
    const problem = (spec.check as ((v: unknown) => string | undefined) | undefined)?.(value);
    if (problem) throw new ConfigError(path, `got ${describe(value)}; ${problem}`);
    target[spec.option] = value;
  }
}

function isTable(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Layers of raw input, lowest precedence first. */
interface Layers {
  toml?: Record<string, unknown> | undefined;
  options?: SessionOptions | undefined;
  env?: Record<string, string | undefined> | undefined;
}

const ENV_PREFIX = "COATCHECK_SESSION__";
const ENV_CSRF = "csrf__";
/** Environment names, lower-cased after the prefix: `expiry_secs`, `csrf__header_name`. */
const ENV_CANDIDATES = [
  ...SESSION_KEYS.map((s) => s.toml),
  ...CSRF_KEYS.map((s) => ENV_CSRF + s.toml),
];
const ENV_CSRF_CANDIDATES = CSRF_KEYS.map((s) => s.toml);

/** One environment table: values by lower-cased key, and each variable's name as written. */
interface EnvTable {
  values: Record<string, string>;
  written: Map<string, string>;
}

function envLayer(env: Record<string, string | undefined>): { session: EnvTable; csrf: EnvTable } {
  const session: EnvTable = { values: {}, written: new Map() };
  const csrf: EnvTable = { values: {}, written: new Map() };
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || value === undefined) continue;
    const rest = name.slice(ENV_PREFIX.length).toLowerCase();
    const [table, key] = rest.startsWith(ENV_CSRF)
      ? [csrf, rest.slice(ENV_CSRF.length)]
      : [session, rest];
    table.values[key] = value;
    table.written.set(key, name);
  }
  return { session, csrf };
}

const envName = (key: string) => ENV_PREFIX + key.toUpperCase();

/**
 * A top-level key or table that looks like session configuration in the wrong place: `[sessions]`,
 * `[Session]`, `[csrf]`, a top-level `secure = false`. Left alone it would be silently ignored and
 * the defaults would apply. Any other table belongs to the app.
 */
function misplaced(name: string, value: unknown): ConfigError | undefined {
  const lower = name.toLowerCase();
  if (isTable(value)) {
    if (lower === "csrf")
      return new ConfigError(name, "coatcheck reads CSRF settings from [session.csrf], not [csrf]");
    if (lower.startsWith("ses") && distance(lower, "session") <= 2)
      return new ConfigError(
        name,
        `coatcheck reads its settings from [session] (lower case, singular), not [${name}]. Did you mean [session]?`,
      );
    return undefined;
  }
  const spec = SESSION_KEYS.find((s) => s.toml === lower);
  if (spec === undefined) return undefined;
  return new ConfigError(
    name,
    `a top-level key is not a session setting and would be ignored; move \`${spec.toml} = …\` under [session]`,
  );
}

function build(layers: Layers): SessionConfig {
  const session: Record<string, unknown> = {};
  const csrf: Record<string, unknown> = {};
  for (const s of SESSION_KEYS)
    session[s.option] = Array.isArray(s.default) ? [...s.default] : s.default;
  for (const s of CSRF_KEYS) csrf[s.option] = Array.isArray(s.default) ? [...s.default] : s.default;

  if (layers.toml) {
    const root = layers.toml;
    for (const top of Object.keys(root)) {
      if (top !== "session") {
        const problem = misplaced(top, root[top]);
        if (problem) throw problem;
        continue; // other tables belong to the app
      }
      const table = root[top];
      if (!isTable(table)) throw new ConfigError("session", "must be a table ([session])");
      applyTable(
        session,
        table,
        SESSION_KEYS,
        {
          source: "config.toml",
          path: (k) => `session.${k}`,
          candidates: [...SESSION_KEYS.map((s) => s.toml), "csrf"],
        },
        ["csrf"],
      );
      if (table.csrf !== undefined) {
        if (!isTable(table.csrf))
          throw new ConfigError("session.csrf", "must be a table ([session.csrf])");
        const candidates = CSRF_KEYS.map((s) => s.toml);
        applyTable(
          csrf,
          table.csrf,
          CSRF_KEYS,
          { source: "config.toml", path: (k) => `session.csrf.${k}`, candidates },
          [],
        );
      }
    }
  }
  if (layers.options) {
    const { csrf: csrfOptions, ...rest } = layers.options as Record<string, unknown>;
    const candidates = SESSION_KEYS.map((s) => s.option);
    applyTable(
      session,
      rest,
      SESSION_KEYS,
      { source: "options", path: (k) => `options.${k}`, candidates },
      [],
    );
    if (csrfOptions !== undefined) {
      if (!isTable(csrfOptions)) throw new ConfigError("options.csrf", "must be an object");
      applyTable(
        csrf,
        csrfOptions,
        CSRF_KEYS,
        {
          source: "options",
          path: (k) => `options.csrf.${k}`,
          candidates: CSRF_KEYS.map((s) => s.option),
        },
        [],
      );
    }
  }
  if (layers.env) {
    const env = envLayer(layers.env);
    applyTable(
      session,
      env.session.values,
      SESSION_KEYS,
      {
        source: "environment",
        path: (k) => env.session.written.get(k) ?? envName(k),
        candidates: ENV_CANDIDATES,
        show: envName,
      },
      [],
    );
    applyTable(
      csrf,
      env.csrf.values,
      CSRF_KEYS,
      {
        source: "environment",
        path: (k) => env.csrf.written.get(k) ?? envName(ENV_CSRF + k),
        candidates: ENV_CSRF_CANDIDATES,
        show: (k) => envName(ENV_CSRF + k),
      },
      [],
    );
  }

  const config = { ...session, csrf } as unknown as SessionConfig;
  checkCombinations(config);
  return config;
}

/**
 * Rules that involve more than one key (RFC 6265bis §4.1.3 cookie prefixes, SameSite=None). Browsers
 * match the prefixes case-insensitively (`__host-sid` is a `__Host-` cookie to Chromium), so do we.
 */
function checkCombinations(c: SessionConfig): void {
  const lowerName = c.cookieName.toLowerCase();
  // "auto" leaves Secure off on plain-HTTP requests, where browsers drop these cookies outright.
  const auto = c.secure === "auto" ? ` ("auto" leaves Secure off on plain-HTTP requests)` : "";
  if (c.sameSite === "none" && c.secure !== true) {
    throw new ConfigError(
      "session.same_site",
      `got "none" with secure = ${JSON.stringify(c.secure)}; browsers drop SameSite=None cookies that are not Secure${auto}. Set secure = true or use "lax"`,
    );
  }
  if (lowerName.startsWith("__host-")) {
    if (c.secure !== true)
      throw new ConfigError(
        "session.cookie_name",
        `"${c.cookieName}" needs secure = true (the __Host- prefix)${auto}`,
      );
    if (c.cookieDomain !== undefined)
      throw new ConfigError("session.cookie_domain", `must be unset with a __Host- cookie name`);
    if (c.cookiePath !== "/")
      throw new ConfigError("session.cookie_path", `must be "/" with a __Host- cookie name`);
  }
  if (lowerName.startsWith("__secure-") && c.secure !== true) {
    throw new ConfigError(
      "session.cookie_name",
      `"${c.cookieName}" needs secure = true (the __Secure- prefix)${auto}`,
    );
  }
  if (
    c.storage === "redis" &&
    c.redisUrl === undefined &&
    c.redisClusterNodes.length + c.redisSentinels.length === 0
  ) {
    throw new ConfigError(
      "session.redis_url",
      'is required when storage = "redis" (e.g. "redis://localhost:6379"), unless redis_cluster_nodes or redis_sentinels is set',
    );
  }
}

/** Options for {@link loadConfig}. */
export interface LoadConfigOptions {
  /** Path of a TOML file with a `[session]` table. Missing file is an error when given. */
  file?: string;
  /** Already-parsed TOML text, instead of a file. */
  toml?: string;
  /** Programmatic options; override the file. */
  options?: SessionOptions;
  /** Environment to read `COATCHECK_SESSION__…` overrides from; defaults to `process.env`. Pass `{}` to ignore it. */
  env?: Record<string, string | undefined>;
  /** Where to report the production warning for `secure = false`. */
  warn?: (message: string) => void;
}

/**
 * Resolve configuration from defaults, a `config.toml`, programmatic options and the environment
 * (in that order of precedence, last wins). Throws {@link ConfigError} naming the key on any problem.
 *
 * @example
 * ```ts
 * const config = loadConfig({ file: "config.toml" });
 * ```
 */
export function loadConfig(input: LoadConfigOptions = {}): SessionConfig {
  let tomlText = input.toml;
  if (input.file !== undefined) {
    const path = resolve(input.file);
    try {
      tomlText = readFileSync(path, "utf8");
    } catch (cause) {
      const code = (cause as NodeJS.ErrnoException).code;
      const why = code === "ENOENT" ? "no such file" : (cause as Error).message;
      const from = isAbsolute(input.file)
        ? ""
        : ` (${JSON.stringify(input.file)} is resolved from the working directory, ${process.cwd()})`;
      throw new ConfigError("file", `cannot read ${path}: ${why}${from}`, { cause });
    }
  }
  let toml: Record<string, unknown> | undefined;
  if (tomlText !== undefined) {
    try {
      toml = parseToml(tomlText) as Record<string, unknown>;
    } catch (cause) {
      throw new ConfigError(
        "file",
        `${input.file ?? "TOML"} is not valid TOML: ${(cause as Error).message}`,
        { cause },
      );
    }
  }
  const env = input.env ?? process.env;
  const config = build({ toml, options: input.options, env });
  if (config.secure === false && env.NODE_ENV === "production") {
    (input.warn ?? console.warn)(
      "[coatcheck] WARNING: session.secure = false with NODE_ENV=production. The session cookie will be sent over plain HTTP. Set secure = true behind HTTPS.",
    );
  }
  return config;
}

/** Resolve programmatic options only (no file, no environment). */
export function defineConfig(options: SessionOptions = {}): SessionConfig {
  return loadConfig({ options, env: {} });
}
