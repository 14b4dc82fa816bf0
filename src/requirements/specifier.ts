/**
 * PEP 440 version specifiers (`>=1.0,<2`, `==1.4.*`, `~=2.2`): parsing, validation and membership.
 *
 * Version parsing, ordering and specifier validation come from @renovatebot/pep440. Its own
 * membership test (`satisfies`) differs from Python's `packaging` (what pip uses) for `<`, `>`, `~=`,
 * wildcards, local labels, `===` and pre-release defaults, so those rules are applied here, each
 * branch's comment naming the difference; test/integration/pep508-packaging.test.ts checks a grid against packaging.
 */
import { eq, explain, ge, gt, lt, satisfies, validRange, type Pep440Version } from '@renovatebot/pep440';

export type SpecifierOperator = '~=' | '==' | '!=' | '<=' | '>=' | '<' | '>' | '===';

export interface SpecifierClause {
  operator: SpecifierOperator;
  /** The version as written, without the `.*` of a wildcard. */
  version: string;
  /** `==1.4.*` / `!=1.4.*`: prefix match on the release segment. */
  wildcard: boolean;
}

export type SpecifierParse = { ok: true; clauses: SpecifierClause[]; text: string } | { ok: false; reason: string };

const CLAUSE = /^(===|~=|==|!=|<=|>=|<|>)\s*(.*)$/s;
/** A wildcard may only follow a bare release (with optional epoch), as in packaging's grammar. */
const WILDCARD_VERSION = /^v?(?:[0-9]+!)?[0-9]+(?:\.[0-9]+)*$/i;

/**
 * Parses a comma-separated specifier (no parentheses). `''` is the empty specifier (any version).
 * Returns the clauses and the normalized text: whitespace removed, clauses comma-joined in the order
 * written. Versions keep their spelling (as packaging's `str(SpecifierSet)` does).
 */
export function parseSpecifier(text: string): SpecifierParse {
  const trimmed = text.trim();
  if (trimmed === '') return { ok: true, clauses: [], text: '' };
  const clauses: SpecifierClause[] = [];
  // Empty clauses (`>=1.0,`) are skipped, as packaging's SpecifierSet does.
  for (const part of trimmed.split(',').filter((p) => p.trim() !== '')) {
    const clause = parseClause(part.trim());
    if (typeof clause === 'string') return { ok: false, reason: clause };
    clauses.push(clause);
  }
  return { ok: true, clauses, text: clauses.map(formatClause).join(',') };
}

/** One `op version` clause, or the reason it is not one. */
export function parseClause(text: string): SpecifierClause | string {
  const match = CLAUSE.exec(text);
  if (!match) return `"${text}" does not start with a comparison operator (==, !=, <=, >=, <, >, ~=, ===)`;
  const operator = match[1] as SpecifierOperator;
  const rest = match[2] ?? '';
  if (rest === '') return `"${text}" has no version after ${operator}`;
  if (/\s/.test(rest)) return `"${text}" has white space inside the version`;
  const wildcard = rest.endsWith('.*') && operator !== '===';
  const version = wildcard ? rest.slice(0, -2) : rest;
  if (wildcard && !(operator === '==' || operator === '!=')) {
    return `"${text}": a .* wildcard is only allowed with == and !=`;
  }
  // The library accepts `==1.0a1.*`; packaging does not (a prefix match is on the release only).
  if (wildcard && !WILDCARD_VERSION.test(version)) {
    return `"${text}": a .* wildcard can't follow a pre-, post-, dev or local version`;
  }
  if (!validRange(`${operator}${rest}`)) return `"${text}" is not a valid PEP 440 version specifier`;
  return { operator, version, wildcard };
}

export function formatClause(clause: SpecifierClause): string {
  return `${clause.operator}${clause.version}${clause.wildcard ? '.*' : ''}`;
}

/**
 * Whether pre-releases are allowed when the caller does not say: PEP 440's rule, as packaging's
 * `SpecifierSet.prereleases` computes it — only if some clause (other than `!=` or a wildcard) names
 * a pre-release.
 */
export function mentionsPrerelease(clauses: SpecifierClause[]): boolean {
  return clauses.some((c) => {
    if (c.operator === '!=' || c.wildcard) return false;
    return explain(c.version)?.is_prerelease ?? false;
  });
}

/**
 * Does `version` satisfy every clause? `prereleases` undefined applies PEP 440's default (see
 * mentionsPrerelease); true/false force it. A version that is not PEP 440 only matches `===`.
 */
