/**
 * pip-style requirements files, limited to what vdeploy can honour: requirements by name (PEP 508),
 * comments, `\` continuations, `-r` includes and `--hash` pins (checked by the resolver against the
 * released wheel, as pip checks what it downloads). Everything else pip
 * allows — editables, URLs, local paths, index options, constraints — is refused with the file:line
 * and the reason, because vdeploy installs only wheels from its own repository.
 */
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { ConfigError } from '../errors.js';
import { REQUIREMENT_HINT, URL_HINT, tryParseRequirement, type Requirement } from './pep508.js';

export type HashAlgorithm = 'sha256' | 'sha384' | 'sha512';

/** One `--hash=algorithm:digest` option; several on a line are alternatives (any one may match). */
export interface RequirementHash {
  algorithm: HashAlgorithm;
  /** Lower-case hex. */
  digest: string;
}

export interface RequirementLine {
  requirement: Requirement;
  /** The line's --hash options; absent when it has none. */
  hashes?: RequirementHash[];
  /** The file as named: the path given to readRequirementsFile, or an include joined to its includer's directory. */
  file: string;
  /** 1-based; for a continued line, the line it starts on. */
  line: number;
}

interface Place {
  file: string;
  line: number;
}

interface ReadState {
  out: RequirementLine[];
  byKey: Map<string, RequirementLine & { text: string }>;
  /** Files already read completely: a second `-r` of one (a diamond, not a cycle) adds nothing. */
  done: Set<string>;
}

/** Reads a requirements file and its includes, in order; ConfigError for anything vdeploy can't honour. */
export async function readRequirementsFile(path: string): Promise<RequirementLine[]> {
  const state: ReadState = { out: [], byKey: new Map(), done: new Set() };
  await readInto(path, [], undefined, state);
  return state.out;
}

async function readInto(file: string, stack: Array<{ abs: string; file: string }>, from: Place | undefined, state: ReadState): Promise<void> {
  const abs = resolve(file);
  if (state.done.has(abs)) return;
  const text = await readText(file, from);
  const here = [...stack, { abs, file }];
  for (const { line, text: logical } of logicalLines(text)) {
    const entry = parseLine(logical, { file, line });
    if (!entry) continue;
    if (entry.kind === 'include') {
      const target = isAbsolute(entry.path) ? entry.path : join(dirname(file), entry.path);
      const cycleStart = here.findIndex((f) => f.abs === resolve(target));
      if (cycleStart >= 0) {
        const chain = [...here.slice(cycleStart).map((f) => f.file), target].join(' → ');
        throw new ConfigError(`${file}:${line}: "${logical}" makes an include cycle: ${chain}`, {
          hint: 'remove one of these -r lines; each file should be included once',
        });
      }
      await readInto(target, here, { file, line }, state);
      continue;
    }
    const { requirement } = entry;
    const previous = state.byKey.get(requirement.key);
    if (previous) {
      throw new ConfigError(
        `${file}:${line}: "${logical}" requires ${requirement.name} again; it is already required by "${previous.text}" at ${previous.file}:${previous.line}`,
        { hint: 'keep one line per package: merge the version specifiers into one requirement' },
      );
    }
    const result: RequirementLine = { requirement, file, line, ...(entry.hashes.length > 0 ? { hashes: entry.hashes } : {}) };
    state.byKey.set(requirement.key, { ...result, text: logical });
    state.out.push(result);
  }
  state.done.add(abs);
}

async function readText(file: string, from: Place | undefined): Promise<string> {
  const includedFrom = from ? ` (included from ${from.file}:${from.line})` : '';
  const hint = from
    ? 'fix the -r path: it is relative to the file that includes it'
    : "create the file, or point the deployfile's `requirements` at the right one";
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ConfigError(`requirements file not found: ${file}${includedFrom}`, { hint, cause: error });
    if (code === 'EISDIR') throw new ConfigError(`requirements file is a directory: ${file}${includedFrom}`, { hint, cause: error });
    throw new ConfigError(`can't read requirements file ${file}${includedFrom}: ${(error as Error).message}`, { hint, cause: error });
  }
  return text.startsWith('\uFEFF') ? text.slice(1) : text;
}

