import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { loadConfig } from "../../src/core/config.js";
import { packTarball, ROOT, run } from "../support/pack.js";
import { freePort } from "../support/redis.js";

/**
 * The README and the guides as a new user meets them. Every TypeScript block is marked: `<!-- run:
 * NAME -->` is a whole app, run from the packed tarball in a fresh app directory and signed in to;
 * `<!-- fragment: PRELUDE -->` is a piece of one, type-checked under `strict` after a prelude that
 * declares the `app` it adds routes to. `<!-- file: NAME -->` writes a block (the quick start's
 * config.toml) into the app directory.
 */
const DOCS = [
  "README.md",
  ...readdirSync(join(ROOT, "docs/guides"))
    .filter((f) => f.endsWith(".md"))
    .map((f) => `docs/guides/${f}`),
];

interface Block {
  doc: string;
  line: number;
  lang: string;
  marker: { kind: "run" | "fragment" | "file"; name: string } | null;
  code: string;
}

function blocksOf(doc: string): Block[] {
  const lines = readFileSync(join(ROOT, doc), "utf8").split("\n");
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w*)/.exec(lines[i] as string);
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && lines[i] !== "```"; i++) body.push(lines[i] as string);
    const before = lines[start - 1] ?? "";
    const m = /^<!-- (run|fragment|file): ([\w.-]+) -->$/.exec(before);
    blocks.push({
      doc,
      line: start + 1,
      lang: open[1] ?? "",
      marker: m ? { kind: m[1] as "run" | "fragment" | "file", name: m[2] as string } : null,
      code: `${body.join("\n")}\n`,
    });
  }
  return blocks;
}

const blocks = DOCS.flatMap(blocksOf);
const tsBlocks = blocks.filter((b) => b.lang === "ts");
const runnable = tsBlocks.filter((b) => b.marker?.kind === "run");
const fragments = tsBlocks.filter((b) => b.marker?.kind === "fragment");

/** What a fragment may use without declaring it: the app of its framework and the quick start's helpers. */
const HELPERS = `declare function escapeHtml(text: string): string;\n`;
const PRELUDES: Record<string, string> = {
  none: HELPERS,
  hono: `${HELPERS}declare const app: import("hono").Hono;\n`,
  express: `import type {} from "coatcheck/express";\n${HELPERS}declare const app: import("express").Express;\n`,
  fastify: `import type {} from "coatcheck/fastify";\n${HELPERS}declare const app: import("fastify").FastifyInstance;\n`,
};

/** The packages a user of the quick starts installs beside coatcheck. */
const PACKAGES = [
  "hono",
  "@hono/node-server",
  "express",
  "@types/express",
  "fastify",
  "fastify-plugin",
  "@fastify/formbody",
  "zod",
  "redis",
  "pg",
  "@types/pg",
  "passport",
  "@types/passport",
  "@types/express-session",
  "@types/node@20",
];

// One app directory per work tree, kept between runs so npm only replaces the coatcheck tarball.
const APP = join(
  tmpdir(),
  `coatcheck-readme-app-${createHash("sha256").update(ROOT).digest("hex").slice(0, 12)}`,
);
const TSX = pathToFileURL(join(ROOT, "node_modules/tsx/dist/esm/index.mjs")).href;
const TSC = join(ROOT, "node_modules/typescript/bin/tsc");
const children: ChildProcess[] = [];
let tarball = "";

beforeAll(async () => {
  tarball = await packTarball();
  mkdirSync(APP, { recursive: true });
  for (const f of readdirSync(APP)) if (/^(run|fragment)-/.test(f)) rmSync(join(APP, f));
  writeFileSync(
    join(APP, "package.json"),
    JSON.stringify({ name: "readme-app", private: true, type: "module" }),
  );
  await run(
    "npm",
    ["install", "--no-audit", "--no-fund", "--prefer-offline", tarball, ...PACKAGES],
    { cwd: APP, maxBuffer: 16 * 1024 * 1024 },
  );
  for (const b of blocks.filter((x) => x.marker?.kind === "file"))
    writeFileSync(join(APP, b.marker?.name as string), b.code);
}, 300_000);

afterAll(() => {
  for (const child of children) if (child.exitCode === null) child.kill("SIGKILL");
  if (tarball) rmSync(dirname(tarball), { recursive: true, force: true });
});

describe("the README's blocks", () => {
  test("every TypeScript block is marked as an app to run or a fragment to type-check", () => {
    const unmarked = tsBlocks.filter((b) => b.marker === null || b.marker.kind === "file");
    expect(unmarked.map((b) => `${b.doc}:${b.line}`)).toEqual([]);
    expect(runnable.map((b) => b.marker?.name)).toEqual(["hono", "express", "fastify"]);
    for (const b of fragments)
      expect(Object.keys(PRELUDES), `${b.doc}:${b.line}`).toContain(b.marker?.name);
  });

  test("every config.toml block is valid configuration", () => {
    const tomls = blocks.filter((b) => b.lang === "toml");
    expect(tomls.length).toBeGreaterThan(0);
    for (const b of tomls)
      expect(() => loadConfig({ toml: b.code, env: {} }), `${b.doc}:${b.line}`).not.toThrow();
  });

  test("every TypeScript block type-checks under strict against the installed tarball", async () => {
    const names = new Map<string, Block>();
    for (const b of runnable) names.set(`run-${b.marker?.name}.ts`, b);
    fragments.forEach((b, i) => {
      names.set(`fragment-${i}.ts`, b);
    });
    for (const [file, b] of names) {
      const prelude = b.marker?.kind === "fragment" ? (PRELUDES[b.marker.name] as string) : "";
      writeFileSync(join(APP, file), `${prelude}${b.code}export {};\n`);
    }
    writeFileSync(
      join(APP, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          target: "es2022",
          module: "nodenext",
          moduleResolution: "nodenext",
          types: ["node"],
          noEmit: true,
          skipLibCheck: true,
        },
        include: [...names.keys()],
      }),
    );
    const result = await run(process.execPath, [TSC, "-p", "tsconfig.json"], { cwd: APP }).then(
      () => "",
      (e: { stdout: string }) => e.stdout,
    );
    // Name each error after its block in the docs.
    const located = result.replace(/^([\w-]+\.ts)\((\d+),/gm, (all, file: string, line: string) => {
      const b = names.get(file);
      return b ? `${b.doc}:${b.line} (${file} line ${line}),` : all;
    });
    expect(located).toBe("");
  }, 120_000);
});

