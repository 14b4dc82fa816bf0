/**
 * The PEP 508 marker grammar: a tokenizer and a recursive-descent parser producing MarkerExpr, plus
 * the checks that refuse at parse time what packaging could never evaluate.
 */
import { normalizeName } from './names.js';
import type { MarkerExpr, MarkerOperand, MarkerOperator, MarkerVariable } from './markers.js';
import { parseClause } from './specifier.js';

export const MARKER_VARIABLES: readonly MarkerVariable[] = [
  'os_name', 'sys_platform', 'platform_machine', 'platform_python_implementation', 'platform_release',
  'platform_system', 'platform_version', 'python_version', 'python_full_version', 'implementation_name',
  'implementation_version', 'extra',
];

/** PEP 345 / setuptools spellings still found in old metadata; packaging 21 accepted them too. */
const ALIASES: Record<string, MarkerVariable> = {
  'os.name': 'os_name',
  'sys.platform': 'sys_platform',
  'platform.version': 'platform_version',
  'platform.machine': 'platform_machine',
  'platform.python_implementation': 'platform_python_implementation',
  python_implementation: 'platform_python_implementation',
};

/** The only variables packaging compares as PEP 440 versions; everything else is a plain string. */
export const VERSION_VARIABLES: ReadonlySet<MarkerVariable> = new Set([
  'python_version', 'python_full_version', 'implementation_version', 'platform_release',
]);


/** A marker that is not well-formed; the message says where (1-based column). */
export class MarkerSyntax extends Error {}

/** Parses marker text into a tree; MarkerSyntax if malformed. Columns are shifted by `columnOffset`. */
export function parseMarkerText(text: string, columnOffset = 0): MarkerExpr {
  const parser = new Parser(tokenize(text, columnOffset));
  const expr = parser.parseOr();
  parser.expectEnd();
  return expr;
}

type Token =
  | { kind: 'lparen' | 'rparen' | 'end'; col: number }
  | { kind: 'string' | 'op' | 'word'; text: string; col: number };

const TOKEN_RE = /\s*(?:(\()|(\))|'([^']*)'|"([^"]*)"|(===|==|~=|!=|<=|>=|<|>)|([A-Za-z_][A-Za-z0-9_.]*))/y;

/** Columns are 1-based, shifted by `offset` when the marker sits inside a longer text. */
function tokenize(text: string, offset: number): Token[] {
  const tokens: Token[] = [];
  let pos = 0;
  for (;;) {
    TOKEN_RE.lastIndex = pos;
    const m = TOKEN_RE.exec(text);
    if (!m) {
      const rest = text.slice(pos);
      if (rest.trim() === '') break;
      const at = pos + (rest.length - rest.trimStart().length);
      const ch = text[at];
      const col = at + offset + 1;
      if (ch === '"' || ch === "'") throw new MarkerSyntax(`unterminated string starting at column ${col}`);
      throw new MarkerSyntax(`unexpected ${JSON.stringify(ch)} at column ${col}`);
    }
    const col = pos + (m[0].length - m[0].trimStart().length) + offset + 1;
    pos = TOKEN_RE.lastIndex;
    if (m[1]) tokens.push({ kind: 'lparen', col });
    else if (m[2]) tokens.push({ kind: 'rparen', col });
    else if (m[3] !== undefined || m[4] !== undefined) tokens.push({ kind: 'string', text: m[3] ?? m[4] ?? '', col });
    else if (m[5]) tokens.push({ kind: 'op', text: m[5], col });
    else tokens.push({ kind: 'word', text: m[6] ?? '', col });
  }
  tokens.push({ kind: 'end', col: text.trimEnd().length + offset + 1 });
  return tokens;
}

class Parser {
  private index = 0;
  constructor(private readonly tokens: Token[]) {}

  /** or_expr := and_expr ('or' and_expr)*  — `and` binds tighter, as in Python. */
  parseOr(): MarkerExpr {
    const items = [this.parseAnd()];
    while (this.isWord('or')) {
      this.index++;
      items.push(this.parseAnd());
    }
    return items.length === 1 ? items[0]! : { type: 'or', items };
  }

  expectEnd(): void {
    const token = this.peek();
    if (token.kind !== 'end') throw new MarkerSyntax(`expected "and", "or" or the end at column ${token.col}, found ${describe(token)}`);
  }

