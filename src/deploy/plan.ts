/**
 * The plan: for each selected venv, what a deploy would change. Built from facts (what the host has)
 * and the resolution (what the release log says it should have) by plain functions, so every rule
 * here is table-tested without SSH.
 */
import { compare } from '@renovatebot/pep440';
import type { InstalledPackage } from '../facts/types.js';
import { filesNeedApply, type FilesPlan } from '../files/types.js';
import type { ResolvedPackage } from '../resolve/resolve-venv.js';
import type { RecoveredInstall } from './reconcile-log.js';

/** Django migrate: when something changed (auto), on every selected Django venv (always), never. */
export type MigrateMode = 'auto' | 'always' | 'never';

export type ChangeKind = 'install' | 'upgrade' | 'downgrade' | 'remove';

export interface PackageChange {
  kind: ChangeKind;
  key: string;
  name: string;
  /** Installed version now (absent for install). */
  from?: string;
  /** Version after the deploy (absent for remove). */
  to?: string;
}

/** Distributions pip itself needs: never reported as unneeded, never removed. */
export const PROTECTED_PACKAGES: ReadonlySet<string> = new Set(['pip', 'setuptools', 'wheel', 'distribute']);

export type { RecoveredInstall };

export interface VenvTarget {
  /** `user@host:/path` */
  id: string;
  host: string;
  /** The venv's owning user. */
  user: string;
  path: string;
  /** The newest line of the venv's history, when it has one. */
  last?: LastApply;
}

export interface LastApply {
  number: number;
  action: string;
  time: string;
  localUser: string;
  localHost: string;
  outcome: string;
  /** Releases layout: the release it built or switched to. */
  release?: string;
}

export type VenvPlan = VenvTarget &
  (
    | {
        status: 'ok';
        /** The venv does not exist and is created with this interpreter. */
        create: string | null;
        /** With create: a venv half-made by an earlier deploy is there, and is emptied and made anew. */
        halfMade?: true;
        /** pip's `~name` stash folders left in site-packages (absolute paths): the deploy removes them. */
        stashes?: string[];
        changes: PackageChange[];
        /** Packages already at the planned version. */
        unchanged: Array<{ key: string; name: string; version: string }>;
        /** Installed, but nothing requires them; removed only with --prune (then also in `changes`). */
        unneeded: InstalledPackage[];
        /** The whole desired set, with wheels and hashes. */
        desired: ResolvedPackage[];
        installed: InstalledPackage[];
        /**
         * The installed set pinned to released wheels, to restore automatically when migrate, reload or
         * the health check fails; an error says why that is impossible (absent: nothing to restore).
         */
        restore?: { packages: ResolvedPackage[] } | { error: string };
        /** Set by `vdeploy rollback`: which history entry this undoes or restores, and its migrations. */
        rollback?: RollbackPlan;
        /**
         * Django venvs only: whether `migrate` runs after the install. Never when the planned set has
         * no Django (its command would be gone: a rollback to before the first deploy); with
         * `--migrate always` also on a venv whose packages are up to date.
         */
        migrate?: boolean;
        /**
         * A deploy that reinstalls versions the venv's newest rollback (history entry `entry`) took
         * off: the release log's newest release wins unless the requirements pin the old one.
         */
        reinstalls?: { entry: number; packages: Array<{ name: string; version: string; now?: string }> };
        /** Releases layout: how the release this apply makes live comes to be. */
        releases?: ReleasePlan;
        /** Releases layout, shipping (docs/shipping.md): built here and shipped, or received; absent: pip as today. */
        ship?: ShipPlan;
      }
    | {
        status: 'error';
        /** connect, probe or resolve */
        stage: string;
        message: string;
        hint?: string;
      }
  );

export interface ReleasePlan {
  keep: number;
  /** The release `current` points to now; null when there is none yet. */
  live: string | null;
  /**
   * clone: the live release cloned beside it, relocated, and the difference installed; fresh: a new
   * venv and a full install; switch (rollback): `current` switched to a release still on the host, no pip.
   */
  build: 'clone' | 'fresh' | 'switch';
  switchTo?: string;
  /** Rollback: the release that held the target set was cleaned up, so it is built again from the release log. */
  cleanedUp?: string;
  /** The releases on the host, oldest first. */
  onHost: string[];
}

/**
 * A venv's part in shipping (build once, ship everywhere): the builder builds its release with pip and
 * packs it; a receiver unpacks that release (from the builder, or from the local artifact cache).
 */
export type ShipPlan =
  /** members: venvs in the group, builder included. */
  | { role: 'builder'; group: string; members: number }
  /** from: the builder's venv id, or 'cache'; base: the artifact digest the delta applies to. */
  | { role: 'receiver'; group: string; from: string; kind: 'full' | 'delta'; base?: string };

/** Venvs that get one and the same release: same interpreter (fingerprint) and same desired wheels. */
export interface ShipGroup {
  /** groupKey(): sha256 hex; its first 16 characters are what users see. */
  key: string;
  fingerprint: string;
  /** The builder's venv id, or 'cache' when the local artifact cache holds the release. */
  builder: string | 'cache';
  /** Venv ids in deploy order, the builder included. */
  members: string[];
  /** The desired wheel filenames, sorted. */
  desired: string[];
}

