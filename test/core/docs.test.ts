import { readFileSync } from "node:fs";
import { expect, test } from "vitest";
import { configTableMarkdown, decisionTableMarkdown } from "../../scripts/doc-tables.js";

const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");

test("the README shows the decision table exactly as the code defines it", () => {
  expect(readme).toContain(decisionTableMarkdown());
});

test("the README's configuration reference matches the key table in the code", () => {
  expect(readme).toContain(configTableMarkdown());
});
