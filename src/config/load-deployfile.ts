/**
 * Finds, loads (with jiti, so a `.ts` deployfile needs no build step) and validates the deployfile.
 * Every failure is a ConfigError that names the file, and the field path or file:line:col.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import type { z } from 'zod';
import { ConfigError } from '../errors.js';
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
}

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
  const exported = await importDeployfile(file);
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

async function importDeployfile(file: string): Promise<unknown> {
  // Loaded here, not at the top: only commands that read a deployfile need jiti. And with require():
  // jiti's ESM entry imports its 190 KB CommonJS build, which Node would first scan for export names.
  const { createJiti } = createRequire(import.meta.url)('jiti') as typeof import('jiti');
  const vdeploy = await import('../index.js');
  const jiti = createJiti(import.meta.url, {
    // A deployfile imports `defineConfig` from 'vdeploy': always give it the running vdeploy (these very
    // modules, not a second copy), even when the project around the deployfile has no node_modules.
    virtualModules: { vdeploy },
    moduleCache: false,
  });
  let mod: unknown;
  try {
    mod = await jiti.import(file, { default: true });
  } catch (error) {
    throw new ConfigError(`${file}: could not load the deployfile: ${describeLoadError(error, file)}`, {
      hint: 'fix the error at that place in the deployfile',
      cause: error,
    });
  }
  if (mod === undefined || mod === null || typeof mod !== 'object') {
    throw new ConfigError(`${file}: the deployfile has no default export`, {
      hint: 'end it with `export default defineConfig({ ... })`',
    });
  }
  return mod;
}

/** One line: the error's own message plus the deployfile location (file:line:col) where we can find one. */
function describeLoadError(error: unknown, file: string): string {
  const err = error instanceof Error ? error : new Error(String(error));
  const message = err.message.split('\n').map((l) => l.trim()).filter(Boolean);
  const first = (message[0] ?? 'unknown error').replace(/^ParseError:\s*/, 'syntax error: ');
  const locRe = new RegExp(`${escapeRegExp(file)}:(\\d+):(\\d+)`);
  const loc = err.message.match(locRe) ?? err.stack?.match(locRe);
  return loc ? `${first} at ${file}:${loc[1]}:${loc[2]}` : first;
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
