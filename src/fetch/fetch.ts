/**
 * `vdeploy fetch`: download, for each target interpreter (targets.ts), the wheels its venvs would
 * install, with the user's own pip and index, and add them to the wheel repository through addWheels
 * (the same validation and release lines as add-wheel). Sdists are never added: pip runs with
 * --only-binary=:all:, and a requirement with no wheel for a target is reported for that target.
 * Runs targets one after the other (pip is busy enough on its own); never connects to a host.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalConnection } from '../remote/local-connection.js';
import type { Connection } from '../remote/connection.js';
import { addWheels, releasedWheels, type AddWheelEvent, type AddWheelResult } from '../wheels/repository.js';
import { normalizeName } from '../wheels/wheel-filename.js';
import { repositoryPins, targetInputs, writeConstraints } from './inputs.js';
import { checkLocalPip, type LocalPip } from './local-pip.js';
import type { IndexOptions } from './pip-command.js';
import type { PipLine } from './pip-output.js';
import { runPipForTarget, type MissingWheel } from './run-pip.js';
import type { FetchTarget } from './targets.js';

export type { FetchTarget } from './targets.js';
export type { MissingWheel } from './run-pip.js';

export interface FetchOptions {
  repoDir: string;
  targets: readonly FetchTarget[];
  /** -r files; with `specs`, used for every target instead of the venvs' requirements files. */
  requirementFiles?: readonly string[];
  specs?: readonly string[];
  index?: IndexOptions;
  /** Local Python whose pip runs; default `python3` on PATH. */
  python?: string;
  /** Newest versions the index offers, instead of holding projects at the repository's versions. */
  upgrade?: boolean;
  /** Resolve only (`pip install --dry-run --report`): nothing downloaded, the repository untouched. */
  dryRun?: boolean;
  signal?: AbortSignal;
  onEvent?: (event: FetchEvent) => void;
  /** Where pip runs; default this machine (tests pass their own). */
  local?: Connection;
}

export type FetchEvent =
  | { kind: 'pip'; pip: LocalPip }
  | { kind: 'target-start'; target: string; venvs: string[]; pinned: number }
  /** pip started on a requirement: one line per package. */
  | { kind: 'collecting'; target: string; requirement: string }
  | { kind: 'saved'; target: string; filename: string }
  | { kind: 'retry'; target: string; requirements: number }
  | { kind: 'target-done'; target: string; wheels: number; missing: number; error?: string }
  | { kind: 'warning'; target: string; message: string }
  | { kind: 'add-wheel'; event: AddWheelEvent };

export type WheelStatus = AddWheelResult['status'] | 'would-add';

export interface FetchedWheel {
  filename: string;
  name: string;
  version: string;
  status: WheelStatus;
  reason?: string;
  hint?: string;
  warnings?: string[];
}

export interface TargetOutcome {
  target: string;
  venvs: string[];
  pythonVersion: string;
  platform: string;
  /** Projects held at the repository's version (none with --upgrade). */
  pinned: number;
  wheels: FetchedWheel[];
  missing: Array<MissingWheel & { hint: string }>;
  error?: { message: string; hint: string };
  /** pip's warnings (an index it could not read, network retries: often why something is missing), as shown. */
  warnings: string[];
  /** Top-level requirements tried one by one after the whole set failed. */
  retried?: number;
}

/** One row of the final table: a project version, and per target what happened to its wheel. */
export interface PackageRow {
  name: string;
  version: string;
  /** target label → status of that target's wheel (absent: not needed there). */
  targets: Record<string, WheelStatus>;
}

export interface FetchResult {
  repo: string;
  pip: LocalPip;
  dryRun: boolean;
  upgrade: boolean;
  targets: TargetOutcome[];
  packages: PackageRow[];
  /** Any wheel refused, requirement missing or pip run failed: the CLI exits 1. */
  failed: boolean;
}

export async function fetchWheels(options: FetchOptions): Promise<FetchResult> {
  const local = options.local ?? new LocalConnection();
  const dryRun = options.dryRun ?? false;
  const pip = await checkLocalPip(local, options.python ?? 'python3', { dryRun, ...(options.signal ? { signal: options.signal } : {}) });
  options.onEvent?.({ kind: 'pip', pip });
  // Inputs are read (and refused) for every target before anything is downloaded.
  const inputs = await Promise.all(options.targets.map((t) => targetInputs(t, options.requirementFiles ?? [], options.specs ?? [])));
  const released = options.upgrade ? [] : await releasedWheels(options.repoDir);
  const targets: TargetOutcome[] = [];
  for (const [i, target] of options.targets.entries()) {
    targets.push(await fetchTarget(options, local, pip, target, inputs[i]!, repositoryPins(released, target, inputs[i]!.topLevel)));
  }
  const failed = targets.some((t) => t.error !== undefined || t.missing.length > 0 || t.wheels.some((w) => w.status === 'refused'));
  return { repo: options.repoDir, pip, dryRun, upgrade: options.upgrade ?? false, targets, packages: packageRows(targets), failed };
}

