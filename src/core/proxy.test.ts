import { describe, expect, it } from "vitest";
import {
  checkTrustEntry,
  clientView,
  compileTrust,
  parseForwarded,
  type TrustProxy,
} from "./proxy.js";

function view(trust: TrustProxy, peer: string, headers: Record<string, string>, encrypted = false) {
  return clientView(compileTrust(trust), {
    peer,
    encrypted,
    host: "app.internal:3000",
    header: (name) => headers[name],
  });
}

describe("trust_proxy", () => {
  it("ignores forwarded headers unless the peer is trusted", () => {
    const headers = { "x-forwarded-proto": "https", "x-forwarded-host": "shop.example" };
    expect(view(false, "10.0.0.2", headers)).toEqual({
      protocol: "http",
      host: "app.internal:3000",
    });
    expect(view(["127.0.0.1"], "10.0.0.2", headers)).toEqual({
      protocol: "http",
      host: "app.internal:3000",
    });
    expect(view(["10.0.0.0/8"], "10.0.0.2", headers)).toEqual({
      protocol: "https",
      host: "shop.example",
    });
  });

  it("a TLS socket is https without any proxy", () => {
    expect(view(false, "203.0.113.9", {}, true).protocol).toBe("https");
  });

  it("takes the value written by the trusted proxy furthest from the app", () => {
    // client → edge (10.0.0.1, saw https) → internal lb (10.0.0.2, saw http) → app
    const headers = {
      "x-forwarded-for": "198.51.100.7, 10.0.0.1",
      "x-forwarded-proto": "https, http",
      "x-forwarded-host": "shop.example, lb.internal",
    };
    expect(view(["private"], "10.0.0.2", headers)).toEqual({
      protocol: "https",
      host: "shop.example",
    });
    expect(view(1, "10.0.0.2", headers)).toEqual({ protocol: "http", host: "lb.internal" });
    expect(view(2, "10.0.0.2", headers)).toEqual({ protocol: "https", host: "shop.example" });
    expect(view(true, "10.0.0.2", headers)).toEqual({ protocol: "https", host: "shop.example" });
  });

  it("does not let a client extend the chain it sends", () => {
    // The client forged the left-most entries; only the hop its own address reached is believed.
    const headers = {
      "x-forwarded-for": "10.9.9.9, 198.51.100.7",
      "x-forwarded-proto": "http, https",
    };
    expect(view(["private"], "10.0.0.2", headers).protocol).toBe("https");
  });

  it("prefers Forwarded (RFC 7239), quoted values included", () => {
    const headers = {
      forwarded: 'for=198.51.100.7;proto=https;host="shop.example:8443", for="[2001:db8::1]"',
      "x-forwarded-proto": "http",
    };
    expect(view(["loopback", "2001:db8::/32"], "::ffff:127.0.0.1", headers)).toEqual({
      protocol: "https",
      host: "shop.example:8443",
    });
  });

  it("ignores malformed values", () => {
    expect(view(true, "127.0.0.1", { forwarded: "for", "x-forwarded-proto": "https" })).toEqual({
      protocol: "https",
      host: "app.internal:3000",
    });
    expect(view(true, "127.0.0.1", { "x-forwarded-proto": "gopher" }).protocol).toBe("http");
    expect(view(true, "127.0.0.1", { "x-forwarded-host": "evil.example/path" }).host).toBe(
      "app.internal:3000",
    );
    expect(parseForwarded('for="unterminated')).toBeNull();
  });

  it("validates list entries at start-up", () => {
    expect(checkTrustEntry("10.0.0.0/8")).toBeUndefined();
    expect(checkTrustEntry("::1")).toBeUndefined();
    expect(checkTrustEntry("loopback")).toBeUndefined();
    expect(checkTrustEntry("10.0.0.0/33")).toMatch(/prefix length/);
    expect(checkTrustEntry("proxy.internal")).toMatch(/not an IP address/);
    expect(() => compileTrust(["nope"])).toThrow(/trust_proxy/);
  });
});
