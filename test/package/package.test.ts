import { readFileSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { packTarball, ROOT, run } from "../support/pack.js";

/**
 * The tarball as npm would publish it: what it holds, and that publint and "Are the types wrong?"
 * (ESM-only profile) find nothing wrong with it.
 */
let tarball = "";
let listing: string[] = [];

beforeAll(async () => {
  tarball = await packTarball();
  const { stdout } = await run("tar", ["-tzf", tarball]);
  listing = stdout.trim().split("\n");
}, 120_000);

afterAll(() => {
  if (tarball) rmSync(dirname(tarball), { recursive: true, force: true });
});

describe("the packed tarball", () => {
  test("holds dist/, the license, the README and package.json; no sources, no tests", () => {
    expect(listing).toEqual(expect.arrayContaining(["package/LICENSE", "package/README.md"]));
    expect(listing).toContain("package/package.json");
    expect(listing).toContain("package/dist/index.js");
    expect(listing).toContain("package/dist/index.d.ts");
    const outside = listing.filter(
      (f) =>
        !f.startsWith("package/dist/") && !/^package\/(LICENSE|README\.md|package\.json)$/.test(f),
    );
    expect(outside).toEqual([]);
    expect(listing.filter((f) => /\.test\.|\/src\//.test(f))).toEqual([]);
  });

  test("every source map carries its sources (the .ts files are not shipped)", () => {
    const maps = listing.filter((f) => f.endsWith(".js.map"));
    expect(maps.length).toBeGreaterThan(10);
    for (const entry of maps) {
      const map = JSON.parse(readFileSync(join(ROOT, entry.slice("package/".length)), "utf8")) as {
        sources: string[];
        sourcesContent?: Array<string | null>;
      };
      expect(map.sourcesContent?.length, entry).toBe(map.sources.length);
      expect(map.sourcesContent?.every((text) => typeof text === "string" && text.length > 0)).toBe(
        true,
      );
    }
  });

  test("package.json has what a registry page needs", () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
    expect(pkg).toMatchObject({
      name: "coatcheck",
      type: "module",
      license: "MIT",
      sideEffects: false,
      repository: { type: "git" },
      bugs: { url: expect.stringMatching(/^https:\/\//) },
      homepage: expect.stringMatching(/^https:\/\//),
    });
    expect(pkg.keywords).toEqual(expect.arrayContaining(["session", "csrf", "htmx"]));
    expect(pkg.peerDependencies["fastify-plugin"]).toBe("^5.0.0 || ^6.0.0");
  });

  test("publint finds nothing, warnings included", async () => {
    const { stdout } = await run("npx", ["--no-install", "publint", "run", tarball, "--strict"], {
      cwd: ROOT,
    });
    expect(stdout).toContain("All good!");
  }, 60_000);

  test("Are the types wrong? (ESM-only profile) finds nothing", async () => {
    const args = [
      "--no-install",
      "attw",
      tarball,
      "--profile",
      "esm-only",
      "--no-definitely-typed",
    ];
    const result = await run("npx", [...args, "--format", "json"], { cwd: ROOT }).then(
      (r) => ({ code: 0, stdout: r.stdout }),
      (e: { code: number; stdout: string }) => e,
    );
    // The profile leaves out only what an ESM-only package cannot offer: node10 resolution and
    // require() from CommonJS type-checking.
    const report = JSON.parse(result.stdout) as {
      analysis: { problems: Array<{ kind: string; resolutionKind?: string }> };
    };
    const counted = report.analysis.problems.filter(
      (p) => p.resolutionKind !== "node10" && p.resolutionKind !== "node16-cjs",
    );
    expect(counted).toEqual([]);
    expect(result.code).toBe(0);
  }, 60_000);
});

describe("require() of the ESM build (Node ≥ 20.19 loads ES modules synchronously)", () => {
  test.each([
    ["coatcheck", "createSessionEngine"],
    ["coatcheck/hono", "getCsrfToken"],
    ["coatcheck/express", "getCsrfToken"],
    ["coatcheck/fastify", "getCsrfToken"],
    ["coatcheck/redis", "RedisStore"],
    ["coatcheck/postgres", "PostgresStore"],
    ["coatcheck/adapter-kit", "RequestPipeline"],
    ["coatcheck/testing", "describeStoreConformance"],
  ])("require(%j) returns its exports", async (entry, name) => {
    // The package requires itself by name from its own directory (exports self-reference).
    const script = `const m = require(${JSON.stringify(entry)}); process.stdout.write(typeof m[${JSON.stringify(name)}]);`;
    const { stdout, stderr } = await run(process.execPath, ["-e", script], { cwd: ROOT });
    expect(stdout).toBe("function");
    expect(stderr).not.toMatch(/Error/);
  });
});
