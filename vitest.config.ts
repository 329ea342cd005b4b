import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts", "src/**/*.test.ts"],
    reporters: ["default", "./test/support/summary-reporter.ts"],
    testTimeout: 20_000,
    hookTimeout: 60_000,
    // Redis-backed suites share one server; files that start their own use free ports.
    fileParallelism: true,
    pool: "forks",
  },
});
