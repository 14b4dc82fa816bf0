/**
 * Core metadata (the wheel's `*.dist-info/METADATA`): RFC 822 style headers, then a blank line, then the
 * long description, which we never need and don't parse.
 */
import { VdeployError } from '../errors.js';

export interface WheelMetadata {
  metadataVersion?: string;
  name: string;
  version: string;
  requiresPython?: string;
  /** PEP 508 requirement strings, markers included, in file order. */
  requiresDist: string[];
  providesExtra: string[];
  /** Every header, keyed by lowercased field name; repeated fields keep every value in order. */
  headers: Record<string, string[]>;
}

/** Parses METADATA text; `source` names the file in error messages (e.g. `dist/app.whl: app-1.0.dist-info/METADATA`). */
export function parseMetadata(text: string, source: string): WheelMetadata {
  const headers: Record<string, string[]> = {};
  let last: { values: string[]; index: number } | undefined;
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  for (const [i, line] of lines.entries()) {
    if (line === '') break; // the body (description) starts here
    if (/^[ \t]/.test(line)) {
      // A folded continuation of the previous header.
      if (!last) throw malformed(source, i + 1, line);
      last.values[last.index] += `\n${line.trim()}`;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) throw malformed(source, i + 1, line);
    const key = line.slice(0, colon).trim().toLowerCase();
    const values = (headers[key] ??= []);
    values.push(line.slice(colon + 1).trim());
    last = { values, index: values.length - 1 };
  }
  // Folding carries no meaning in these structured fields; keep them one line each.
  const all = (key: string) => (headers[key] ?? []).map((v) => v.replace(/\s*\n\s*/g, ' ').trim());
  const first = (key: string) => all(key)[0];
  const name = first('name');
  const version = first('version');
  if (!name) throw missing(source, 'Name');
  if (!version) throw missing(source, 'Version');
  const metadataVersion = first('metadata-version');
  const requiresPython = first('requires-python');
  return {
    ...(metadataVersion ? { metadataVersion } : {}),
    name,
    version,
    ...(requiresPython ? { requiresPython } : {}),
    requiresDist: all('requires-dist').filter((r) => r !== ''),
    providesExtra: all('provides-extra').filter((e) => e !== ''),
    headers,
  };
}

function malformed(source: string, lineNumber: number, line: string): VdeployError {
  return new VdeployError(`${source}:${lineNumber}: malformed metadata header ${JSON.stringify(line.slice(0, 80))}`, {
    hint: 'METADATA must be "Field: value" lines, then a blank line; rebuild the wheel with a standard build backend.',
  });
}

function missing(source: string, field: string): VdeployError {
  return new VdeployError(`${source}: no ${field} field`, {
    hint: 'Every wheel needs Name and Version in its METADATA; rebuild the wheel with a standard build backend.',
  });
}