export function containsVersion(clauses: SpecifierClause[], version: string, prereleases?: boolean): boolean {
  const candidate = version.trim();
  const parsed = explain(candidate);
  const allowPre = prereleases ?? mentionsPrerelease(clauses);
  if (parsed?.is_prerelease && !allowPre) return false;
  return clauses.every((c) => clauseContains(c, candidate, parsed));
}

/** One clause, pre-release policy already applied by the caller. */
export function clauseContains(clause: SpecifierClause, version: string, parsed: Pep440Version | null): boolean {
  // Arbitrary equality is a case-insensitive string match, local label included (the library would
  // strip a local label from both sides first).
  if (clause.operator === '===') return version.toLowerCase() === clause.version.toLowerCase();
  if (!parsed) return false;
  const spec = explain(clause.version);
  if (!spec) return false;
  if (clause.wildcard) {
    const matching = matchesPrefix(parsed, spec);
    return clause.operator === '==' ? matching : !matching;
  }
  switch (clause.operator) {
    case '<':
      return containsLessThan(version, clause.version, spec);
    case '>':
      return containsGreaterThan(version, parsed, clause.version, spec);
    case '==':
    case '!=': {
      // A local label in the specifier is compared exactly; without one, the candidate's local label
      // is ignored (`==1.0` matches `1.0+ubuntu1`). The library strips both sides whenever the
      // candidate has one, so `==1.0+a` would match `1.0+b`.
      const candidate = spec.local ? version : parsed.public;
      const equal = eq(candidate, clause.version);
      return clause.operator === '==' ? equal : !equal;
    }
    case '~=': {
      // `~=X.Y.Z` is `>=X.Y.Z, ==X.Y.*`; the prefix part uses the padded match below, which the
      // library's own expansion lacks (it fails `~=1.0.0` against `1.0`).
      const prefix: Pep440Version = { ...spec, release: spec.release.slice(0, -1) };
      return ge(parsed.public, clause.version) && matchesPrefix(parsed, prefix);
    }
    default:
      return satisfies(version, `${clause.operator}${clause.version}`, { prereleases: true });
  }
}

/**
 * PEP 440 prefix match: same epoch, and the candidate's release — zero-padded to the prefix's
 * length — starts with the prefix (`1` matches `==1.0.*`).
 */
function matchesPrefix(candidate: Pep440Version, prefix: Pep440Version): boolean {
  if (candidate.epoch !== prefix.epoch) return false;
  return prefix.release.every((n, i) => (candidate.release[i] ?? 0) === n);
}

/**
 * `<V`: below V and, unless V is itself a pre-release, below V.dev0 — so no pre-release of V
 * (`2.0a1` fails `<2.0`, passes `<2.0.post1`). The library instead refuses every version sharing
 * V's release numbers.
 */
function containsLessThan(version: string, specText: string, spec: Pep440Version): boolean {
  const bound = spec.is_prerelease ? specText : formatVersion(spec, { dev: 0 });
  return lt(version, bound);
}

/**
 * `>V`: above V, and not V's own local or post-releases unless V is a post- or dev-release, in which
 * case the next post/dev release is the floor. Mirrors packaging's ranges (`1.0` passes `>1.0rc1`,
 * `1.0.post1` fails `>1.0`; the library refused both).
 */
function containsGreaterThan(version: string, parsed: Pep440Version, specText: string, spec: Pep440Version): boolean {
  const dev = numberOrNull(spec.dev);
  const post = numberOrNull(spec.post);
  if (dev !== null) return ge(version, formatVersion(spec, { dev: dev + 1 }));
  if (post !== null) return ge(version, formatVersion(spec, { post: post + 1, dev: 0 }));
  if (!gt(version, specText)) return false;
  return !eq(formatVersion(parsed, { post: null, dev: null }), specText);
}

/**
 * A version string from explain()'s parts, with some segments replaced (no local label). The
 * library's typings say `post`/`dev` are arrays; at run time explain() gives numbers (or null).
 */
function formatVersion(v: Pep440Version, change: { post?: number | null; dev?: number | null }): string {
  const post = change.post === undefined ? numberOrNull(v.post) : change.post;
  const dev = change.dev === undefined ? numberOrNull(v.dev) : change.dev;
  const pre = Array.isArray(v.pre) && v.pre.length > 0 ? v.pre.join('') : '';
  return `${v.epoch ? `${v.epoch}!` : ''}${v.release.join('.')}${pre}${post === null ? '' : `.post${post}`}${dev === null ? '' : `.dev${dev}`}`;
}

function numberOrNull(value: unknown): number | null {
  if (typeof value === 'number') return value;
  if (Array.isArray(value) && typeof value[1] === 'number') return value[1];
  return null;
}
