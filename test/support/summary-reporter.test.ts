import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { expect, test } from "vitest";

const run = promisify(execFile);
const fixtures = fileURLToPath(new URL("./summary-fixtures/", import.meta.url));
const vitest = fileURLToPath(new URL("../../node_modules/vitest/vitest.mjs", import.meta.url));

test("tests that never ran because a hook or the file failed count as failed, not skipped", async () => {
  const outcome = await run(process.execPath, [vitest, "run", "--root", fixtures], {
    env: { ...process.env, CI: "", VITE_CJS_IGNORE_WARNING: "true" },
  }).then(
    () => ({ code: 0, stdout: "" }),
    (error: { code: number; stdout: string }) => error,
  );
  expect(outcome.code).toBe(1);
  // Passed: 1 (healthy suite) + 1 (runtime-skip). Failed: 2 (suite hook) + 1 (file hook) + 1 (file
  // that failed to load). Skipped: the skipIf test and the one that skipped itself.
  const closing = outcome.stdout.trim().split("\n").at(-1);
  expect(closing).toBe("2 passed, 4 failed, 2 skipped");
}, 60_000);
