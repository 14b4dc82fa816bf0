/**
 * The deploy history each venv keeps in `<venv>/.vdeploy/history.jsonl` (one JSON object per apply,
 * written by the apply script), and the rules that read it: what to roll back to, and which Django
 * migrations that undoes. Plain functions, table-tested without SSH.
 */

import type { VenvFacts } from '../facts/types.js';

/** A venv's history lines as probed: an app root of the releases layout has them before its first live release too. */
export function historyLines(facts: VenvFacts): Array<Record<string, unknown>> {
  return facts.state === 'venv' ? facts.history : facts.state === 'missing' ? (facts.history ?? []) : [];
}

/** app label → applied migration names, in the order Django applied them. */
export type MigrationState = Record<string, string[]>;

export interface HistoryEntry {
  /** 1-based position in the file: 1 is the oldest. */
  number: number;
  /** deploy, rollback or auto-rollback. */
  action: string;
  time: string;
  finishedAt?: string;
  localUser: string;
  localHost: string;
  /** The pid of the vdeploy that ran it, on localHost (entries written before vdeploy recorded it lack it). */
  localPid?: number;
  /** deployed, failed, interrupted, … */
  outcome: string;
  failedStep: string | null;
  /** package key → version before and after this apply. */
  before: Record<string, string>;
  after: Record<string, string>;
  /** The closure this apply installed: `[{name, version, wheel, sha256}]`. */
  packages: Array<{ name: string; version: string; wheel: string; sha256: string }>;
  changes: Array<{ kind: string; key: string; name: string; from?: string; to?: string }>;
  migrationsBefore?: MigrationState;
  migrationsAfter?: MigrationState;
  /** For rollbacks: the entry undone (default rollback) or restored (`--to`). */
  undoes?: number;
  restores?: number;
  /** Why an automatic rollback happened. */
  reason?: string;
  /** Releases layout: the release this apply built or switched to, the one live before it, and whether a failure after the switch switched back. */
  release?: string;
  previousRelease?: string;
  switchedBack?: boolean;
  /** Shipping: the digest of the release's artifact (the manifest), packed by a builder or received. */
  artifact?: string;
}

/** Parse the raw lines (oldest first); fields a line lacks get neutral values, never a throw. */
export function parseHistory(raw: ReadonlyArray<Record<string, unknown>>): HistoryEntry[] {
  return raw.map((r, i) => ({
    number: i + 1,
    action: str(r.action) ?? 'deploy',
    time: str(r.time) ?? '',
    ...(str(r.finishedAt) ? { finishedAt: str(r.finishedAt)! } : {}),
    localUser: str(r.localUser) ?? '?',
    localHost: str(r.localHost) ?? '?',
    ...(typeof r.localPid === 'number' ? { localPid: r.localPid } : {}),
    outcome: str(r.outcome) ?? 'unknown',
    failedStep: str(r.failedStep) ?? null,
    before: versions(r.before),
    after: versions(r.after),
    packages: Array.isArray(r.packages) ? (r.packages as HistoryEntry['packages']) : [],
    changes: Array.isArray(r.changes) ? (r.changes as HistoryEntry['changes']) : [],
    ...(isMigrationState(r.migrationsBefore) ? { migrationsBefore: r.migrationsBefore } : {}),
    ...(isMigrationState(r.migrationsAfter) ? { migrationsAfter: r.migrationsAfter } : {}),
    ...(typeof r.undoes === 'number' ? { undoes: r.undoes } : {}),
    ...(typeof r.restores === 'number' ? { restores: r.restores } : {}),
    ...(str(r.reason) ? { reason: str(r.reason)! } : {}),
    ...(str(r.release) ? { release: str(r.release)! } : {}),
    ...(str(r.previousRelease) ? { previousRelease: str(r.previousRelease)! } : {}),
    ...(typeof r.switchedBack === 'boolean' ? { switchedBack: r.switchedBack } : {}),
    ...(str(r.artifact) ? { artifact: str(r.artifact)! } : {}),
  }));
}

/**
 * The artifact digest of the release `live` (shipping): recorded on the history line of the apply that
 * built or received it. Switches to it (rollbacks) record none, so the newest line naming the release
 * with a digest is the one; release ids are never reused, so a failed line cannot name another build.
 */
export function liveArtifact(history: readonly HistoryEntry[], live: string | null): string | undefined {
  if (live === null) return undefined;
  for (let i = history.length - 1; i >= 0; i--) {
    const e = history[i]!;
    if (e.release === live && e.artifact !== undefined) return e.artifact;
  }
  return undefined;
}

