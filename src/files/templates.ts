/**
 * Config file templates (docs/files.md): Nunjucks, which reads Jinja syntax, with autoescape off (these
 * are config files, not HTML) and throwOnUndefined on (a misspelt variable must fail the plan, not put
 * an empty string into a live nginx.conf). No FileSystemLoader: a template may `{% include %}` only
 * regular files under its entry's `src` (a single-file entry: the directory of that file), read fresh
 * each time (no cache, no watcher). Nunjucks is loaded on the first render (~20 ms): most deployfiles
 * have no templates, and most commands render none.
 */
import { lstatSync, readFileSync, realpathSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import type nunjucks from 'nunjucks';

export interface TemplateSource {
  /** Absolute path of the template file. */
  file: string;
  /** Directory `{% include %}` may read from (the entry's src tree). */
  root: string;
  /** How a path is named in messages (relative to the deployfile's directory); default: as is. */
  show?: (path: string) => string;
}

/** A template that could not be rendered: where (the template, or a file it includes) and why, on one line. */
export class TemplateError extends Error {
  constructor(
    /** Absolute path of the template the error is in (an included file when the error is there). */
    readonly file: string,
    /** 1-based line, when nunjucks knows it. */
    readonly line: number | undefined,
    message: string,
    /** The undefined expression (`host.nme`), for an undefined variable. */
    readonly undefinedName?: string,
  ) {
    super(message);
    this.name = 'TemplateError';
  }
}

/** Decodes a template's bytes, refusing what is not UTF-8 text (a binary file named *.j2?). */
export function templateText(file: string, bytes: Buffer): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new TemplateError(file, undefined, 'is not UTF-8 text, so it cannot be a template');
  }
}

/** Renders `text` (the content of source.file) with `context`; a failure is a TemplateError. */
export async function renderTemplate(source: TemplateSource, text: string, context: Record<string, unknown>): Promise<string> {
  const { default: nunjucks } = await import('nunjucks');
  const loader = new TreeLoader(source.root, source.show ?? ((p) => p));
  loader.texts.set(source.file, text);
  const env = new nunjucks.Environment(loader, { autoescape: false, throwOnUndefined: true });
  try {
    return new nunjucks.Template(text, env, source.file, true).render(context);
  } catch (err) {
    throw toTemplateError(err, source.file, loader.texts);
  }
}

/** The sync loader behind `{% include %}`, `{% import %}` and `{% extends %}`: files under `root` only. */
class TreeLoader implements nunjucks.ILoader {
  /** Every template text read, by absolute path: an error's line is looked up in them. */
  readonly texts = new Map<string, string>();
  private readonly realRoot: string;

  constructor(
    private readonly root: string,
    private readonly show: (path: string) => string,
  ) {
    this.realRoot = realpathSync(root);
  }

  // nunjucks asks these two for names starting with ./ or ../ (relative to the including template).
  isRelative(name: string): boolean {
    return name.startsWith('./') || name.startsWith('../');
  }

  resolve(from: string, to: string): string {
    return resolve(dirname(from), to);
  }

  getSource(name: string): nunjucks.LoaderSource {
    const path = isAbsolute(name) ? name : resolve(this.root, name);
    const refusal = this.refusal(path);
    if (refusal !== undefined) throw new Error(`cannot include ${this.show(path)}: ${refusal}`);
    const text = templateText(path, readFileSync(path));
    this.texts.set(path, text);
    return { src: text, path, noCache: true };
  }

  /** Why `path` may not be included: outside root, missing, not a regular file, or reached through a symlink below root (one could lead anywhere). */
  private refusal(path: string): string | undefined {
    const rel = relative(this.root, path);
    if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) return `only regular files under ${this.show(this.root)} can be included`;
    try {
      if (!lstatSync(path).isFile() || realpathSync(path) !== join(this.realRoot, rel)) return 'not a regular file, or reached through a symlink';
    } catch {
      return 'no such file';
    }
    return undefined;
  }
}

// nunjucks puts the place into the message: `(file) [Line 3, Column 7]\n  message`, nested once per include.
const PLACE = /\(([^()\n]+)\)(?: \[Line (\d+), Column (\d+)\])?/g;

function toTemplateError(err: unknown, file: string, texts: ReadonlyMap<string, string>): TemplateError {
  if (err instanceof TemplateError) return err;
  const raw = err instanceof Error ? err.message : String(err);
  // The innermost place is the last one named; its message is the last line.
  let where: { file: string; line?: number; column?: number } = { file };
  for (const m of raw.matchAll(PLACE)) {
    if (m[1] !== undefined && isAbsolute(m[1])) where = { file: m[1], ...(m[2] ? { line: Number(m[2]), column: Number(m[3]) } : {}) };
  }
  const lines = raw.split('\n').map((l) => l.trim()).filter((l) => l.length > 0 && !/^\([^()]+\)( \[Line \d+, Column \d+\])?$/.test(l));
  let message = (lines.at(-1) ?? raw).replace(/^(Template render error: )?(\([^()]+\)( \[Line \d+, Column \d+\])?\s*)?/, '').replace(/^(Error|TypeError): /, '');
  if (/attempted to output null or undefined value/.test(message)) {
    const name = where.line !== undefined ? outputExpression(texts.get(where.file), where.line, where.column ?? 1) : undefined;
    if (name !== undefined) return new TemplateError(where.file, where.line, `undefined variable \`${name}\``, name);
    message = 'undefined variable (or null value) in {{ }}';
  }
  return new TemplateError(where.file, where.line, message);
}

/** The expression of the `{{ ... }}` nunjucks points at (it gives the position of its `{{`). */
function outputExpression(text: string | undefined, line: number, column: number): string | undefined {
  const row = text?.split('\n')[line - 1];
  if (row === undefined) return undefined;
  const at = /^\{\{-?\s*([\s\S]*?)\s*-?\}\}/.exec(row.slice(column - 1)) ?? /\{\{-?\s*([\s\S]*?)\s*-?\}\}/.exec(row);
  return at?.[1] || undefined;
}
