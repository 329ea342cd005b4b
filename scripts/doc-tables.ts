import { CSRF_KEYS, type KeySpec, SESSION_KEYS } from "../src/core/config.js";
import { DECISION_TABLE } from "../src/core/lifecycle.js";

/**
 * The README's generated tables: the decision table and the configuration reference. A test checks
 * the README holds exactly this text, so the docs cannot drift from the code.
 * Run `npm run docs:tables` to print them.
 */
export function decisionTableMarkdown(): string {
  const rows = DECISION_TABLE.map((r, i) => `| ${i + 1} | ${r.when} | ${r.action} | ${r.cookie} |`);
  return ["| # | when (first match wins) | store | cookie |", "|---|---|---|---|", ...rows].join(
    "\n",
  );
}

function show(value: unknown): string {
  if (value === undefined) return "(unset)";
  if (Array.isArray(value)) return value.length === 0 ? "`[]`" : `\`${JSON.stringify(value)}\``;
  return `\`${JSON.stringify(value)}\``;
}

function rows(specs: readonly KeySpec[], table: string, envPrefix: string): string[] {
  return specs.map(
    (k) =>
      `| \`${table}\` | \`${k.toml}\` | \`${k.option}\` | ${show(k.default)} | \`${envPrefix}${k.toml.toUpperCase()}\` | ${k.doc} |`,
  );
}

export function configTableMarkdown(): string {
  return [
    "| table | key | option | default | environment | meaning |",
    "|---|---|---|---|---|---|",
    ...rows(SESSION_KEYS, "[session]", "COATCHECK_SESSION__"),
    ...rows(CSRF_KEYS, "[session.csrf]", "COATCHECK_SESSION__CSRF__"),
  ].join("\n");
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.stdout.write(`${decisionTableMarkdown()}\n\n${configTableMarkdown()}\n`);
}
