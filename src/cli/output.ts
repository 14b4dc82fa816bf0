/** Small rendering helpers shared by the commands: the only place that writes to the terminal. */
import { stripVTControlCharacters } from 'node:util';
import type { ColourChoice } from './colour.js';

export interface Output {
  out(line?: string): void;
  err(line?: string): void;
  json(value: unknown): void;
  /** True when stdout is a terminal (listr2 there, plain lines otherwise). */
  isTTY: boolean;
  /** Whether each stream shows colour (colour.ts); absent: neither does. */
  colour?: ColourChoice;
}

export function processOutput(colour: ColourChoice = { out: false, err: false }): Output {
  // Lines arrive coloured whenever either stream wants colour (one chalk for both): the stream that
  // must not show it gets them stripped here, the one place that writes.
  const line = (text: string, coloured: boolean) => `${coloured ? text : stripVTControlCharacters(text)}\n`;
  return {
    out: (text = '') => process.stdout.write(line(text, colour.out)),
    err: (text = '') => process.stderr.write(line(text, colour.err)),
    json: (value) => process.stdout.write(`${JSON.stringify(value, null, 2)}\n`),
    isTTY: Boolean(process.stdout.isTTY),
    colour,
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
