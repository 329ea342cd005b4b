import type { Reporter, SerializedError, TestCase, TestModule } from "vitest/node";

/**
 * Prints the plain closing line CI reads: `N passed, N failed` (and `, N skipped` when any were).
 * Nothing that failed to run is called skipped: a test that never ran because a `beforeAll` of its
 * suite or file threw counts as failed, a file that failed to load counts as one failure, and so
 * does every unhandled error. A run that crashed is not a green run.
 */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>, errors: ReadonlyArray<SerializedError>): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    for (const mod of modules) {
      for (const test of mod.children.allTests()) {
        const state = test.result().state;
        if (state === "passed") passed++;
        else if (state === "failed" || hookFailed(test)) failed++;
        else skipped++;
      }
      // A file that failed to load has no tests but is a failure.
      if (mod.state() === "failed" && [...mod.children.allTests()].length === 0) failed++;
    }
    failed += errors.length;
    const tail = skipped > 0 ? `, ${skipped} skipped` : "";
    process.stdout.write(`\n${passed} passed, ${failed} failed${tail}\n`);
  }
}

/** Vitest marks the tests of a suite whose `beforeAll` threw as skipped; the error sits on the suite. */
function hookFailed(test: TestCase): boolean {
  for (let at: TestCase["parent"] | undefined = test.parent; at; ) {
    if (at.errors().length > 0) return true;
    at = at.type === "suite" ? at.parent : undefined;
  }
  return false;
}
