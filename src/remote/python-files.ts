/**
 * The text of a file under src/remote/python/. Read from disk next to this module (tests run from
 * src/, the library from dist/, where the build copies the folder); the CLI bundle replaces this
 * module with one that has every file inlined (scripts/bundle-cli.mjs), so the CLI reads no file.
 */
import { readFileSync } from 'node:fs';

export function readPythonFile(name: string): string {
  return readFileSync(new URL(`./python/${name}`, import.meta.url), 'utf8');
}
