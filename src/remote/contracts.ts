/**
 * Reading what a remote script answers: the JSON must parse and pass the script's zod schema (each
 * script's contract sits beside its caller: probe-contract.ts, apply-contract.ts,
 * relocate-contract.ts), or the caller gets one ProtocolError naming the host and the script — never
 * a cast. test/fixtures/contracts/ holds example answers that both the TypeScript and the Python
 * tests check, and schemas.json the JSON Schema of every contract, generated from these zod schemas,
 * that the Python tests check their real answers against.
 */
import * as z from 'zod';
import { ProtocolError } from '../errors.js';
import { PROTOCOL } from './remote-python.js';

/** Every answer's protocol version. */
export const protocolVersion = z.literal(PROTOCOL);

export interface AnswerSource {
  /** Who answered, e.g. "root@127.0.0.2:22" or "web1". */
  host: string;
  /** Which script, e.g. "probe". */
  script: string;
}

/** One line of JSON checked against `schema`; a ProtocolError otherwise. */
export function readAnswerLine<T>(schema: z.ZodType<T>, line: string, from: AnswerSource): T {
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch {
    throw new ProtocolError(from.host, from.script, `not JSON: ${JSON.stringify(line.slice(0, 80))}`);
  }
  return checkAnswer(schema, json, from);
}

/** The last non-empty line of stdout (a login shell's rc files may print before the script does), checked. */
export function readAnswer<T>(schema: z.ZodType<T>, stdout: string, from: AnswerSource): T {
  const line = stdout.split('\n').map((l) => l.trim()).filter((l) => l.length > 0).at(-1);
  if (line === undefined) throw new ProtocolError(from.host, from.script, 'it printed nothing');
  return readAnswerLine(schema, line, from);
}

/** A parsed value checked against `schema`; the first problem names its path. */
export function checkAnswer<T>(schema: z.ZodType<T>, value: unknown, from: AnswerSource, at: Array<string | number> = []): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const path = [...at, ...issue.path.map(String)];
  throw new ProtocolError(from.host, from.script, `${path.length > 0 ? `${path.join('.')}: ` : ''}${issue.message}`);
}
