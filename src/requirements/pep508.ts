/**
 * One PEP 508 requirement (`Django[argon2] >= 5.2, < 6 ; python_version >= "3.10"`), as found in
 * requirements files and in wheel METADATA `Requires-Dist` (which may wrap the specifier in
 * parentheses). URL requirements (`name @ url`) are recognised and refused: vdeploy installs only
 * wheels from its own repository.
 */
import { ConfigError } from '../errors.js';
import { formatMarker, tryParseMarker, type MarkerExpr } from './markers.js';
import { isValidName, normalizeName } from './names.js';
import { containsVersion, parseSpecifier } from './specifier.js';

export { normalizeName } from './names.js';

export interface Requirement {
  /** The project name as written. */
  name: string;
  /** PEP 503 normalized name: what two requirements are compared by. */
  key: string;
  /** Normalized, deduplicated, sorted. */
  extras: string[];
  /** Comma-joined clauses without white space, in the order written; '' means any version. */
  specifier: string;
  marker?: MarkerExpr;
}

export type RequirementParse =
  | { ok: true; requirement: Requirement }
  /** `url`: a well-formed `name @ url` requirement, which vdeploy can't honour. */
  | { ok: false; kind: 'invalid' | 'url'; reason: string };

export const REQUIREMENT_HINT = 'a requirement looks like: name[extra1,extra2]>=1.0,<2; python_version < "3.12"';
export const URL_HINT = 'add the wheel to the repository with `vdeploy add-wheel` and require it by name and version';

const LEADING_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?/;

/** Parses one requirement; ConfigError saying what is wrong with it. */
export function parseRequirement(text: string): Requirement {
  const result = tryParseRequirement(text);
  if (result.ok) return result.requirement;
  if (result.kind === 'url') {
    throw new ConfigError(`requirement "${text.trim()}" is not supported: ${result.reason}`, { hint: URL_HINT });
  }
  throw new ConfigError(`invalid requirement "${text.trim()}": ${result.reason}`, { hint: REQUIREMENT_HINT });
}

/** parseRequirement without the throw, so callers (requirements files) can add file:line. */
export function tryParseRequirement(text: string): RequirementParse {
  const source = text.trim();
  const invalid = (reason: string): RequirementParse => ({ ok: false, kind: 'invalid', reason });
  if (source === '') return invalid('it is empty');

  const name = LEADING_NAME.exec(source)?.[0];
  if (!name) return invalid('it must start with a package name (letters, digits, ".", "_", "-")');
  let rest = source.slice(name.length).trimStart();

  let extras: string[] = [];
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close < 0) return invalid('"[" without a closing "]" around the extras');
    const parsed = parseExtras(rest.slice(1, close));
    if (typeof parsed === 'string') return invalid(parsed);
    extras = parsed;
    rest = rest.slice(close + 1).trimStart();
  }

  if (rest.startsWith('@')) {
    return { ok: false, kind: 'url', reason: 'direct URL references (name @ url) can\'t be deployed from the wheel repository' };
  }

  const semicolon = rest.indexOf(';');
  let specifierText = (semicolon < 0 ? rest : rest.slice(0, semicolon)).trim();
  // METADATA's older `name (>=1.0)` form.
  if (specifierText.startsWith('(')) {
    if (!specifierText.endsWith(')')) return invalid('"(" around the version specifier is not closed');
    specifierText = specifierText.slice(1, -1);
  }
  if (/[()]/.test(specifierText)) return invalid(`unexpected parenthesis in "${specifierText}"`);
  const specifier = parseSpecifier(specifierText);
  if (!specifier.ok) {
    const noSemicolon = semicolon < 0 && /\s/.test(specifierText.trim()) ? ' (missing ";" before a marker?)' : '';
    return invalid(`${specifier.reason}${noSemicolon}`);
  }

  const requirement: Requirement = { name, key: normalizeName(name), extras, specifier: specifier.text };
  if (semicolon >= 0) {
    const markerText = rest.slice(semicolon + 1);
    if (markerText.trim() === '') return invalid('nothing after ";" (expected a marker)');
    // Columns in marker errors count from the start of the requirement.
    const marker = tryParseMarker(markerText, source.length - rest.length + semicolon + 1);
    if (!marker.ok) return invalid(`bad marker: ${marker.reason}`);
    requirement.marker = marker.expr;
  }
  return { ok: true, requirement };
}

/** `[a, b_c]` contents → normalized, deduplicated, sorted extras, or the reason they are wrong. */
function parseExtras(inner: string): string[] | string {
  if (inner.trim() === '') return [];
  const extras = new Set<string>();
  for (const raw of inner.split(',')) {
    const extra = raw.trim();
    if (extra === '') return `empty extra name in "[${inner}]"`;
    if (/\s/.test(extra)) return `expected a comma between extra names in "[${inner}]"`;
    if (!isValidName(extra)) return `"${extra}" is not a valid extra name`;
    extras.add(normalizeName(extra));
  }
  return [...extras].sort();
}

/** The canonical text: `name[extras]specifier; marker` (as packaging's `str(Requirement)`). */
export function formatRequirement(req: Requirement): string {
  const extras = req.extras.length > 0 ? `[${req.extras.join(',')}]` : '';
  const marker = req.marker ? `; ${formatMarker(req.marker)}` : '';
  return `${req.name}${extras}${req.specifier}${marker}`;
}

/**
 * Does `version` satisfy `specifier` (e.g. `>=1.0,<2`; '' = any)? Pre-releases: `prereleases`
 * true/false forces them in/out; left undefined, they count only if the specifier names one
 * (PEP 440). An invalid specifier is a ConfigError; a version that is not PEP 440 never matches
 * (except `===`).
 */
export function satisfiesSpecifier(version: string, specifier: string, options: { prereleases?: boolean } = {}): boolean {
  const parsed = parseSpecifier(specifier);
  if (!parsed.ok) {
    throw new ConfigError(`invalid version specifier "${specifier}": ${parsed.reason}`, {
      hint: 'a specifier looks like: >=1.0,<2 or ==1.4.* or ~=2.2',
    });
  }
  return containsVersion(parsed.clauses, version, options.prereleases);
}
