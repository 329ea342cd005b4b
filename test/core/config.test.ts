import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { CSRF_KEYS, defineConfig, loadConfig, SESSION_KEYS } from "../../src/core/config.js";
import { ConfigError } from "../../src/core/errors.js";
import { createSessionEngine } from "../../src/setup.js";
import { MemoryStore } from "../../src/stores/memory.js";

const SEED_TOML = `
[session]
cookie_name = "session_id"
cookie_path = "/"
cookie_domain = "example.com"
secure = true
http_only = true
same_site = "lax"
expiry_secs = 86400
inactivity_timeout_secs = 3600
storage = "redis"
redis_url = "redis://localhost:6379"

[session.csrf]
enabled = true
token_length = 32
header_name = "X-CSRF-Token"
form_field_name = "_csrf"
`;

function errorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error("expected a ConfigError");
}

describe("config.toml", () => {
  test("the seed's configuration reference parses, key for key", () => {
    const c = loadConfig({ toml: SEED_TOML, env: {} });
    expect(c).toMatchObject({
      cookieName: "session_id",
      cookiePath: "/",
      cookieDomain: "example.com",
      secure: true,
      httpOnly: true,
      sameSite: "lax",
      expirySecs: 86400,
      inactivityTimeoutSecs: 3600,
      storage: "redis",
      redisUrl: "redis://localhost:6379",
      csrf: { enabled: true, tokenLength: 32, headerName: "X-CSRF-Token", formFieldName: "_csrf" },
    });
  });

  test("defaults match the seed's documented ones", () => {
    const c = defineConfig();
    expect(c).toMatchObject({
      cookieName: "session_id",
      cookiePath: "/",
      cookieDomain: undefined,
      secure: true,
      httpOnly: true,
      sameSite: "lax",
      expirySecs: 86400,
      inactivityTimeoutSecs: 0,
      storage: "memory",
      csrf: { enabled: true, tokenLength: 32, headerName: "X-CSRF-Token", formFieldName: "_csrf" },
    });
  });

  test("reads a file; other tables belong to the app and are ignored", () => {
    const dir = mkdtempSync(join(tmpdir(), "coatcheck-"));
    const file = join(dir, "config.toml");
    writeFileSync(file, `[server]\nport = 1\n\n[session]\nexpiry_secs = 60\n`);
    expect(loadConfig({ file, env: {} }).expirySecs).toBe(60);
  });

  test("a missing file and invalid TOML are start-up errors", () => {
    expect(
      errorOf(() => loadConfig({ file: "/nonexistent/config.toml", env: {} })).message,
    ).toMatch(/cannot read \/nonexistent\/config\.toml: no such file$/);
    // A relative path names the file it looked for and where it resolved from.
    const relative = errorOf(() => loadConfig({ file: "conf/missing.toml", env: {} })).message;
    expect(relative).toContain(`cannot read ${join(process.cwd(), "conf/missing.toml")}`);
    expect(relative).toContain(`resolved from the working directory, ${process.cwd()}`);
    expect(errorOf(() => loadConfig({ toml: "[session\nx=", env: {} })).message).toMatch(
      /not valid TOML/,
    );
  });
});

describe("session settings in the wrong place are errors, the app's own tables are not", () => {
  test.each([
    [
      "[sessions]\nsecure = false\n",
      "sessions",
      /reads its settings from \[session\].*not \[sessions\]\. Did you mean \[session\]\?/,
    ],
    ["[Session]\nsecure = false\n", "Session", /Did you mean \[session\]\?/],
    ["[sesion]\nsecure = false\n", "sesion", /Did you mean \[session\]\?/],
    ["[csrf]\nenabled = false\n", "csrf", /\[session\.csrf\], not \[csrf\]/],
    [
      "secure = false\n[session]\nexpiry_secs = 60\n",
      "secure",
      /move `secure = …` under \[session\]/,
    ],
    ["Same_Site = 'lax'\n", "Same_Site", /move `same_site = …` under \[session\]/],
  ])("%s", (toml, key, message) => {
    const err = errorOf(() => loadConfig({ toml, env: {} }));
    expect(err.key).toBe(key);
    expect(err.message).toMatch(message);
  });

  test("other top-level keys and tables belong to the app", () => {
    const toml = `port = 8080\ntitle = "shop"\n[server]\nsecure_port = 1\n[version]\nmajor = 1\n[sessionstore]\nx = 1\n[session]\nexpiry_secs = 60\n`;
    expect(loadConfig({ toml, env: {} }).expirySecs).toBe(60);
  });
});

