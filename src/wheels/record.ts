/**
 * A wheel's `*.dist-info/RECORD`: CSV rows `path,algorithm=urlsafe-b64-nopad-digest,size` written by
 * Python's csv module (so fields may be quoted, and lines may end in \r\n).
 */
import { VdeployError } from '../errors.js';

export interface RecordRow {
  path: string;
  /** Absent for RECORD itself, signatures, and files installers add later (e.g. .pyc). */
  hash?: { algorithm: string; digest: string };
  size?: number;
  lineNumber: number;
}

/** Digests strong enough to trust (PEP 376/427 reject md5 and sha1). */
export const ACCEPTED_HASH_ALGORITHMS: readonly string[] = ['sha256', 'sha384', 'sha512'];

const HINT = 'RECORD is written by the build tool; rebuild the wheel with pip wheel or python -m build.';

/** Parses RECORD text; `source` names the file in error messages. */
export function parseRecord(text: string, source: string): RecordRow[] {
  const rows: RecordRow[] = [];
  for (const { fields, lineNumber } of parseCsv(text, source)) {
    if (fields.length === 1 && fields[0] === '') continue; // blank line
    const [path, hashField = '', sizeField = ''] = fields;
    if (!path || fields.length > 3) throw malformedRow(source, lineNumber);
    const row: RecordRow = { path, lineNumber };
    if (hashField !== '') {
      const eq = hashField.indexOf('=');
      if (eq <= 0 || eq === hashField.length - 1) throw malformedRow(source, lineNumber);
      row.hash = { algorithm: hashField.slice(0, eq).toLowerCase(), digest: hashField.slice(eq + 1) };
    }
    if (sizeField !== '') {
      if (!/^\d+$/.test(sizeField)) throw malformedRow(source, lineNumber);
      row.size = Number(sizeField);
    }
    rows.push(row);
  }
  return rows;
}

/** Python csv default dialect: ',' separated, '"' quoted with '""' escapes; quoted fields may span lines. */
function parseCsv(text: string, source: string): Array<{ fields: string[]; lineNumber: number }> {
  const records: Array<{ fields: string[]; lineNumber: number }> = [];
  let fields: string[] = [];
  let field = '';
  let quoted = false;
  let line = 1;
  let recordLine = 1;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') {
        quoted = false;
      } else {
        if (c === '\n') line++;
        field += c;
      }
    } else if (c === '"' && field === '') {
      quoted = true;
    } else if (c === ',') {
      fields.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      fields.push(field);
      records.push({ fields, lineNumber: recordLine });
      fields = [];
      field = '';
      recordLine = ++line;
    } else {
      field += c;
    }
  }
  if (quoted) throw malformedRow(source, recordLine);
  if (field !== '' || fields.length > 0) records.push({ fields: [...fields, field], lineNumber: recordLine });
  return records;
}

function malformedRow(source: string, lineNumber: number): VdeployError {
  return new VdeployError(`${source}:${lineNumber}: malformed RECORD row`, { hint: HINT });
}
