/**
 * Finds, loads (with jiti, so a `.ts` deployfile needs no build step) and validates the deployfile.
 * Every failure is a ConfigError that names the file, and the field path or file:line:col.
 *
 * The deployfile is code, and runs in a worker thread (deployfile-worker.ts) under a time limit: only
 * its default export comes back, as data. So it can't exit vdeploy (now or later, from a timer), and
 * an endless loop in it is stopped by the time limit or Ctrl-C instead of hanging vdeploy.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import type { z } from 'zod';
import { ConfigError, InterruptedError } from '../errors.js';
import { runDeployfileWorker, type WorkerOutcome } from './deployfile-worker.js';
import { resolveConfig, type ResolvedConfig } from './resolve-config.js';
import { configSchema } from './schema.js';

export const DEPLOYFILE_NAMES = ['deployfile.ts', 'deployfile.mts', 'deployfile.js', 'deployfile.mjs'];

/** The nearest deployfile in `startDir` or any parent, as git and vite look for their config. */
export function findDeployfile(startDir: string): string | undefined {
  let dir = resolve(startDir);
  for (;;) {
    for (const name of DEPLOYFILE_NAMES) {
      const candidate = join(dir, name);
      if (existsSync(candidate)) return candidate;
    }
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

export interface LoadDeployfileOptions {
  /** Explicit path (`--deployfile`); otherwise discovered from `cwd` upward. */
  path?: string;
  cwd?: string;
  /** How long the deployfile may take to load (default 10 s): it should only build an object. */
  timeoutMs?: number;
  /** Aborting (Ctrl-C) stops the load at once with an InterruptedError. */
  signal?: AbortSignal;
}

export const DEFAULT_DEPLOYFILE_TIMEOUT_MS = 10_000;

export async function loadDeployfile(options: LoadDeployfileOptions = {}): Promise<ResolvedConfig> {
  const cwd = options.cwd ?? process.cwd();
  const file = options.path ? resolve(cwd, options.path) : findDeployfile(cwd);
  if (!file) {
    throw new ConfigError(`no deployfile (${DEPLOYFILE_NAMES.join(', ')}) in ${cwd} or any parent directory`, {
      hint: 'run `vdeploy init` to create one, or pass --deployfile PATH',
    });
  }
  if (!existsSync(file)) {
    throw new ConfigError(`deployfile ${file} does not exist`, { hint: 'check the --deployfile path' });
  }
  const exported = await importDeployfile(file, options);
  return parseConfig(exported, file);
}

/** Validates a config object (a deployfile's default export) and resolves it. */
export function parseConfig(value: unknown, file: string | undefined, dir?: string): ResolvedConfig {
  const result = configSchema.safeParse(value);
  if (!result.success) {
    const where = file ?? 'config';
    const problems = result.error.issues.map(formatIssue);
    throw new ConfigError(`${where}: ${problems.join('; ')}`, {
      hint: 'fix the deployfile; docs/deployfile.md describes every field',
    });
  }
  return resolveConfig(result.data, file, dir, value);
}

async function importDeployfile(file: string, options: LoadDeployfileOptions): Promise<unknown> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_DEPLOYFILE_TIMEOUT_MS;
  const outcome = await runDeployfileWorker({
    file,
    // The worker requires jiti's CommonJS build by path (from here: the bundle or src/config alike).
    jitiPath: createRequire(import.meta.url).resolve('jiti'),
    parentUrl: import.meta.url,
    timeoutMs,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  const mod = exportOf(outcome, file, timeoutMs);
  if (mod === undefined || mod === null || typeof mod !== 'object') {
    throw new ConfigError(`${file}: the deployfile has no default export`, {
      hint: 'end it with `export default defineConfig({ ... })`',
    });
  }
  return mod;
}

/** The deployfile's default export, or the error that says why there is none. */
function exportOf(outcome: WorkerOutcome, file: string, timeoutMs: number): unknown {
  const onlyData = 'a deployfile only builds its config object: vdeploy loads it apart and takes its default export as data';
  switch (outcome.kind) {
    case 'loaded':
      return outcome.value;
    case 'error':
      throw new ConfigError(`${file}: could not load the deployfile: ${describeLoadError(outcome, file)}`, {
        hint: 'fix the error at that place in the deployfile',
      });
    case 'not-data':
      throw new ConfigError(`${file}: ${outcome.path} is ${outcome.what}; the deployfile's default export must be plain data`, {
        hint: `${onlyData} (objects, arrays, strings, numbers, booleans)`,
      });
    case 'exit':
      throw new ConfigError(`${file}: the deployfile called process.exit(${outcome.code})${locationIn(outcome.stack, file)}`, {
        hint: `remove the call (throw an Error to refuse a configuration): ${onlyData}`,
      });
    case 'timeout':
      throw new ConfigError(`${file}: the deployfile did not finish loading within ${Math.round(timeoutMs / 100) / 10} s; vdeploy stopped it`, {
        hint: `look for an endless loop or something it waits for: ${onlyData}`,
      });
    case 'ended':
      throw new ConfigError(`${file}: the deployfile stopped before it finished loading (it waits for something that never happens?)`, {
        hint: `look for a top-level await that never settles: ${onlyData}`,
      });
    case 'aborted':
      throw new InterruptedError(`interrupted while loading the deployfile ${file}`);
  }
}

/** One line: the error's own message plus the deployfile location (file:line:col) where we can find one. */
function describeLoadError(err: { message: string; stack: string }, file: string): string {
  const message = err.message.split('\n').map((l) => l.trim()).filter(Boolean);
  const first = (message[0] ?? 'unknown error').replace(/^ParseError:\s*/, 'syntax error: ');
  return `${first}${locationIn(`${err.message}\n${err.stack}`, file)}`;
}

/** ` at FILE:LINE:COL`, the first place in `text` (a message, a stack) inside the deployfile; or ''. */
function locationIn(text: string, file: string): string {
  const loc = new RegExp(`${escapeRegExp(file)}:(\\d+):(\\d+)`).exec(text);
  return loc ? ` at ${file}:${loc[1]}:${loc[2]}` : '';
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function formatIssue(issue: z.core.$ZodIssue): string {
  const path = formatPath(issue.path);
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys.map((k) => (path ? `${path}.${k}` : k));
    return `${keys.join(', ')}: unknown field${keys.length > 1 ? 's' : ''} (check the spelling)`;
  }
  let message = issue.message.replace(/^Invalid input: /, '');
  if (issue.code === 'invalid_type' && /received undefined/.test(message)) message = `is required (${issue.expected})`;
  if (issue.code === 'invalid_value' && 'values' in issue) {
    message = `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
  }
  return `${path || '(top level)'}: ${message}`;
}

/** `['venvs', 2, 'path']` → `venvs[2].path`. */
export function formatPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((acc, key) => {
    if (typeof key === 'number') return `${acc}[${key}]`;
    return acc ? `${acc}.${String(key)}` : String(key);
  }, '');
}