/** pip's COMMENT_RE: `#` at the start or after white space (so `pkg#frag` is not a comment). */
const COMMENT = /(^|\s+)#.*$/;

/**
 * Joins `\` continuations (numbered by their first line) and strips comments, as pip does: a line
 * that is a comment ends a continuation even if it ends in `\`.
 */
export function logicalLines(text: string): Array<{ line: number; text: string }> {
  const lines = text.split(/\r\n|\r|\n/);
  const result: Array<{ line: number; text: string }> = [];
  let pending: { line: number; parts: string[] } | undefined;
  const emit = (line: number, raw: string) => {
    const stripped = raw.replace(COMMENT, '').trim();
    if (stripped !== '') result.push({ line, text: stripped });
  };
  lines.forEach((raw, index) => {
    const isComment = COMMENT.test(raw);
    if (raw.endsWith('\\') && !isComment) {
      pending ??= { line: index + 1, parts: [] };
      pending.parts.push(raw.slice(0, -1));
      return;
    }
    // A comment joined into a continuation must stay a comment once joined.
    const part = isComment ? ` ${raw}` : raw;
    if (pending) {
      emit(pending.line, pending.parts.join('') + part);
      pending = undefined;
    } else {
      emit(index + 1, part);
    }
  });
  if (pending) emit(pending.line, pending.parts.join(''));
  return result;
}

type LineEntry = { kind: 'requirement'; requirement: Requirement; hashes: RequirementHash[] } | { kind: 'include'; path: string };

const EDITABLE = "editable installs can't be deployed from wheels";
const INDEX = 'vdeploy installs only from its own wheel repository, not from package indexes or find-links locations';
const INDEX_HINT = 'remove the line; add the wheels you need with `vdeploy add-wheel`';

/** Why each pip option is refused, by every spelling pip accepts. */
const REFUSED_OPTIONS: Record<string, { reason: string; hint: string }> = {};
for (const [names, reason, hint] of [
  [['-e', '--editable'], EDITABLE, 'build a wheel of the project (python -m build --wheel), add it with `vdeploy add-wheel` and require it by name'],
  [['-i', '--index-url', '--extra-index-url', '--no-index', '-f', '--find-links'], INDEX, INDEX_HINT],
  [['-c', '--constraint'], 'constraints files are not supported', 'pin the versions in the requirements file itself (name==version)'],
  [['--pre'], "pre-releases are chosen per requirement, not for the whole file", 'name the pre-release in the requirement, e.g. name>=2.0rc1'],
  [['--global-option', '--install-option', '--config-settings', '-C'], "build options don't apply to prebuilt wheels", 'remove the option; build the wheel with the options you need and add it with `vdeploy add-wheel`'],
] as const) {
  for (const name of names) REFUSED_OPTIONS[name] = { reason, hint };
}
const OTHER_OPTION_HINT = 'remove the option: vdeploy runs pip itself, with its own options';
const LOCAL_HINT = 'build a wheel, add it with `vdeploy add-wheel`, and require it by name';

const URL_SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:(\/\/|[^\s]*\/)/;
const ARCHIVE = /\.(whl|zip|tar\.gz|tgz|tar\.bz2|tbz|tar\.xz|txz|tar)$/i;
const ENV_VAR = /\$\{[A-Z0-9_]+\}/;
const HASH = /^(sha256|sha384|sha512):[0-9a-fA-F]+$/;
/** Hex digits in each digest: a shorter one could never match, so it is a typo. */
const DIGEST_LENGTH: Record<string, number> = { sha256: 64, sha384: 96, sha512: 128 };