export interface RollbackPlan {
  undoes?: number;
  restores?: number;
  /** Migrations applied since the target state: unapplied first with --unapply-migrations. */
  migrations: Array<{ app: string; to: string; unapplies: string[] }>;
  unapplyMigrations: boolean;
}

export interface HostPlan {
  name: string;
  /** Absolute wheel cache directory on the host. */
  cacheDir: string;
  /** Wheel filenames the cache already holds. */
  cachedWheels: string[];
  reload?: string;
  /**
   * Config files (docs/files.md): what a deploy would write, change, remove and run there. Absent when
   * the deployfile has no files for the host. A host that could not be connected to still has one
   * (with its `error`; cacheDir is then empty) when it has files, since it may have no venv to fail.
   */
  files?: FilesPlan;
}

export interface Plan {
  venvs: VenvPlan[];
  hosts: HostPlan[];
  /** Options the plan was made with, so apply does exactly what was shown. */
  prune: boolean;
  /**
   * Applies the hosts finished that no run had recorded (its vdeploy was killed or lost its
   * connection), found in the venvs' histories and written to release_log while planning.
   */
  recovered: RecoveredInstall[];
  /** Shipping groups (releases layout; absent when shipping is off or no venv ships). */
  groups?: ShipGroup[];
}

/** A venv that could not be planned, or a host whose config files could not be: the run fails (exit 1). */
export function planHasErrors(plan: Plan): boolean {
  return plan.venvs.some((v) => v.status === 'error') || plan.hosts.some((h) => h.files?.error !== undefined);
}

/** Whether a deploy of this plan has anything to do: a venv to apply, or a host's config files. */
export function hasWork(plan: Plan): boolean {
  return plan.venvs.some(needsApply) || plan.hosts.some((h) => filesNeedApply(h.files));
}

/** Whether applying this venv's plan would change anything (creating it counts). */
export function hasChanges(plan: VenvPlan): boolean {
  return plan.status === 'ok' && (plan.create !== null || plan.changes.length > 0 || (plan.stashes?.length ?? 0) > 0);
}

/** Whether the venv is applied at all: it has changes, or `--migrate always` migrates it anyway. */
export function needsApply(plan: VenvPlan): boolean {
  return hasChanges(plan) || (plan.status === 'ok' && plan.migrate === true);
}

/**
 * Compare what a venv has with what it should have. `prune` turns unneeded packages into removals.
 * Changes come sorted by package key.
 */
export function diffPackages(
  desired: readonly ResolvedPackage[],
  installed: readonly InstalledPackage[],
  prune: boolean,
): { changes: PackageChange[]; unchanged: Array<{ key: string; name: string; version: string }>; unneeded: InstalledPackage[] } {
  const have = new Map(installed.map((p) => [p.key, p]));
  const wanted = new Set(desired.map((p) => p.key));
  const changes: PackageChange[] = [];
  const unchanged: Array<{ key: string; name: string; version: string }> = [];
  for (const p of desired) {
    const current = have.get(p.key);
    if (!current) {
      changes.push({ kind: 'install', key: p.key, name: p.name, to: p.version });
      continue;
    }
    const order = compareVersions(p.version, current.version);
    // Same version by PEP 440 but spelled differently (1.0 vs 1.0.0) is still the same release.
    if (order === 0) unchanged.push({ key: p.key, name: p.name, version: current.version });
    else changes.push({ kind: order > 0 ? 'upgrade' : 'downgrade', key: p.key, name: p.name, from: current.version, to: p.version });
  }
  const unneeded = installed.filter((p) => !wanted.has(p.key) && !PROTECTED_PACKAGES.has(p.key));
  if (prune) {
    for (const p of unneeded) changes.push({ kind: 'remove', key: p.key, name: p.name, from: p.version });
  }
  changes.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return { changes, unchanged, unneeded };
}

/** PEP 440 order; a version pip installed that is not PEP 440 compares by its text. */
export function compareVersions(a: string, b: string): number {
  try {
    return compare(a, b);
  } catch {
    return a === b ? 0 : a < b ? -1 : 1;
  }
}

/** The requirements file pip installs from: every package of the closure pinned to one wheel's hash. */
export function pinnedRequirements(desired: readonly ResolvedPackage[]): string {
  return desired.map((p) => `${p.name}==${p.version} --hash=sha256:${p.sha256}\n`).join('');
}

/** Wheels the confirmed venvs of one host need that its cache lacks, each once. */
export function wheelsToPush(host: HostPlan, venvs: readonly VenvPlan[]): ResolvedPackage[] {
  const cached = new Set(host.cachedWheels);
  const byFile = new Map<string, ResolvedPackage>();
  for (const v of venvs) {
    if (v.status !== 'ok' || v.host !== host.name) continue;
    for (const p of packagesToFetch(v)) if (!cached.has(p.filename)) byFile.set(p.filename, p);
  }
  return [...byFile.values()];
}

/** The packages pip will take from the wheel cache for this venv: the new and changed ones. */
export function packagesToFetch(v: Extract<VenvPlan, { status: 'ok' }>): ResolvedPackage[] {
  if (!hasChanges(v) || v.releases?.build === 'switch') return [];
  const changed = new Set(v.changes.filter((c) => c.kind !== 'remove').map((c) => c.key));
  return v.desired.filter((p) => v.create !== null || changed.has(p.key));
}