async function fetchTarget(
  options: FetchOptions,
  local: Connection,
  pip: LocalPip,
  target: FetchTarget,
  inputs: Awaited<ReturnType<typeof targetInputs>>,
  pins: string[],
): Promise<TargetOutcome> {
  const emit = options.onEvent ?? (() => {});
  const label = target.label;
  emit({ kind: 'target-start', target: label, venvs: target.venvs, pinned: pins.length });
  const dir = await mkdtemp(join(tmpdir(), 'vdeploy-fetch-'));
  const warnings: string[] = [];
  try {
    const constraints = await writeConstraints(dir, pins);
    const run = await runPipForTarget({
      local,
      python: pip.python,
      target,
      inputs,
      ...(constraints ? { constraints } : {}),
      index: options.index ?? {},
      ...(existsSync(options.repoDir) ? { repoDir: options.repoDir } : {}),
      dir,
      dryRun: options.dryRun ?? false,
      ...(options.signal ? { signal: options.signal } : {}),
      onLine: (line) => reportLine(line, label, warnings, emit),
      onRetry: (count) => emit({ kind: 'retry', target: label, requirements: count }),
    });
    const wheels = options.dryRun ? await wouldAdd(options.repoDir, run.reported) : await added(options, run.files);
    const outcome: TargetOutcome = {
      target: label,
      venvs: target.venvs,
      pythonVersion: target.pythonVersion,
      platform: target.platforms[0] ?? 'any',
      pinned: pins.length,
      wheels,
      missing: run.missing.map((m) => ({ ...m, hint: missingHint(m, label, pins, options.upgrade ?? false, warnings.length > 0) })),
      ...(run.error !== undefined ? { error: { message: run.error, hint: errorHint(run.error, pins.length > 0) } } : {}),
      warnings,
      ...(run.retried !== undefined ? { retried: run.retried } : {}),
    };
    emit({ kind: 'target-done', target: label, wheels: wheels.length, missing: outcome.missing.length, ...(run.error !== undefined ? { error: run.error } : {}) });
    return outcome;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** pip's progress as events; its warnings also kept (each once) for the outcome. */
function reportLine(line: PipLine, target: string, warnings: string[], emit: (event: FetchEvent) => void): void {
  if (line.kind === 'collecting') emit({ kind: 'collecting', target, requirement: line.requirement });
  if (line.kind === 'saved') emit({ kind: 'saved', target, filename: line.filename });
  const warning =
    line.kind === 'warning'
      ? `pip: ${line.message}`
      : line.kind === 'markers-not-set'
        ? `this pip's marker environment cannot be set (${line.why}): dependencies behind markers are chosen for the local Python, not ${target}`
        : undefined;
  if (warning !== undefined && !warnings.includes(warning)) {
    warnings.push(warning);
    emit({ kind: 'warning', target, message: warning });
  }
}

async function added(options: FetchOptions, files: readonly string[]): Promise<FetchedWheel[]> {
  if (files.length === 0) return [];
  const onEvent = options.onEvent;
  const results = await addWheels(options.repoDir, files, onEvent ? { onEvent: (event) => onEvent({ kind: 'add-wheel', event }) } : {});
  return results.map((r) => ({
    filename: r.filename ?? r.file.split('/').pop()!,
    name: r.name ?? '?',
    version: r.version ?? '?',
    status: r.status,
    ...(r.reason ? { reason: r.reason } : {}),
    ...(r.hint ? { hint: r.hint } : {}),
    ...(r.warnings.length ? { warnings: r.warnings } : {}),
  }));
}

/** --dry-run: what pip would download, and whether the repository already has each file. */
async function wouldAdd(repoDir: string, reported: Awaited<ReturnType<typeof runPipForTarget>>['reported']): Promise<FetchedWheel[]> {
  const have = new Set((await releasedWheels(repoDir)).map((w) => w.filename));
  return reported.map((w) => ({ filename: w.filename, name: w.name, version: w.version, status: have.has(w.filename) ? 'already-present' : 'would-add' }));
}

function errorHint(message: string, pinned: boolean): string {
  if (pinned && /conflicting dependencies|ResolutionImpossible/.test(message)) {
    return 'projects are held at the versions already in the repository, and those conflict with what is asked: `vdeploy fetch --upgrade` lets them move';
  }
  return "check the index options (--index-url, --find-links, PIP_* and pip.conf) and pip's message";
}

function missingHint(m: MissingWheel, target: string, pins: readonly string[], upgrade: boolean, pipWarned: boolean): string {
  // pip reports an index it could not read as "no version": say so before suggesting a build.
  if (pipWarned) return `pip found no wheel of ${m.name} for ${target}, and warned about the index (above): check --index-url/--find-links and PIP_* first; if the index is right, build it with \`vdeploy build\` or pin another version`;
  const pinned = !upgrade && pins.some((p) => normalizeName(p.split('==')[0]!) === normalizeName(m.name));
  const why = m.pythonMismatch ? ` (versions skipped for their Requires-Python: ${m.pythonMismatch})` : '';
  const held = pinned ? '; it is held at the version already in the repository: `vdeploy fetch --upgrade` looks for newer ones' : '';
  return `no wheel of ${m.name} for ${target}${why}: build one with \`vdeploy build\` from its source, or pin a version that has wheels for this Python${held}`;
}

function packageRows(targets: readonly TargetOutcome[]): PackageRow[] {
  const rows = new Map<string, PackageRow>();
  for (const t of targets) {
    for (const w of t.wheels) {
      if (w.status === 'refused' && w.name === '?') continue;
      const key = `${normalizeName(w.name)} ${w.version}`;
      const row = rows.get(key) ?? { name: w.name, version: w.version, targets: {} };
      row.targets[t.target] = w.status;
      rows.set(key, row);
    }
  }
  return [...rows.values()].sort((a, b) => normalizeName(a.name).localeCompare(normalizeName(b.name)) || a.version.localeCompare(b.version));
}
