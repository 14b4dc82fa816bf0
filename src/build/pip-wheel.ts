/**
 * Running `pip wheel --no-deps` (PEP 517) on a source directory, and turning a failure into one line:
 * the backend's own last words, not pip's boilerplate around them.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { VdeployError } from '../errors.js';
import type { Connection } from '../remote/connection.js';
import type { LocalPython } from './local-python.js';

export interface PipWheelOptions {
  python: LocalPython;
  sourceDir: string;
  outDir: string;
  /** false: --no-build-isolation (the backend installed for `python` builds it, no index needed). */
  isolation: boolean;
  sourceDateEpoch?: number;
  /** What to call the source in an error. */
  label: string;
  onLine?: (line: string) => void;
  signal?: AbortSignal;
}

/** Builds the wheel and returns its path (pip must make exactly one). */
export async function pipWheel(local: Connection, o: PipWheelOptions): Promise<string> {
  const argv = [o.python.command, '-m', 'pip', 'wheel', '--no-deps', '--no-input', '--disable-pip-version-check', '--wheel-dir', o.outDir];
  if (!o.isolation) argv.push('--no-build-isolation');
  argv.push(o.sourceDir);
  const result = await local.exec(argv, {
    nothrow: true,
    ...(o.sourceDateEpoch === undefined ? {} : { env: { SOURCE_DATE_EPOCH: String(o.sourceDateEpoch) } }),
    ...(o.onLine ? { onStdout: lineSplitter(o.onLine), onStderr: lineSplitter(o.onLine) } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
  });
  if (result.exitCode !== 0) {
    const why = pipFailureSummary(`${result.stdout}\n${result.stderr}`) || `pip exited with ${result.exitCode ?? result.signal}`;
    throw new VdeployError(`building ${o.label} failed: ${why}`, {
      hint: o.isolation
        ? "build isolation installs the build backend (pyproject's build-system.requires) from your pip index: check that it is reachable, or build offline with --no-build-isolation; --verbose shows pip's whole output"
        : `with --no-build-isolation the build backend must be installed for ${o.python.command} (e.g. setuptools and wheel); --verbose shows pip's whole output`,
    });
  }
  const wheels = (await readdir(o.outDir)).filter((f) => f.endsWith('.whl'));
  if (wheels.length !== 1)
    throw new VdeployError(`building ${o.label} gave ${wheels.length} wheels (${wheels.join(', ') || 'none'}), expected one`, { hint: "--verbose shows pip's whole output" });
  return join(o.outDir, wheels[0]!);
}

/** pip's framing around a failed build step, which says nothing about the failure itself. */
const BOILERPLATE = [
  /^note: This (error originates from a subprocess|is an issue with the package)/,
  /^hint: See above/,
  /^error: (subprocess-exited-with-error|metadata-generation-failed)$/,
  /^[×╰│]/,
  /^\[end of output\]$/,
  /^ERROR: Failed building wheel for /,
  /^Failed to build /,
  /^ERROR: Failed to build installable wheels/,
];

/**
 * The last lines worth reading of pip's output: those of the failed subprocess's output block
 * (`╰─> [N lines of output] … [end of output]`) when there is one, else pip's own last lines.
 */
export function pipFailureSummary(output: string, n = 3): string {
  const lines = output.split('\n').map((l) => l.trim());
  const start = lines.findIndex((l) => /^╰─> \[\d+ lines? of output\]$/.test(l));
  const end = start === -1 ? -1 : lines.indexOf('[end of output]', start);
  const block = start !== -1 && end !== -1 ? lines.slice(start + 1, end) : lines;
  const kept = block.filter((l) => l !== '' && !BOILERPLATE.some((re) => re.test(l)));
  // A Python traceback ends in the one line that says what went wrong; the frames before it do not.
  if (kept.some((l) => l.startsWith('Traceback (most recent call last)'))) return kept.slice(-1).join('');
  return kept.slice(-n).join(' | ');
}

function lineSplitter(onLine: (line: string) => void): (chunk: Buffer) => void {
  let partial = '';
  return (chunk) => {
    const parts = (partial + chunk.toString('utf8')).split('\n');
    partial = parts.pop()!;
    for (const line of parts) onLine(line.trimEnd());
  };
}