export type RollbackTarget =
  | {
      ok: true;
      /** key → version the venv goes back to (pip/setuptools/wheel left out). */
      packages: Record<string, string>;
      undoes?: number;
      restores?: number;
      /** The migration state that goes with that package set, if it was recorded. */
      migrations?: MigrationState;
      /** Migrations recorded as applied now (after the newest entry that migrated). */
      currentMigrations?: MigrationState;
      /** Releases layout: the release that held that set (a rollback switches to it while it exists). */
      release?: string;
    }
  | { ok: false; message: string; hint: string };

const NOT_PACKAGES = new Set(['pip', 'setuptools', 'wheel', 'distribute']);

/**
 * Where `vdeploy rollback` takes a venv. Default: back to the package set from before its last
 * successful deploy that no later rollback already undid. `to`: the set entry `to` left behind.
 */
export function chooseRollbackTarget(history: readonly HistoryEntry[], to?: number): RollbackTarget {
  const currentMigrations = [...history].reverse().find((e) => e.migrationsAfter)?.migrationsAfter;
  const withCurrent = currentMigrations ? { currentMigrations } : {};
  if (to !== undefined) {
    const entry = history.find((e) => e.number === to);
    if (!entry) {
      return { ok: false, message: `no history entry #${to} (it has ${history.length})`, hint: 'see the entries with `vdeploy history SELECTOR`' };
    }
    if (entry.outcome !== 'deployed') {
      return { ok: false, message: `history entry #${to} did not succeed (${entry.outcome}): its package set is not one to go back to`, hint: 'pick an entry whose outcome is deployed' };
    }
    return { ok: true, packages: packagesOnly(entry.after), restores: to, ...(entry.migrationsAfter ? { migrations: entry.migrationsAfter } : {}), ...withCurrent, ...(entry.release ? { release: entry.release } : {}) };
  }
  const undone = new Set(history.flatMap((e) => (e.action !== 'deploy' && e.outcome === 'deployed' && e.undoes !== undefined ? [e.undoes] : [])));
  const last = [...history].reverse().find((e) => e.action === 'deploy' && e.outcome === 'deployed' && !undone.has(e.number));
  if (!last) {
    return {
      ok: false,
      message: history.length === 0 ? 'no deploy recorded yet: nothing to roll back' : 'no successful deploy left to roll back',
      hint: 'see `vdeploy history SELECTOR`; `--to N` goes back to the set entry N left behind',
    };
  }
  return {
    ok: true,
    packages: packagesOnly(last.before),
    undoes: last.number,
    ...(last.migrationsBefore ? { migrations: last.migrationsBefore } : {}),
    ...withCurrent,
    ...(last.previousRelease ? { release: last.previousRelease } : {}),
  };
}

/**
 * When the venv's newest successful apply was a `vdeploy rollback`: its entry number and the version
 * of each package it took off (downgraded or removed) — what a plain deploy would bring back.
 */
export function rolledBackVersions(history: readonly HistoryEntry[]): { entry: number; versions: Record<string, string> } | undefined {
  const last = [...history].reverse().find((e) => e.outcome === 'deployed' && e.action !== 'migrate');
  if (!last || last.action !== 'rollback') return undefined;
  const versions: Record<string, string> = {};
  for (const c of last.changes) if ((c.kind === 'downgrade' || c.kind === 'remove') && c.from !== undefined) versions[c.key] = c.from;
  return Object.keys(versions).length > 0 ? { entry: last.number, versions } : undefined;
}

/**
 * For each app with migrations applied now that the target state lacks: the migration to migrate it
 * back to (`zero` when the target has none of that app's migrations).
 */
export function migrationsToUnapply(current: MigrationState | undefined, target: MigrationState | undefined): Array<{ app: string; to: string; unapplies: string[] }> {
  if (!current || !target) return [];
  const out: Array<{ app: string; to: string; unapplies: string[] }> = [];
  for (const [app, applied] of Object.entries(current)) {
    const wanted = target[app] ?? [];
    const extra = applied.filter((m) => !wanted.includes(m));
    if (extra.length > 0) out.push({ app, to: wanted.at(-1) ?? 'zero', unapplies: extra });
  }
  return out.sort((a, b) => (a.app < b.app ? -1 : 1));
}

function packagesOnly(set: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(set).filter(([k]) => !NOT_PACKAGES.has(k)));
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function versions(v: unknown): Record<string, string> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return {};
  return Object.fromEntries(Object.entries(v).filter((e): e is [string, string] => typeof e[1] === 'string'));
}

function isMigrationState(v: unknown): v is MigrationState {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every((l) => Array.isArray(l) && l.every((m) => typeof m === 'string'));
}