  private parseAnd(): MarkerExpr {
    const items = [this.parseAtom()];
    while (this.isWord('and')) {
      this.index++;
      items.push(this.parseAtom());
    }
    return items.length === 1 ? items[0]! : { type: 'and', items };
  }

  private parseAtom(): MarkerExpr {
    const token = this.peek();
    if (token.kind === 'lparen') {
      this.index++;
      const inner = this.parseOr();
      const close = this.peek();
      if (close.kind !== 'rparen') throw new MarkerSyntax(`expected ")" at column ${close.col}, found ${describe(close)}`);
      this.index++;
      return inner;
    }
    return this.parseComparison();
  }

  private parseComparison(): MarkerExpr {
    const start = this.peek().col;
    const left = this.parseOperand();
    const opCol = this.peek().col;
    const op = this.parseOperator();
    const right = this.parseOperand();
    return checkComparison(left, op, right, start, opCol);
  }

  private parseOperand(): MarkerOperand {
    const token = this.next();
    if (token.kind === 'string') return { value: token.text };
    if (token.kind === 'word') {
      const variable = toVariable(token.text);
      if (variable) return { variable };
      throw new MarkerSyntax(`unknown marker variable "${token.text}" at column ${token.col} (known: ${MARKER_VARIABLES.join(', ')})`);
    }
    throw new MarkerSyntax(`expected a marker variable or a quoted string at column ${token.col}, found ${describe(token)}`);
  }

  private parseOperator(): MarkerOperator {
    const token = this.next();
    if (token.kind === 'op') return token.text as MarkerOperator;
    if (token.kind === 'word' && token.text === 'in') return 'in';
    if (token.kind === 'word' && token.text === 'not') {
      const after = this.next();
      if (after.kind === 'word' && after.text === 'in') return 'not in';
      throw new MarkerSyntax(`expected "in" after "not" at column ${after.col}`);
    }
    throw new MarkerSyntax(`expected a comparison operator (==, !=, <, <=, >, >=, ~=, ===, in, not in) at column ${token.col}, found ${describe(token)}`);
  }

  private isWord(word: string): boolean {
    const token = this.peek();
    return token.kind === 'word' && token.text === word;
  }

  private peek(): Token {
    return this.tokens[this.index] ?? this.tokens[this.tokens.length - 1]!;
  }

  private next(): Token {
    const token = this.peek();
    if (token.kind !== 'end') this.index++;
    return token;
  }
}

function toVariable(word: string): MarkerVariable | undefined {
  if ((MARKER_VARIABLES as readonly string[]).includes(word)) return word as MarkerVariable;
  return ALIASES[word];
}

function describe(token: Token): string {
  switch (token.kind) {
    case 'end':
      return 'the end';
    case 'lparen':
      return '"("';
    case 'rparen':
      return '")"';
    case 'string':
      return `the string "${token.text}"`;
    default:
      return `"${token.text}"`;
  }
}

/**
 * Refuses what packaging can never evaluate, at parse time so the user sees file:line: two literals
 * or two variables, and `~=`/`===` where no version comparison is possible.
 */
function checkComparison(left: MarkerOperand, op: MarkerOperator, right: MarkerOperand, col: number, opCol: number): MarkerExpr {
  const leftVar = 'variable' in left ? left.variable : undefined;
  const rightVar = 'variable' in right ? right.variable : undefined;
  if (leftVar && rightVar) throw new MarkerSyntax(`comparison at column ${col} compares two variables; one side must be a quoted string`);
  if (!leftVar && !rightVar) throw new MarkerSyntax(`comparison at column ${col} compares two strings; one side must be a marker variable`);
  const variable = (leftVar ?? rightVar)!;
  if (op === '~=' || op === '===') {
    const literal = 'value' in right ? right.value : undefined;
    const versionCompare = VERSION_VARIABLES.has(variable) && (literal === undefined || typeof parseClause(`${op}${literal}`.trim()) !== 'string');
    if (!versionCompare) {
      throw new MarkerSyntax(`"${op}" at column ${opCol} only compares PEP 440 versions, and ${variable} is not compared as one here; use == or !=`);
    }
  }
  // PEP 685: extra names compare normalized, so the stored literal is normalized once here.
  if (variable === 'extra') {
    if ('value' in left) left = { value: normalizeName(left.value) };
    if ('value' in right) right = { value: normalizeName(right.value) };
  }
  return { type: 'compare', left, op, right };
}