describe("values are accepted in the forms people write", () => {
  test.each(["Lax", "LAX", "lax", "Strict", "NONE"])("same_site = %j", (value) => {
    const toml = `[session]\nsame_site = "${value}"\n`;
    expect(loadConfig({ toml, env: {} }).sameSite).toBe(value.toLowerCase());
  });

  test("same_site in the environment and in options, any case", () => {
    expect(loadConfig({ env: { COATCHECK_SESSION__SAME_SITE: "Strict" } }).sameSite).toBe("strict");
    expect(defineConfig({ sameSite: "Lax" as "lax" }).sameSite).toBe("lax");
  });
});

describe("errors name the key, the bad value and what is allowed", () => {
  test.each([
    ['same_site = "sometimes"', "session.same_site", /"sometimes".*"strict", "lax", "none"/],
    ["expiry_secs = -5", "session.expiry_secs", /-5.*integer from 0 to 34560000/],
    ["expiry_secs = 1.5", "session.expiry_secs", /1\.5.*integer/],
    ['expiry_secs = "1 day"', "session.expiry_secs", /"1 day".*must be an integer/],
    ["secure = 1", "session.secure", /1.*must be a boolean/],
    ['storage = "mongodb"', "session.storage", /"mongodb".*"memory", "redis" or "postgres"/],
    ['postgres_url = "mysql://x/db"', "session.postgres_url", /postgres:\/\/ or postgresql:\/\//],
    ['postgres_table = "sessions; drop"', "session.postgres_table", /letters, digits or _/],
    ['postgres_schema = "1st"', "session.postgres_schema", /not starting with a digit/],
    ['storage = "redis"', "session.redis_url", /required when storage = "redis"/],
    ['redis_url = "http://x"', "session.redis_url", /redis:\/\/ or rediss:\/\//],
    [
      'redis_cluster_nodes = ["redis://a:1", "http://b"]',
      "session.redis_cluster_nodes",
      /"http:\/\/b"/,
    ],
    ['redis_sentinels = ["s1:26379", "s2"]', "session.redis_sentinels", /"s2", not a host:port/],
    ["redis_wait_replicas = -1", "session.redis_wait_replicas", /integer from 0 to 16/],
    ['cookie_name = "a b"', "session.cookie_name", /cookie-name token/],
    ['cookie_path = "/; Domain=evil.com"', "session.cookie_path", /no ; or control/],
    ['cookie_domain = "a.com\\r\\nX: y"', "session.cookie_domain", /host name/],
    ['same_site = "none"\nsecure = false', "session.same_site", /SameSite=None/],
    ['cookie_name = "__Host-sid"\ncookie_domain = "a.com"', "session.cookie_domain", /__Host-/],
    ['cookie_name = "__Host-sid"\ncookie_path = "/app"', "session.cookie_path", /__Host-/],
    ['cookie_name = "__Host-sid"\nsecure = false', "session.cookie_name", /secure = true/],
    ['cookie_name = "__Secure-sid"\nsecure = false', "session.cookie_name", /secure = true/],
    // Browsers match the prefixes case-insensitively, so the checks do too.
    ['cookie_name = "__host-sid"\nsecure = false', "session.cookie_name", /secure = true/],
    ['cookie_name = "__HOST-sid"\ncookie_domain = "a.com"', "session.cookie_domain", /__Host-/],
    ['cookie_name = "__secure-sid"\nsecure = false', "session.cookie_name", /secure = true/],
    ['cookie_domain = "example.com:8080"', "session.cookie_domain", /without a port/],
  ])("%s", (toml, key, message) => {
    const err = errorOf(() => loadConfig({ toml: `[session]\n${toml}\n`, env: {} }));
    expect(err.key).toBe(key);
    expect(err.message).toMatch(message);
  });

  test.each([
    ["token_length = 8", "session.csrf.token_length", /16 to 128/],
    ['header_name = "X CSRF"', "session.csrf.header_name", /header name/],
    ['form_field_name = ""', "session.csrf.form_field_name", /1-64/],
    ['trusted_origins = ["https://a.com/path"]', "session.csrf.trusted_origins", /not an origin/],
    ['exempt_paths = ["api"]', "session.csrf.exempt_paths", /start with \//],
  ])("[session.csrf] %s", (toml, key, message) => {
    const err = errorOf(() => loadConfig({ toml: `[session.csrf]\n${toml}\n`, env: {} }));
    expect(err.key).toBe(key);
    expect(err.message).toMatch(message);
  });

  test("unknown keys suggest the nearest valid one", () => {
    expect(
      errorOf(() => loadConfig({ toml: "[session]\nexpiry_sec = 5\n", env: {} })).message,
    ).toMatch(/session\.expiry_sec: unknown key.*Did you mean "expiry_secs"\?/);
    expect(
      errorOf(() => loadConfig({ toml: "[session.csrf]\nheader = 'X'\n", env: {} })).message,
    ).toMatch(/Did you mean "header_name"\?/);
    expect(
      errorOf(() => loadConfig({ toml: "[session]\nzzzzzzzz = 5\n", env: {} })).message,
    ).toMatch(/Valid keys: cookie_name/);
    expect(errorOf(() => defineConfig({ cookiename: "x" } as never)).message).toMatch(
      /Did you mean "cookieName"\?/,
    );
  });
});

describe("programmatic options and the environment", () => {
  test("camelCase options override the file, the environment overrides both", () => {
    const c = loadConfig({
      toml: "[session]\nexpiry_secs = 10\ncookie_name = 'from_file'\n[session.csrf]\nenabled = true\n",
      options: { expirySecs: 20, csrf: { headerName: "X-Token" } },
      env: {
        COATCHECK_SESSION__EXPIRY_SECS: "30",
        COATCHECK_SESSION__CSRF__ENABLED: "false",
        COATCHECK_SESSION__STORAGE: "redis",
        COATCHECK_SESSION__REDIS_URL: "redis://127.0.0.1:6379/2",
        COATCHECK_SESSION__CSRF__TRUSTED_ORIGINS: "https://a.example, https://b.example",
      },
    });
    expect(c.expirySecs).toBe(30);
    expect(c.cookieName).toBe("from_file");
    expect(c.csrf.enabled).toBe(false);
    expect(c.csrf.headerName).toBe("X-Token");
    expect(c.storage).toBe("redis");
    expect(c.redisUrl).toBe("redis://127.0.0.1:6379/2");
    expect(c.csrf.trustedOrigins).toEqual(["https://a.example", "https://b.example"]);
  });

  test("every key can be set from the environment", () => {
    const values: Record<string, string> = {
      cookie_name: "sid",
      cookie_path: "/app",
      cookie_domain: "example.com",
      secure: "true",
      http_only: "false",
      same_site: "strict",
      expiry_secs: "60",
      inactivity_timeout_secs: "30",
      storage: "memory",
      redis_url: "rediss://u:p@h:6380/1",
      postgres_url: "postgresql://u:p@db:5433/app?sslmode=require",
      postgres_schema: "app",
      postgres_table: "web_sessions",
      postgres_create_table: "yes",
      redis_cluster_nodes: "redis://a:7000, redis://b:7001",
      redis_sentinels: "s1:26379,s2:26379",
      redis_sentinel_name: "primary",
      redis_sentinel_username: "sentinel-user",
      redis_sentinel_password: "sentinel-secret",
      redis_username: "app",
      redis_password: "secret",
      redis_wait_replicas: "1",
      redis_wait_timeout_ms: "200",
      key_prefix: "app:",
      operation_timeout_ms: "250",
      breaker_threshold: "4",
      breaker_open_ms: "200",
      breaker_max_open_ms: "3000",
      lock_timeout_ms: "900",
      max_sessions: "5",
      max_sessions_per_user: "3",
      session_limit_action: "REFUSE",
      max_value_bytes: "1024",
      max_session_bytes: "4096",
      max_flash_messages: "7",
      max_depth: "8",
      trust_proxy: "10.0.0.0/8, loopback",
      public_origin: "https://app.example,https://www.app.example",
    };
    const csrfValues: Record<string, string> = {
      enabled: "false",
      token_length: "48",
      header_name: "X-Other",
      form_field_name: "token",
      trusted_origins: "https://x.example",
      exempt_paths: "/api,/hooks",
    };
    expect(Object.keys(values).sort()).toEqual(SESSION_KEYS.map((k) => k.toml).sort());
    expect(Object.keys(csrfValues).sort()).toEqual(CSRF_KEYS.map((k) => k.toml).sort());
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(values)) env[`COATCHECK_SESSION__${k.toUpperCase()}`] = v;
    for (const [k, v] of Object.entries(csrfValues))
      env[`COATCHECK_SESSION__CSRF__${k.toUpperCase()}`] = v;
    const c = loadConfig({ env });
    expect(c).toMatchObject({
      cookieName: "sid",
      cookiePath: "/app",
      cookieDomain: "example.com",
      secure: true,
      httpOnly: false,
      sameSite: "strict",
      expirySecs: 60,
      inactivityTimeoutSecs: 30,
      redisUrl: "rediss://u:p@h:6380/1",
      postgresUrl: "postgresql://u:p@db:5433/app?sslmode=require",
      postgresSchema: "app",
      postgresTable: "web_sessions",
      postgresCreateTable: true,
      redisClusterNodes: ["redis://a:7000", "redis://b:7001"],
      redisSentinels: ["s1:26379", "s2:26379"],
      redisSentinelName: "primary",
      redisSentinelUsername: "sentinel-user",
      redisSentinelPassword: "sentinel-secret",
      redisUsername: "app",
      redisPassword: "secret",
      redisWaitReplicas: 1,
      redisWaitTimeoutMs: 200,
      keyPrefix: "app:",
      operationTimeoutMs: 250,
      trustProxy: ["10.0.0.0/8", "loopback"],
      publicOrigin: ["https://app.example", "https://www.app.example"],
      breakerThreshold: 4,
      breakerOpenMs: 200,
      breakerMaxOpenMs: 3000,
      lockTimeoutMs: 900,
      maxSessions: 5,
      maxSessionsPerUser: 3,
      sessionLimitAction: "refuse",
      maxValueBytes: 1024,
      maxSessionBytes: 4096,
      maxFlashMessages: 7,
      maxDepth: 8,
      csrf: {
        enabled: false,
        tokenLength: 48,
        headerName: "X-Other",
        formFieldName: "token",
        trustedOrigins: ["https://x.example"],
        exemptPaths: ["/api", "/hooks"],
      },
    });
  });

  test("bad environment values and unknown environment keys name the variable", () => {
    expect(
      errorOf(() => loadConfig({ env: { COATCHECK_SESSION__SECURE: "maybe" } })).message,
    ).toMatch(
      /COATCHECK_SESSION__SECURE: got "maybe" from the environment; must be true, false or "auto"/,
    );
    expect(
      errorOf(() => loadConfig({ env: { COATCHECK_SESSION__EXPIRY_SECS: "soon" } })).message,
    ).toMatch(/integer/);
    expect(
      errorOf(() => loadConfig({ env: { COATCHECK_SESSION__REDIS_ULR: "redis://x" } })).message,
    ).toMatch(/Did you mean "COATCHECK_SESSION__REDIS_URL"\?/);
  });

  test.each([
    [
      "COATCHECK_SESSION__EXPIRY_SEC",
      "60",
      /unknown variable\. Did you mean "COATCHECK_SESSION__EXPIRY_SECS"\?/,
    ],
    [
      "COATCHECK_SESSION__CSRF_ENABLED",
      "false",
      /Did you mean "COATCHECK_SESSION__CSRF__ENABLED"\?/,
    ],
    [
      "COATCHECK_SESSION__CSRF__HEADER",
      "X",
      /Did you mean "COATCHECK_SESSION__CSRF__HEADER_NAME"\?/,
    ],
    ["COATCHECK_SESSION__Expiry_Secs", "soon", /"soon" from the environment; must be an integer/],
    ["COATCHECK_SESSION__EXPIRY_SECS", "-1", /"?-1"?; must be an integer from 0/],
    ["COATCHECK_SESSION__SAME_SITE", "sometimes", /"sometimes"; must be one of/],
    ["COATCHECK_SESSION__CSRF__TOKEN_LENGTH", "8", /16 to 128/],
  ])("the environment error names %s as written", (name, value, message) => {
    const err = errorOf(() => loadConfig({ env: { [name]: value } }));
    expect(err.key).toBe(name);
    expect(err.message).toMatch(new RegExp(`^coatcheck config: ${name}: `));
    expect(err.message).toMatch(message);
  });

  test("an unknown variable far from every name lists the valid ones", () => {
    expect(
      errorOf(() => loadConfig({ env: { COATCHECK_SESSION__ZZZZZZZZZZ: "1" } })).message,
    ).toMatch(
      /Valid variables: COATCHECK_SESSION__COOKIE_NAME, .*COATCHECK_SESSION__CSRF__ENABLED/,
    );
  });

  test("the memory store under NODE_ENV=production: one warning at start-up", () => {
    const warnings: string[] = [];
    const logger = { warn: (_f: unknown, m: string) => warnings.push(m), error: () => {} };
    createSessionEngine({ env: { NODE_ENV: "production" }, logger });
    expect(warnings).toEqual([
      expect.stringMatching(/WARNING: storage = "memory" with NODE_ENV=production/),
    ]);
    // Not in development, and not when the app passes a store of its own.
    createSessionEngine({ env: { NODE_ENV: "development" }, logger });
    createSessionEngine({ env: { NODE_ENV: "production" }, logger, store: new MemoryStore() });
    expect(warnings).toHaveLength(1);
  });

  test("secure = false under NODE_ENV=production is a loud warning, not silence", () => {
    const warnings: string[] = [];
    loadConfig({
      options: { secure: false },
      env: { NODE_ENV: "production" },
      warn: (m: string) => warnings.push(m),
    });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/WARNING: session\.secure = false with NODE_ENV=production/);
    loadConfig({
      options: { secure: false },
      env: { NODE_ENV: "development" },
      warn: (m: string) => warnings.push(m),
    });
    expect(warnings).toHaveLength(1);
  });
});
