/**
 * The relocate script's contract (src/remote/python/vdeploy_remote/relocate.py): what vdeploy sends it
 * and what it answers. Examples: test/fixtures/contracts/relocate.*.json.
 */
import * as z from 'zod';
import { protocolVersion } from '../remote/contracts.js';

/** What relocateVenv sends: checked and normalized already (newPath 'auto' = where the venv is). */
export const relocateRequest = z.object({
  v: protocolVersion,
  /** Absolute. */
  venv: z.string(),
  /** Absolute, or 'auto'; null: no path update. */
  newPath: z.string().nullable(),
  /** Absolute; null: read it from the venv. */
  oldPath: z.string().nullable(),
  reinitialize: z.boolean(),
  dryRun: z.boolean(),
  /** Written into <venv>/.vdeploy/lock while relocate holds it, as deploy does. */
  holder: z.object({
    user: z.string(),
    host: z.string(),
    pid: z.number().int(),
    startedAt: z.string(),
    command: z.literal('relocate'),
  }),
});

export const relocateChangeKind = z.enum([
  'activate',
  'script',
  'pyvenv.cfg',
  'pth',
  'egg-link',
  'editable-finder',
  'direct-url',
  'bytecode',
  'symlink',
  'interpreter',
  'temporary',
]);

export const relocateChange = z.object({
  /** Relative to the venv (a `__pycache__` directory for kind 'bytecode'). */
  path: z.string(),
  kind: relocateChangeKind,
  reason: z.string(),
  /** For 'bytecode': how many .pyc files in that directory. */
  files: z.number().int().optional(),
});

export const relocateLeftover = z.object({
  /** Relative to the venv. */
  path: z.string(),
  reason: z.string(),
});

/** What was done (the answer without "v" and "fatal"): what relocateVenv resolves with. */
export const relocateResult = z.object({
  /** The venv's absolute path where it is now. */
  venv: z.string(),
  /** Where it was built (null when the path was not updated). */
  oldPath: z.string().nullable(),
  newPath: z.string().nullable(),
  /** Which file the old path was read from ('bin/activate', …); null when given as oldPath. */
  markerSource: z.string().nullable(),
  /** The venv already said it lives at newPath: nothing was changed. */
  alreadyRelocated: z.boolean(),
  dryRun: z.boolean(),
  /** The interpreter that ran the script, and its version. */
  python: z.string(),
  pythonVersion: z.string(),
  /** With reinitialize: the local interpreter the venv is now linked to, and whether anything changed. */
  reinitialize: z.object({ python: z.string(), version: z.string(), xy: z.string(), changed: z.boolean() }).nullable(),
  /** In the order they were (or would be) made. */
  changes: z.array(relocateChange),
  /** Files that still name the old path and that relocate does not rewrite. */
  leftovers: z.array(relocateLeftover),
  warnings: z.array(z.string()),
  /** Files that could not be written; when any, the marker was left as it was and a re-run finishes. */
  errors: z.array(z.object({ path: z.string().nullable(), message: z.string() })),
  /** Everything asked for was done (always true for a dry run without errors). */
  complete: z.boolean(),
});

/** Why nothing (more) could be done: usage (bad arguments, exit 2), refused or failed (exit 1). */
export const relocateFatal = z.object({
  message: z.string(),
  hint: z.string().nullable(),
  kind: z.enum(['usage', 'refused', 'failed']),
});

/** The script's one line of output (exit 3 when fatal is set, 0 otherwise). */
export const relocateAnswer = relocateResult.extend({
  v: protocolVersion,
  fatal: relocateFatal.nullable(),
});

export const contracts = {
  'relocate.request': relocateRequest,
  'relocate.answer': relocateAnswer,
} as const;

export type RelocateScriptRequest = z.infer<typeof relocateRequest>;
export type RelocateChangeKind = z.infer<typeof relocateChangeKind>;
export type RelocateChange = z.infer<typeof relocateChange>;
export type RelocateLeftover = z.infer<typeof relocateLeftover>;
export type RelocateResult = z.infer<typeof relocateResult>;
export type RelocateFatal = z.infer<typeof relocateFatal>;
export type RelocateAnswer = z.infer<typeof relocateAnswer>;
