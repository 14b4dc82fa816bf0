/**
 * One target's pip run(s): `pip download` into a temporary directory (or `pip install --dry-run
 * --report`), its output read live for progress and afterwards for what could not be found. pip
 * resolves all or nothing, so when some requirement has no wheel for the target, each top-level
 * requirement is tried on its own: everything that can be downloaded still is, and each failure is
 * pinned on the requirement that needs it.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Connection } from '../remote/connection.js';
import { downloadArgv, reportArgv, type IndexOptions } from './pip-command.js';
import { lineSplitter, parsePipLine, parsePipReport, type PipLine, type ReportedWheel } from './pip-output.js';
import { specOf, type TargetInputs } from './inputs.js';
import type { FetchTarget } from './targets.js';

/** A requirement pip found nothing for on this target. */
export interface MissingWheel {
  /** As pip printed it, e.g. `charset_normalizer<4,>=2`. */
  requirement: string;
  name: string;
  /** The package that needs it (absent: a top-level requirement). */
  neededBy?: string;
  /** Versions pip saw for it that were no use (none: it found no wheel at all). */
  versions: string[];
  /** Versions skipped for their Requires-Python, as pip lists them. */
  pythonMismatch?: string;
  /** The top-level requirement whose own run failed on it (set by the one-by-one retry). */
  topLevel?: string;
}

export interface PipRunOutcome {
  /** download: wheel files in `dir`; report: what pip would download. */
  files: string[];
  reported: ReportedWheel[];
  missing: MissingWheel[];
  /** pip failed for another reason: its ERROR lines (or last lines). */
  error?: string;
  /** Top-level requirements tried one by one after the whole set failed. */
  retried?: number;
}

export interface PipRunRequest {
  local: Connection;
  python: string;
  target: FetchTarget;
  inputs: TargetInputs;
  constraints?: string;
  index: IndexOptions;
  /** The repository, if it exists yet (pip warns about a --find-links directory that does not). */
  repoDir?: string;
  /** Downloads go here; --report and --target files too. */
  dir: string;
  dryRun: boolean;
  signal?: AbortSignal;
  onLine?: (line: PipLine) => void;
  /** Called before the one-by-one retry, with how many requirements it tries. */
  onRetry?: (count: number) => void;
}

export async function runPipForTarget(request: PipRunRequest): Promise<PipRunOutcome> {
  const whole = await runOnce(request, request.inputs.requirementFiles, request.inputs.specs, 'all');
  if (whole.missing.length === 0 || whole.error !== undefined || request.inputs.topLevel.length < 2) return await collect(request, whole);
  const topLevel = request.inputs.topLevel.map(specOf);
  request.onRetry?.(topLevel.length);
  const runs: RunResult[] = [];
  for (const [i, spec] of topLevel.entries()) {
    const run = await runOnce(request, [], [spec], String(i));
    runs.push({ ...run, missing: run.missing.map((m) => ({ ...m, topLevel: spec })) });
  }
  // A retry that fails otherwise (say, the index went away) says more than the first run's missing list.
  const error = runs.find((r) => r.error !== undefined)?.error;
  const outcome: RunResult = { missing: dedupeMissing(runs.flatMap((r) => r.missing)), reported: runs.flatMap((r) => r.reported), ...(error ? { error } : {}) };
  return { ...(await collect(request, outcome)), retried: topLevel.length };
}

interface RunResult {
  missing: MissingWheel[];
  reported: ReportedWheel[];
  error?: string;
}

async function runOnce(request: PipRunRequest, files: readonly string[], specs: readonly string[], tag: string): Promise<RunResult> {
  const { target, python } = request;
  const inputs = {
    requirementFiles: files,
    specs,
    index: request.index,
    ...(request.repoDir !== undefined ? { repoDir: request.repoDir } : {}),
    ...(request.constraints ? { constraints: request.constraints } : {}),
  };
  const reportFile = join(request.dir, `report-${tag}.json`);
  const argv = request.dryRun
    ? reportArgv(python, target.markers, target, inputs, join(request.dir, `target-${tag}`), reportFile)
    : downloadArgv(python, target.markers, target, inputs, join(request.dir, 'wheels'));
  const lines: PipLine[] = [];
  const errors: string[] = [];
  const onLine = (raw: string) => {
    const line = parsePipLine(raw);
    if (line?.kind === 'error') errors.push(line.message);
    if (line) {
      lines.push(line);
      request.onLine?.(line);
    }
  };
  const out = lineSplitter(onLine);
  const err = lineSplitter(onLine);
  const result = await request.local.exec(argv, {
    nothrow: true,
    onStdout: (chunk) => out(chunk.toString('utf8')),
    onStderr: (chunk) => err(chunk.toString('utf8')),
    ...(request.signal ? { signal: request.signal } : {}),
  });
  out();
  err();
  const missing = missingOf(lines);
  if (result.exitCode === 0) return { missing: [], reported: request.dryRun ? parsePipReport(await readFile(reportFile, 'utf8')) : [] };
  if (missing.length > 0) return { missing, reported: [] };
  const tail = errors.length > 0 ? errors.join(' | ') : result.stderr.trim().split('\n').slice(-3).join(' | ');
  return { missing: [], reported: [], error: `pip ${result.signal ? `was killed by ${result.signal}` : `exited with ${result.exitCode}`}${tail ? `: ${tail}` : ''}` };
}

function missingOf(lines: readonly PipLine[]): MissingWheel[] {
  const mismatch = lines.find((l) => l.kind === 'python-mismatch');
  return lines.flatMap((l) =>
    l.kind === 'no-version'
      ? [{ requirement: l.requirement, name: l.name, ...(l.neededBy ? { neededBy: l.neededBy } : {}), versions: l.versions, ...(mismatch?.kind === 'python-mismatch' ? { pythonMismatch: mismatch.detail } : {}) }]
      : [],
  );
}

function dedupeMissing(missing: readonly MissingWheel[]): MissingWheel[] {
  const seen = new Map<string, MissingWheel>();
  for (const m of missing) if (!seen.has(m.requirement)) seen.set(m.requirement, m);
  return [...seen.values()];
}

async function collect(request: PipRunRequest, outcome: RunResult): Promise<PipRunOutcome> {
  const dir = join(request.dir, 'wheels');
  const files = request.dryRun ? [] : ((await readdir(dir).catch(() => [])) as string[]).filter((f) => f.endsWith('.whl')).sort().map((f) => join(dir, f));
  const reported = [...new Map(outcome.reported.map((w) => [w.filename, w])).values()];
  return { files, reported, missing: outcome.missing, ...(outcome.error !== undefined ? { error: outcome.error } : {}) };
}
