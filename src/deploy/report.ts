/** What applying a plan did, per venv and per host: the value `applyPlan()` returns. */
import type { ApplyStep, MigrationsRun, ReleaseAnswer } from './apply-contract.js';
import type { VenvOutcome } from './events.js';
import type { LockHolder } from './lock-holder.js';
import type { PackageChange, VenvTarget } from './plan.js';

/** A step as the apply answered it (the install step also says which pip ran it and how provenance was checked). */
export type StepReport = ApplyStep;

export interface VenvReport extends VenvTarget {
  outcome: VenvOutcome;
  changes: PackageChange[];
  created: boolean;
  ms: number;
  /** For failures: where, and why in one line (host, venv, stage, exit code, stderr tail). */
  failedStep?: string;
  message?: string;
  hint?: string;
  steps: StepReport[];
  /** Django venvs: the migrations this apply applied and unapplied ('app.name', in the order run). */
  migrations?: MigrationsRun;
  /** For `locked`: who holds the venv's lock, and whether the vdeploy that started that apply still runs. */
  heldBy?: LockHolder;
  /** When the venv was put back to its pre-deploy set after a failure: why, and how that went. */
  rolledBack?: { reason: string; ok: boolean; message?: string };
  /** Releases layout: the release built or switched to, what was live before and after, what was removed. */
  release?: ReleaseAnswer;
  /**
   * Build once, ship: this venv built its group's release (builder) or received it (receiver, from a
   * builder's venv id or 'cache'); fellBack: why it was built with pip after all.
   */
  shipped?: ShippedReport;
}

export interface ShippedReport {
  role: 'builder' | 'receiver';
  group: string;
  kind?: 'full' | 'delta';
  from?: string;
  /** Builder: the tar's size; receiver: the bytes of tar it unpacked. */
  bytes?: number;
  fellBack?: string;
}

export interface HostReport {
  name: string;
  /** Wheels uploaded to the host's cache. */
  pushed: string[];
  reload?: { ok: boolean; ms: number; message?: string };
  /** Config files (docs/files.md): what the apply did there; absent when the host had no file work or it was declined. */
  files?: FilesReport;
}

/** What a host's files apply did (files.py's result), or why it did not run. */
export interface FilesReport {
  ok: boolean;
  /** Paths written (created or changed), their owner/mode changed only, and removed (--prune-files). */
  written: string[];
  meta: string[];
  removed: string[];
  /** Desired files that needed nothing. */
  unchanged: number;
  /** The handlers run, in order. */
  handlers: Array<{ command: string; ok: boolean; exitCode: number | null; ms: number; tail: string }>;
  /** Handlers still to run: the next deploy runs them even if no file changes. */
  pending: string[];
  /** Where the apply failed: the file and stage (validate, write, chown…) or the handler. */
  failed?: { path?: string; stage: string; message: string; output?: string };
  /** Why it failed or did not run, in one line naming the host. */
  message?: string;
  hint?: string;
  /** Stopped by Ctrl-C before a handler (then those left are pending). */
  stopped?: boolean;
  ms?: number;
}

export interface Report {
  venvs: VenvReport[];
  hosts: HostReport[];
  /** Every selected venv succeeded or had nothing to do (declined counts as fine). */
  ok: boolean;
  interrupted: boolean;
  /** Bytes written from the controller to hosts: wheels pushed, and artifact tars shipped. */
  bytesSent: { wheels: number; artifacts: number };
}

