/**
 * SQL identifiers from configuration (PostgreSQL schema and table names). Only plain identifiers
 * are accepted, so double-quoting them is all the escaping a statement needs, and the longest
 * table name plus `_locks` still fits PostgreSQL's 63-byte limit.
 */
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,56}$/;

/** "must be …" when `name` is not an identifier coatcheck accepts, else undefined. */
export function identifierProblem(name: string): string | undefined {
  return IDENTIFIER.test(name)
    ? undefined
    : "must be 1-57 letters, digits or _, not starting with a digit";
}
