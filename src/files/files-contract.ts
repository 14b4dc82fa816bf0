/**
 * The files script's contract (src/remote/python/vdeploy_remote/files.py, issue 17, docs/files.md):
 * `facts` reads what a host has at the desired paths and vdeploy's record there (read-file-facts.ts);
 * `apply` writes, validates and renames files into place, then runs the handlers, keeping the record
 * of managed files and pending handlers (started by host_apply.py after the venvs, before the reload).
 * Examples: test/fixtures/contracts/files.*.json.
 */
import * as z from 'zod';
import { protocolVersion } from '../remote/contracts.js';

/** One desired path: its desired sha256; `content`: send the current content when it differs (for a diff). */
export const factsFile = z.object({ path: z.string(), sha256: z.string(), content: z.boolean() });

/** The facts request (pythonStdin adds "v"). stateDir null: the default (docs/files.md). */
export const filesFactsInput = z.object({
  op: z.literal('facts'),
  stateDir: z.string().nullable(),
  host: z.string(),
  files: z.array(factsFile),
});

/** A file to write: uploaded as a temp file beside `path`, checked, chowned, chmodded, validated, renamed. */
export const writeFile = z.object({
  path: z.string(),
  /** base64 */
  content: z.string(),
  sha256: z.string(),
  /** Permission bits, e.g. 420 (0o644). */
  mode: z.number().int().min(0),
  owner: z.string().optional(),
  group: z.string().optional(),
  /** Shell command; `{path}` is replaced by the shell-quoted temp file. */
  validate: z.string().optional(),
});

/** Owner/group/mode changes for a file whose content is already right. */
export const metaFile = z.object({ path: z.string(), mode: z.number().int().min(0), owner: z.string().optional(), group: z.string().optional() });

/** The apply request (host_apply or pythonStdin adds "v"). */
export const applyFilesInput = z.object({
  op: z.literal('apply'),
  stateDir: z.string().nullable(),
  host: z.string(),
  write: z.array(writeFile),
  meta: z.array(metaFile),
  /** Orphans to remove (regular files only). */
  remove: z.array(z.string()),
  /** In order; `systemctl daemon-reload` first when a unit changed. Added to the record's pending before any rename. */
  handlers: z.array(z.string()),
  /** The record's managed paths after this apply: path → sha256. */
  managed: z.record(z.string(), z.string()),
});

export const filesRequest = z.union([filesFactsInput.extend({ v: protocolVersion }), applyFilesInput.extend({ v: protocolVersion })]);

export const fileFact = z.object({
  path: z.string(),
  state: z.enum(['missing', 'file', 'other']),
  sha256: z.string().optional(),
  /** st_mode & 0o7777 */
  mode: z.number().int().min(0).optional(),
  /** Names, or the number as a string when the id has no name. */
  owner: z.string().optional(),
  group: z.string().optional(),
  size: z.number().int().min(0).optional(),
  /** base64; only when asked, differing and small (<= 256 KiB). */
  content: z.string().optional(),
});

/** The facts answer; `{v, error}` (exit 3) when the record is unreadable or the request is wrong. */
export const filesFactsAnswer = z.object({
  v: protocolVersion,
  files: z.array(fileFact),
  managed: z.record(z.string(), z.string()),
  pending: z.array(z.string()),
  /** The user the script ran as. */
  user: z.string(),
});
/** The request or the record is unusable (exit 3): one line, and what to do about it when there is something. */
export const filesErrorAnswer = z.object({ v: protocolVersion, error: z.string(), hint: z.string().optional() });
export const filesFacts = z.union([filesFactsAnswer, filesErrorAnswer]);

export const filesStage = z.enum(['request', 'record', 'mkdir', 'write', 'checksum', 'chown', 'chmod', 'validate', 'rename', 'meta', 'remove', 'handler']);

export const handlerRun = z.object({
  command: z.string(),
  ok: z.boolean(),
  /** null: killed by a signal. */
  exitCode: z.number().int().nullable(),
  ms: z.number().int().min(0),
  /** The last lines of its stdout and stderr. */
  tail: z.string(),
});

/**
 * The apply answer: exit 0 when ok, 1 otherwise (a file, the record or a handler failed, or it stopped
 * before a handler); an unusable request gets the error answer instead (exit 3).
 */
export const filesResult = z.object({
  v: protocolVersion,
  /** Everything done: files in place and every handler run (false when stopped before a handler). */
  ok: z.boolean(),
  written: z.array(z.string()),
  meta: z.array(z.string()),
  removed: z.array(z.string()),
  failed: z
    .object({ path: z.string().optional(), stage: filesStage, message: z.string(), output: z.string().optional() })
    .nullable(),
  handlers: z.array(handlerRun),
  /** Handlers still to run (the record's pending after this apply). */
  pending: z.array(z.string()),
  /** Stopped (SIGTERM/SIGINT) before a handler. */
  stopped: z.boolean(),
});

export const contracts = {
  'files.request': filesRequest,
  'files.facts': filesFacts,
  'files.result': filesResult,
} as const;

export type FilesFactsRequest = z.infer<typeof filesFactsInput>;
export type ApplyFilesRequest = z.infer<typeof applyFilesInput>;
export type FilesFactsAnswer = z.infer<typeof filesFactsAnswer>;
export type FilesResult = z.infer<typeof filesResult>;
export type FilesStage = z.infer<typeof filesStage>;
export type HandlerRun = z.infer<typeof handlerRun>;
