/**
 * What the deploy core reports while it works. The core never prints: the CLI renders these (listr2 on
 * a terminal, plain lines otherwise) and tests collect them in an array.
 */
import type { RecoveredInstall } from './reconcile-log.js';

export type DeployEvent =
  | { kind: 'host:connect'; host: string }
  | { kind: 'host:connected'; host: string; ms: number }
  | { kind: 'host:failed'; host: string; stage: string; message: string }
  | { kind: 'host:probed'; host: string; ms: number }
  | { kind: 'push:start'; host: string; wheels: string[] }
  | { kind: 'push:end'; host: string; wheels: string[]; bytes: number; ms: number }
  | { kind: 'venv:start'; venv: string }
  | { kind: 'step:start'; venv: string; step: string }
  /** Installed and migrated, the venv waits for its host's config files before its reload and health check. */
  | { kind: 'venv:hold'; venv: string }
  | { kind: 'step:end'; venv: string; step: string; ok: boolean; ms: number }
  | { kind: 'venv:end'; venv: string; outcome: VenvOutcome; ms: number }
  /** Config files: the host's apply writes its files and runs their handlers (docs/files.md). */
  | { kind: 'files:start'; host: string }
  | { kind: 'files:end'; host: string; ok: boolean; written: number; handlers: number; ms: number }
  | { kind: 'reload:start'; host: string }
  | { kind: 'reload:end'; host: string; ok: boolean; ms: number }
  | { kind: 'interrupt'; message: string }
  /** A builder packed its group's release (bytes: the full tar; deltaBytes: the delta tar, if any). */
  | { kind: 'ship:packed'; venv: string; group: string; bytes: number; deltaBytes?: number; ms: number }
  /** The controller downloaded a group's tar(s) from the builder's host into the local artifact cache. */
  | { kind: 'ship:fetched'; group: string; host: string; bytes: number; ms: number }
  /** A group's tar was uploaded to a receiver host (`ship` is its kind: the event's own key is `kind`). */
  | { kind: 'ship:sent'; host: string; group: string; ship: 'full' | 'delta'; bytes: number; ms: number }
  /** A venv that was to receive (or build for others) builds with pip after all. */
  | { kind: 'ship:fallback'; venv: string; reason: string }
  /** An apply a host finished that no run had recorded, now written to release_log (reconcile-log.ts). */
  | ({ kind: 'log:recovered' } & RecoveredInstall);

/**
 * 'rolled back': a `vdeploy rollback` that succeeded; 'migrated': `--migrate always` on an up-to-date
 * venv; 'restored': a deploy that failed after the install and was restored to the previous set.
 */
export type VenvOutcome = 'deployed' | 'rolled back' | 'migrated' | 'unchanged' | 'declined' | 'skipped' | 'failed' | 'locked' | 'interrupted' | 'restored';

/** Outcomes of a venv that ended as asked. */
export const SUCCESS_OUTCOMES: ReadonlySet<VenvOutcome> = new Set<VenvOutcome>(['deployed', 'rolled back', 'migrated', 'unchanged', 'declined']);

export type EventSink = (event: DeployEvent) => void;
