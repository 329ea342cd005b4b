import { describe, expect, test } from "vitest";
import { defineConfig, loadConfig } from "../../src/core/config.js";
import { ConfigError } from "../../src/core/errors.js";

/** `trust_proxy`, `secure = "auto"` and `public_origin` from TOML, options and the environment. */

function errorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error("expected a ConfigError");
}

const fromToml = (body: string) => loadConfig({ toml: `[session]\n${body}\n`, env: {} });
const fromEnv = (env: Record<string, string>) => loadConfig({ env });

describe("trust_proxy", () => {
  test("off by default", () => {
    expect(defineConfig().trustProxy).toBe(false);
  });

  test.each([
    ["trust_proxy = true", true],
    ["trust_proxy = false", false],
    ["trust_proxy = 2", 2],
    [
      'trust_proxy = ["10.0.0.0/8", "loopback", "2001:db8::1"]',
      ["10.0.0.0/8", "loopback", "2001:db8::1"],
    ],
  ])("TOML %s", (line, expected) => {
    expect(fromToml(line).trustProxy).toEqual(expected);
  });

  test.each([
    ["true", true],
    ["FALSE", false],
    ["1", 1],
    [" 10.0.0.0/8 , private ", ["10.0.0.0/8", "private"]],
  ])("environment %j", (value, expected) => {
    expect(fromEnv({ COATCHECK_SESSION__TRUST_PROXY: value }).trustProxy).toEqual(expected);
  });

  test("options", () => {
    expect(defineConfig({ trustProxy: ["192.168.0.0/16"] }).trustProxy).toEqual(["192.168.0.0/16"]);
    expect(defineConfig({ trustProxy: 3 }).trustProxy).toBe(3);
  });

  test.each([
    ['trust_proxy = ["10.0.0.0/33"]', /session\.trust_proxy: .*prefix length outside 0\.\.32/],
    [
      'trust_proxy = ["proxy.internal"]',
      /session\.trust_proxy: .*"proxy\.internal" is not an IP address/,
    ],
    ["trust_proxy = 0", /session\.trust_proxy: got 0 in config\.toml; must be a hop count/],
    [
      'trust_proxy = "yes"',
      /session\.trust_proxy: got "yes" in config\.toml; must be true, false, a hop count/,
    ],
  ])("TOML %s is refused at start-up", (line, message) => {
    expect(errorOf(() => fromToml(line)).message).toMatch(message);
  });

  test("a bad environment entry names the variable", () => {
    expect(
      errorOf(() => fromEnv({ COATCHECK_SESSION__TRUST_PROXY: "10.0.0.1,nonsense" })).message,
    ).toMatch(
      /COATCHECK_SESSION__TRUST_PROXY: got "10\.0\.0\.1,nonsense" from the environment; holds "nonsense"/,
    );
  });
});

describe('secure = "auto"', () => {
  test("from TOML, options and the environment", () => {
    expect(fromToml('secure = "auto"').secure).toBe("auto");
    expect(fromToml('secure = "AUTO"').secure).toBe("auto");
    expect(defineConfig({ secure: "auto" }).secure).toBe("auto");
    expect(fromEnv({ COATCHECK_SESSION__SECURE: "auto" }).secure).toBe("auto");
    expect(fromEnv({ COATCHECK_SESSION__SECURE: "off" }).secure).toBe(false);
  });

  test("other strings are refused", () => {
    expect(errorOf(() => fromToml('secure = "yes"')).message).toMatch(
      /session\.secure: got "yes" in config\.toml; must be a boolean or "auto"/,
    );
  });

  test("cookies that browsers only accept when Secure need secure = true, not auto", () => {
    expect(errorOf(() => defineConfig({ secure: "auto", sameSite: "none" })).message).toMatch(
      /session\.same_site: .*"auto" leaves Secure off on plain-HTTP requests/,
    );
    expect(
      errorOf(() => defineConfig({ secure: "auto", cookieName: "__Host-sid" })).message,
    ).toMatch(
      /session\.cookie_name: "__Host-sid" needs secure = true \(the __Host- prefix\) \("auto"/,
    );
    expect(
      errorOf(() => defineConfig({ secure: "auto", cookieName: "__Secure-sid" })).message,
    ).toMatch(/needs secure = true \(the __Secure- prefix\)/);
  });

  test("no plain-HTTP warning in production: auto is Secure wherever HTTPS is", () => {
    const warnings: string[] = [];
    loadConfig({
      options: { secure: "auto" },
      env: { NODE_ENV: "production" },
      warn: (m) => warnings.push(m),
    });
    expect(warnings).toEqual([]);
  });
});

describe("public_origin", () => {
  test("unset by default; one origin or a list", () => {
    expect(defineConfig().publicOrigin).toEqual([]);
    expect(fromToml('public_origin = "https://app.example"').publicOrigin).toEqual([
      "https://app.example",
    ]);
    expect(
      fromToml('public_origin = ["https://app.example", "https://www.app.example"]').publicOrigin,
    ).toEqual(["https://app.example", "https://www.app.example"]);
    expect(defineConfig({ publicOrigin: "https://app.example:8443" }).publicOrigin).toEqual([
      "https://app.example:8443",
    ]);
    expect(
      fromEnv({ COATCHECK_SESSION__PUBLIC_ORIGIN: "https://a.example, https://b.example" })
        .publicOrigin,
    ).toEqual(["https://a.example", "https://b.example"]);
  });

  test.each([
    [
      'public_origin = "https://app.example/"',
      /holds "https:\/\/app\.example\/", which is not an origin/,
    ],
    ['public_origin = "app.example"', /holds "app\.example", which is not an origin/],
    ["public_origin = 1", /got 1 in config\.toml; must be an origin or a list of origins/],
  ])("TOML %s is refused", (line, message) => {
    expect(errorOf(() => fromToml(line)).message).toMatch(message);
  });
});