/** One logical line → a requirement, an include, or a ConfigError naming file:line. */
function parseLine(text: string, at: Place): LineEntry | undefined {
  const refuse = (reason: string, hint: string): never => {
    throw new ConfigError(`${at.file}:${at.line}: "${text}" is not supported: ${reason}`, { hint });
  };
  if (ENV_VAR.test(text)) {
    refuse('environment variables (${NAME}) are not expanded', 'write the value into the file');
  }

  // pip's split: the requirement is every space-separated token before the first one starting "-".
  const tokens = text.split(' ');
  const firstOption = tokens.findIndex((t) => t.startsWith('-'));
  const args = (firstOption < 0 ? tokens : tokens.slice(0, firstOption)).join(' ').trim();
  const options = splitOptions(firstOption < 0 ? '' : tokens.slice(firstOption).join(' '));

  if (args === '') return parseOptionLine(options, refuse);

  // A malformed --hash is an error: a typo there would leave the user believing something is verified.
  const hashes: RequirementHash[] = [];
  for (let i = 0; i < options.length; i++) {
    const option = options[i]!;
    let value: string | undefined;
    if (option === '--hash') value = options[++i];
    else if (option.startsWith('--hash=')) value = option.slice('--hash='.length);
    else refuse(refusalFor(option).reason, refusalFor(option).hint);
    if (value === undefined || !HASH.test(value) || value.split(':')[1]!.length !== DIGEST_LENGTH[value.split(':')[0]!]) {
      throw new ConfigError(`${at.file}:${at.line}: "${text}" has a malformed --hash`, {
        hint: 'write it as --hash=sha256:<hex digest> (sha384 and sha512 work too)',
      });
    }
    const [algorithm, digest] = value.split(':') as [HashAlgorithm, string];
    hashes.push({ algorithm, digest: digest.toLowerCase() });
  }

  const head = args.split(';', 1)[0]!.trim();
  const parsed = tryParseRequirement(args);
  if (URL_SCHEME.test(head) || (!parsed.ok && parsed.kind === 'url')) {
    refuse("direct URLs can't be deployed: vdeploy installs wheels from its own repository", URL_HINT);
  }
  // `pkg-1.0-py3-none-any.whl` is also a well-formed name, so archives are caught before success.
  if (ARCHIVE.test(head) || (!parsed.ok && /^[.~]|[/\\]/.test(head))) refuse("local paths and archives can't be deployed", LOCAL_HINT);
  if (parsed.ok) return { kind: 'requirement', requirement: parsed.requirement, hashes };
  throw new ConfigError(`${at.file}:${at.line}: "${text}" is not a valid requirement: ${parsed.reason}`, { hint: REQUIREMENT_HINT });
}

/** A line that is only options: `-r file` includes, everything else is refused. */
function parseOptionLine(options: string[], refuse: (reason: string, hint: string) => never): LineEntry {
  const [first = '', ...rest] = options;
  let path: string | undefined;
  if (first === '-r' || first === '--requirement') path = rest.shift();
  else if (first.startsWith('--requirement=')) path = first.slice('--requirement='.length);
  else if (/^-r./.test(first)) path = first.slice(2);
  else if (first === '--hash' || first.startsWith('--hash=')) refuse('--hash must follow a requirement on the same line', 'put it after the requirement it checks');
  else refuse(refusalFor(first).reason, refusalFor(first).hint);
  if (!path) return refuse('-r needs a file name', 'write it as -r other-requirements.txt');
  if (rest.length > 0) refuse(`unexpected "${rest.join(' ')}" after the included file`, 'put one -r per line');
  return { kind: 'include', path };
}

function refusalFor(option: string): { reason: string; hint: string } {
  const name = option.split('=', 1)[0]!;
  // Short options may carry their value attached (`-e./app`, `-ihttps://…`).
  const known = REFUSED_OPTIONS[name] ?? (name.startsWith('--') ? undefined : REFUSED_OPTIONS[name.slice(0, 2)]);
  return known ?? { reason: `the pip option ${name} is not supported in requirements files`, hint: OTHER_OPTION_HINT };
}

/** Splits options on white space, keeping quoted values ('my file.txt') together, as shlex would. */
function splitOptions(text: string): string[] {
  const parts: string[] = [];
  for (const m of text.matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)) parts.push(m[1] ?? m[2] ?? m[3] ?? '');
  return parts;
}
