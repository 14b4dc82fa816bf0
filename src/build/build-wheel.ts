/**
 * `buildWheel()`: the application's wheel from a git commit (or a directory as it is), built with
 * the local pip (PEP 517), made byte-reproducible, and added to the wheel repository with the commit
 * in its release line. Returns data and emits events; prints nothing.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VdeployError } from '../errors.js';
import { LocalConnection } from '../remote/local-connection.js';
import type { Connection } from '../remote/connection.js';
import { addWheels, type AddWheelEvent, type AddWheelResult } from '../wheels/repository.js';
import { dirState, prepareSource, sourceSpec, type BuildSource } from './git-source.js';
import { findLocalPython, type LocalPython } from './local-python.js';
import { normalizeWheel, type NormalizeResult } from './normalize-wheel.js';
import { pipWheel } from './pip-wheel.js';

export interface BuildOptions {
  /** DIR or git URL; undefined: the repository of the current directory, at --ref (HEAD). */
  source?: string;
  ref?: string;
  /** The local Python that runs pip (default python3 on PATH). */
  python?: string;
  /** false: --no-build-isolation. */
  isolation: boolean;
  /** The wheel repository to add the wheel to. */
  repo: string;
  /** add-wheel's --force: replace a wheel of the same filename with different bytes. */
  force?: boolean;
  signal?: AbortSignal;
  onEvent?: (event: BuildEvent) => void;
  /** Runs git and pip (tests may pass their own). */
  local?: Connection;
}

export type BuildEvent =
  /** The source is on disk: what is built. */
  | { kind: 'source'; source: BuildSource }
  /** pip starts. */
  | { kind: 'building'; python: LocalPython; isolation: boolean; sourceDateEpoch?: number }
  /** One line of pip's output. */
  | { kind: 'pip-output'; line: string }
  | { kind: 'add-wheel'; event: AddWheelEvent };

export interface BuildResult {
  source: BuildSource;
  python: LocalPython;
  isolation: boolean;
  /** SOURCE_DATE_EPOCH the build ran with (the commit's time). */
  sourceDateEpoch?: number;
  /** Whether the zip was normalised (normalize-wheel.ts), and why not. */
  normalize: NormalizeResult;
  /** add-wheel's result: added, already-present or replaced (a refusal is thrown). */
  added: AddWheelResult;
}

export async function buildWheel(options: BuildOptions): Promise<BuildResult> {
  const local = options.local ?? new LocalConnection();
  const emit = (e: BuildEvent) => options.onEvent?.(e);
  const spec = sourceSpec(options.source, options.ref, await dirState(options.source));
  // Python first: a missing pip is found before anything is cloned.
  const python = await findLocalPython(local, options.python, options.signal);
  const temp = await mkdtemp(join(tmpdir(), 'vdeploy-build-'));
  try {
    const prepared = await prepareSource(spec, { local, checkoutDir: join(temp, 'src'), ...(options.signal ? { signal: options.signal } : {}) });
    emit({ kind: 'source', source: prepared.source });
    const { sourceDateEpoch } = prepared;
    emit({ kind: 'building', python, isolation: options.isolation, ...(sourceDateEpoch === undefined ? {} : { sourceDateEpoch }) });
    const outDir = join(temp, 'out');
    const wheel = await pipWheel(local, {
      python,
      sourceDir: prepared.buildDir,
      outDir,
      isolation: options.isolation,
      ...(sourceDateEpoch === undefined ? {} : { sourceDateEpoch }),
      label: label(prepared.source),
      onLine: (line) => emit({ kind: 'pip-output', line }),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    const normalize = await normalizeWheel(wheel, sourceDateEpoch);
    const commit = prepared.source.commit;
    const [added] = await addWheels(options.repo, [wheel], {
      ...(commit ? { commit } : {}),
      ...(options.force ? { force: true } : {}),
      onEvent: (event) => emit({ kind: 'add-wheel', event }),
    });
    if (!added || added.status === 'refused')
      // The reason names the wheel by its path in the temporary directory, gone by the time it is read.
      throw new VdeployError(`built ${added?.filename ?? 'a wheel'} from ${label(prepared.source)}, but it was not added: ${(added?.reason ?? 'refused').replace(`${outDir}/`, '')}`, {
        // No filename: the wheel itself failed validation, which only the project's build can fix.
        hint: added?.filename && added.hint ? added.hint : "the build backend made a wheel that fails vdeploy's wheel checks (docs/cli.md, add-wheel): fix the project's build; nothing was added",
      });
    return { source: prepared.source, python, isolation: options.isolation, ...(sourceDateEpoch === undefined ? {} : { sourceDateEpoch }), normalize, added };
  } finally {
    await rm(temp, { recursive: true, force: true });
  }
}

/** `3b18e512dba7 (main) of /src/app`, `/src/app`: the source in messages. */
export function label(source: BuildSource): string {
  if (source.kind === 'dir') return source.location;
  const ref = source.ref && !source.commit?.startsWith(source.ref) ? ` (${source.ref})` : '';
  return `${source.commit!.slice(0, 12)}${ref} of ${source.location}`;
}
