/**
 * PEP 508 environment markers (`python_version < "3.12" and sys_platform == "linux"`): parsing to a
 * small tree and evaluating it the way Python's `packaging` (26.x) does, so vdeploy picks the same
 * dependencies pip will. test/integration/markers-packaging.test.ts compares the results with real packaging.
 */
import { ConfigError, VdeployError } from '../errors.js';
import { MarkerSyntax, VERSION_VARIABLES, parseMarkerText } from './marker-parser.js';
import { normalizeName } from './names.js';
import { containsVersion, parseClause } from './specifier.js';

export { MARKER_VARIABLES } from './marker-parser.js';

/** What `packaging.markers.default_environment()` returns for an interpreter. */
export interface MarkerEnvironment {
  implementation_name: string;
  implementation_version: string;
  os_name: string;
  platform_machine: string;
  platform_release: string;
  platform_system: string;
  platform_version: string;
  python_full_version: string;
  platform_python_implementation: string;
  python_version: string;
  sys_platform: string;
}

export type MarkerVariable = keyof MarkerEnvironment | 'extra';
export type MarkerOperator = '==' | '!=' | '<' | '<=' | '>' | '>=' | '~=' | '===' | 'in' | 'not in';
export type MarkerOperand = { variable: MarkerVariable } | { value: string };
export type MarkerExpr =
  | { type: 'compare'; left: MarkerOperand; op: MarkerOperator; right: MarkerOperand }
  | { type: 'and' | 'or'; items: MarkerExpr[] };

const HINT = 'markers look like: python_version < "3.12" and (sys_platform == "linux" or extra == "socks")';

/** Parses a marker expression (the part after `;`); ConfigError naming the problem and column. */
export function parseMarker(text: string): MarkerExpr {
  const result = tryParseMarker(text);
  if (!result.ok) throw new ConfigError(`invalid marker '${text.trim()}': ${result.reason}`, { hint: HINT });
  return result.expr;
}

export type MarkerParse = { ok: true; expr: MarkerExpr } | { ok: false; reason: string };

/** parseMarker without the throw, so a caller can put the reason in its own message. */
export function tryParseMarker(text: string, columnOffset = 0): MarkerParse {
  try {
    return { ok: true, expr: parseMarkerText(text, columnOffset) };
  } catch (error) {
    if (error instanceof MarkerSyntax) return { ok: false, reason: error.message };
    throw error;
  }
}

/**
 * Evaluates a marker for one interpreter. `extra` comparisons are true if ANY of `extras` makes the
 * whole marker true; with no extras, `extra` is "" (so `extra == "x"` is false) — what pip does.
 */
export function evaluateMarker(expr: MarkerExpr, env: MarkerEnvironment, extras: readonly string[] = []): boolean {
  const candidates = extras.length > 0 ? extras.map((e) => (e ? normalizeName(e) : '')) : [''];
  // packaging's workaround for `python_version()` of untagged builds ("3.12.1+").
  const fixed = env.python_full_version.endsWith('+') ? { ...env, python_full_version: `${env.python_full_version}local` } : env;
  return candidates.some((extra) => evaluate(expr, fixed, extra));
}

/** The canonical text form (normalized extras, canonical variable names, double quotes). */
export function formatMarker(expr: MarkerExpr): string {
  if (expr.type === 'compare') return `${formatOperand(expr.left)} ${expr.op} ${formatOperand(expr.right)}`;
  // `and` binds tighter than `or`, so only an `or` inside an `and` needs parentheses.
  return expr.items.map((item) => (expr.type === 'and' && item.type === 'or' ? `(${formatMarker(item)})` : formatMarker(item))).join(` ${expr.type} `);
}

/** Whether the marker mentions `extra` at all (then it only holds for some extras). */
export function markerUsesExtra(expr: MarkerExpr): boolean {
  if (expr.type !== 'compare') return expr.items.some(markerUsesExtra);
  return [expr.left, expr.right].some((o) => 'variable' in o && o.variable === 'extra');
}

function formatOperand(operand: MarkerOperand): string {
  if ('variable' in operand) return operand.variable;
  return operand.value.includes('"') ? `'${operand.value}'` : `"${operand.value}"`;
}

function evaluate(expr: MarkerExpr, env: MarkerEnvironment, extra: string): boolean {
  // No short-circuit: packaging evaluates every comparison, so one it can't evaluate fails the
  // whole marker even when the rest already decides it.
  if (expr.type !== 'compare') {
    const results = expr.items.map((e) => evaluate(e, env, extra));
    return expr.type === 'and' ? results.every(Boolean) : results.some(Boolean);
  }
  const variable = 'variable' in expr.left ? expr.left.variable : (expr.right as { variable: MarkerVariable }).variable;
  const valueOf = (o: MarkerOperand) => ('value' in o ? o.value : o.variable === 'extra' ? extra : env[o.variable]);
  return compare(valueOf(expr.left), expr.op, valueOf(expr.right), variable, expr);
}

/**
 * packaging's `_eval_op`: for the version variables, `op + rhs` that forms a valid PEP 440 specifier
 * is a version comparison (pre-releases allowed; an unparsable lhs never matches). Otherwise only
 * string equality and containment are defined: `<`/`>` are false, `<=`/`>=` mean equal.
 */
function compare(lhs: string, op: MarkerOperator, rhs: string, variable: MarkerVariable, expr: MarkerExpr): boolean {
  if (VERSION_VARIABLES.has(variable) && op !== 'in' && op !== 'not in') {
    const clause = parseClause(`${op}${rhs}`.trim());
    if (typeof clause !== 'string') return containsVersion([clause], lhs, true);
  }
  switch (op) {
    case 'in':
      return rhs.includes(lhs);
    case 'not in':
      return !rhs.includes(lhs);
    case '==':
    case '<=':
    case '>=':
      return lhs === rhs;
    case '!=':
      return lhs !== rhs;
    case '<':
    case '>':
      return false;
    default:
      throw new VdeployError(`marker '${formatMarker(expr)}' can't be evaluated: ${op} needs PEP 440 versions, got "${lhs}" and "${rhs}"`, {
        hint: 'this marker comes from a requirement or package metadata; compare with == or != instead',
      });
  }
}