test("the @types/express-session clash is as the guide says, and getSession(req) gets around it", async () => {
  const code = (line: string) => `import type {} from "express-session";
import { getSession, session } from "coatcheck/express";
import express from "express";
const app = express();
app.use(session());
app.post("/", async (req, res) => {
  ${line}
  res.end();
});
`;
  const check = async (file: string, line: string) => {
    writeFileSync(join(APP, file), code(line));
    const config = `tsconfig.${file}.json`;
    writeFileSync(
      join(APP, config),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          module: "nodenext",
          target: "es2022",
          noEmit: true,
          skipLibCheck: true,
          types: ["node"],
        },
        files: [file],
      }),
    );
    return run(process.execPath, [TSC, "-p", config], { cwd: APP }).then(
      () => "",
      (e: { stdout: string }) => e.stdout,
    );
  };
  expect(await check("run-clash-fix.ts", 'await getSession(req).insert("n", 1);')).toBe("");
  expect(await check("run-clash.ts", 'await req.session.insert("n", 1);')).toContain(
    "Property 'insert' does not exist on type 'Session & Partial<SessionData>'",
  );
}, 120_000);

/** Cookie value pair from a response, or "". */
function sessionCookie(res: Response): string {
  const set = res.headers.getSetCookie().find((c) => c.startsWith("session_id="));
  return set ? (set.split(";")[0] as string) : "";
}

function tokenIn(html: string): string {
  const m = /<input type="hidden" name="_csrf" value="([\w-]+)">/.exec(html);
  if (!m) throw new Error(`no CSRF field in:\n${html}`);
  return m[1] as string;
}

async function start(name: string): Promise<{ base: string; child: ChildProcess }> {
  const port = await freePort();
  const child = spawn(process.execPath, ["--import", TSX, `run-${name}.ts`], {
    cwd: APP,
    env: { ...process.env, PORT: String(port), NODE_ENV: "development" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  let output = "";
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on("data", (d: Buffer) => {
      output += d.toString();
      if (output.includes(`http://localhost:${port}`)) resolve();
    });
    child.stderr?.on("data", (d: Buffer) => {
      output += d.toString();
    });
    child.once("exit", (code) => reject(new Error(`${name} exited with ${code}:\n${output}`)));
  });
  return { base: `http://localhost:${port}`, child };
}

describe.each(runnable.map((b) => b.marker?.name as string))("the %s quick start", (name) => {
  test("sign in with the rendered token → 303 → the signed-in page → sign out; it shuts down by itself", async () => {
    const { base, child } = await start(name);
    const send = (path: string, cookie: string, form?: Record<string, string>) =>
      fetch(`${base}${path}`, {
        method: form ? "POST" : "GET",
        redirect: "manual",
        headers: {
          ...(cookie ? { cookie } : {}),
          ...(form ? { "content-type": "application/x-www-form-urlencoded" } : {}),
        },
        ...(form ? { body: new URLSearchParams(form).toString() } : {}),
      });

    // A visitor who only reads gets no cookie.
    const home = await send("/", "");
    expect(await home.text()).toContain("Not signed in");
    expect(sessionCookie(home)).toBe("");

    const loginPage = await send("/login", "");
    const token = tokenIn(await loginPage.text());
    const first = sessionCookie(loginPage);
    expect(first).toMatch(/^session_id=[\w-]{32}$/);

    const credentials = { username: "alice", password: "wonderland" };
    const forged = await send("/login", first, credentials);
    expect(forged.status).toBe(403);
    await forged.text();

    const login = await send("/login", first, { ...credentials, _csrf: token });
    await login.text();
    expect(login.status).toBe(303);
    expect(login.headers.get("location")).toBe("/");
    const signedIn = sessionCookie(login);
    expect(signedIn).toMatch(/^session_id=/);
    expect(signedIn).not.toBe(first); // the id rotated

    const page = await send("/", signedIn);
    const html = await page.text();
    expect(html).toContain("Signed in as <b>alice</b>");

    const logout = await send("/logout", signedIn, { _csrf: tokenIn(html) });
    await logout.text();
    expect([logout.status, logout.headers.get("location")]).toEqual([303, "/"]);
    const after = sessionCookie(logout) || signedIn;
    const signedOut = await send("/", after);
    expect(await signedOut.text()).toContain("Not signed in");
    // The old cookie is worthless too.
    expect(await (await send("/", signedIn)).text()).toContain("Not signed in");

    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
  }, 60_000);
});
