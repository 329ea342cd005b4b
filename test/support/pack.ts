import { execFile } from "node:child_process";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

export const run = promisify(execFile);
export const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/**
 * `npm pack` of the built package into a fresh temporary directory; returns the tarball's path.
 * Needs `npm run build` first (the test command runs it): the tarball ships dist/ only.
 */
export async function packTarball(): Promise<string> {
  if (!existsSync(join(ROOT, "dist", "index.js"))) {
    throw new Error("dist/ is missing: run npm run build before the package tests");
  }
  const dir = mkdtempSync(join(tmpdir(), "coatcheck-pack-"));
  const { stdout } = await run("npm", ["pack", "--json", "--pack-destination", dir], {
    cwd: ROOT,
  });
  const [info] = JSON.parse(stdout) as Array<{ filename: string }>;
  if (!info) throw new Error(`npm pack printed no file: ${stdout}`);
  return join(dir, info.filename);
}
