/** Small rendering helpers shared by the commands: the only place that writes to the terminal. */
import { stripVTControlCharacters } from 'node:util';

export interface Output {
  out(line?: string): void;
  err(line?: string): void;
  json(value: unknown): void;
  /** True when stdout is a terminal (listr2 and colours there, plain lines otherwise). */
  isTTY: boolean;
}

export function processOutput(): Output {
  return {
    out: (line = '') => process.stdout.write(`${line}\n`),
    err: (line = '') => process.stderr.write(`${line}\n`),
    json: (value) => process.stdout.write(`${JSON.stringify(value, null, 2)}\n`),
    isTTY: Boolean(process.stdout.isTTY),
  };
}

/** Left-aligned columns, two spaces apart, measured without colour codes. */
export function formatTable(rows: readonly (readonly string[])[]): string[] {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, stripVTControlCharacters(cell).length);
    });
  }
  return rows.map((row) =>
    row
      .map((cell, i) => (i === row.length - 1 ? cell : cell + ' '.repeat((widths[i] ?? 0) - stripVTControlCharacters(cell).length)))
      .join('  ')
      .trimEnd(),
  );
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}
