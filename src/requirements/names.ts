/** PEP 503 / PEP 685 name normalization, shared by package names and extras. */

/** `Foo_Bar.baz` → `foo-bar-baz`: how pip and indexes compare distribution and extra names. */
export function normalizeName(name: string): string {
  return name.replace(/[-_.]+/g, '-').toLowerCase();
}

/** PEP 508's name rule: ASCII letters and digits, with `.`, `_` and `-` only inside. */
export const NAME_PATTERN = /^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$/;

export function isValidName(name: string): boolean {
  return NAME_PATTERN.test(name);
}
