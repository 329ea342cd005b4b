// Fixtures for summary-reporter.test.ts only; the main suite never includes *.fx.ts.
export default {
  test: { include: ["*.fx.ts"], reporters: ["../summary-reporter.ts"] },
};
