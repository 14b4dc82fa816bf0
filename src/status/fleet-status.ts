/**
 * `fleetStatus()`: what is running where, read live with the same probe and resolution as a deploy.
 * Each venv is in sync (a deploy now would change nothing), drifted (how many packages differ), or
 * unreachable / in error; plus a packages × venvs matrix of installed versions.
 */
import type { ResolvedConfig } from '../config/resolve-config.js';
import { compareVersions, PROTECTED_PACKAGES, type LastApply, type Plan } from '../deploy/plan.js';
import { planDeploy, type PlanDeployOptions } from '../deploy/plan-deploy.js';
import { releasedWheels, type ReleasedWheel } from '../wheels/repository.js';
import type { FileChange } from '../files/types.js';
import { builtFrom, type BuiltFrom } from './built-from.js';

export interface VenvStatus {
  id: string;
  host: string;
  path: string;
  state: 'in-sync' | 'drift' | 'unreachable' | 'error';
  /** Packages a deploy now would install, change or find unneeded. */
  differing: number;
  message?: string;
  last?: LastApply;
  /** Releases layout only: the release `current` points to (null: none yet; absent when it could not be read). */
  live?: string | null;
  /** Installed packages `vdeploy build` built from a git commit (the release log says which): what the venv runs. */
  builtFrom?: BuiltFrom[];
}

export interface MatrixRow {
  key: string;
  name: string;
  /** The newest released version, if the repository has the package. */
  newest?: string;
  /** Installed version per venv (same order as `venvs`), null where absent or unknown. */
  versions: Array<string | null>;
  /** Not the same in every venv, or not what a deploy would install somewhere. */
  differs: boolean;
}

/** A file on a host that differs from the repository, and how. */
export interface FileDrift {
  dest: string;
  what: Array<'content' | 'mode' | 'owner' | 'group' | 'missing'>;
  /** For mode/owner/group: [on the host, in the repository] (modes like '0644'). */
  meta?: FileChange['meta'];
}

/** A host's config files (docs/files.md): what differs, handlers left pending, files the repository no longer has. */
export interface HostStatus {
  host: string;
  files: {
    drift: FileDrift[];
    pending: string[];
    orphans: string[];
    /** Its files could not be read (unreachable, sudo refused, a directory where a file goes). */
    error?: string;
  };
}

export interface FleetStatus {
  venvs: VenvStatus[];
  matrix: MatrixRow[];
  /** Hosts with config files, in deployfile order (empty when the deployfile has none). */
  hosts: HostStatus[];
  /** Applies the hosts finished that no run recorded, written to release_log while reading them (see reconcile-log.ts). */
  recovered: Plan['recovered'];
}

export async function fleetStatus(config: ResolvedConfig, options: Omit<PlanDeployOptions, 'mode' | 'prune'>): Promise<FleetStatus> {
  const plan = await planDeploy(config, { ...options, mode: { kind: 'deploy' } });
  const released = await releasedWheels(config.wheels);
  const newest = newestReleased(released);
  return { venvs: plan.venvs.map((v) => venvStatus(v, released)), matrix: buildMatrix(plan, newest), hosts: hostStatuses(plan), recovered: plan.recovered };
}

/** Each planned host's files as status sees them: drift is what a deploy now would change there. */
export function hostStatuses(plan: Plan): HostStatus[] {
  return plan.hosts.flatMap((h) => {
    const f = h.files;
    // A host without files of its own was read only for orphans and pending handlers.
    if (!f || (f.files.length === 0 && f.orphans.length === 0 && f.pending.length === 0 && !f.error)) return [];
    const drift = f.files.flatMap((c): FileDrift[] => {
      if (c.action === 'unchanged' || c.action === 'blocked') return [];
      if (c.action === 'create') return [{ dest: c.dest, what: ['missing'] }];
      const what: FileDrift['what'] = c.action === 'update' ? ['content'] : [];
      for (const k of ['mode', 'owner', 'group'] as const) if (c.meta?.[k]) what.push(k);
      return [{ dest: c.dest, what, ...(c.meta && Object.keys(c.meta).length > 0 ? { meta: c.meta } : {}) }];
    });
    return [{ host: h.name, files: { drift, pending: f.pending, orphans: f.orphans, ...(f.error ? { error: f.error.message } : {}) } }];
  });
}

function venvStatus(v: Plan['venvs'][number], released: readonly ReleasedWheel[]): VenvStatus {
  const built = v.status === 'ok' ? builtFrom(v.installed, released) : [];
  const base = {
    id: v.id,
    host: v.host,
    path: v.path,
    ...(v.last ? { last: v.last } : {}),
    ...(v.status === 'ok' && v.releases ? { live: v.releases.live } : {}),
    ...(built.length > 0 ? { builtFrom: built } : {}),
  };
  if (v.status === 'error') {
    return { ...base, state: v.stage === 'connect' ? 'unreachable' : 'error', differing: 0, message: v.message };
  }
  const stashes = v.stashes ?? [];
  const differing = v.changes.length + v.unneeded.length + (v.create !== null ? 1 : 0) + stashes.length;
  return { ...base, state: differing === 0 ? 'in-sync' : 'drift', differing, ...(driftMessage(v, stashes) ?? {}) };
}

function driftMessage(v: Extract<Plan['venvs'][number], { status: 'ok' }>, stashes: readonly string[]): { message: string } | undefined {
  if (v.halfMade) return { message: 'half-made by a deploy that failed or died: the next deploy creates it anew' };
  if (v.create !== null) return { message: 'does not exist yet' };
  const names = stashes.map((p) => p.slice(p.lastIndexOf('/') + 1)).join(', ');
  if (stashes.length > 0) return { message: `pip left stash folders (${names}) in site-packages: the next deploy removes them` };
  return undefined;
}

/** Rows for every package installed or wanted anywhere (pip, setuptools and wheel left out). */
export function buildMatrix(plan: Plan, newest: ReadonlyMap<string, string>): MatrixRow[] {
  const names = new Map<string, string>();
  const perVenv = plan.venvs.map((v) => {
    const have = new Map<string, string>();
    if (v.status !== 'ok') return { have, wanted: new Map<string, string>(), known: false };
    for (const p of v.installed) if (!PROTECTED_PACKAGES.has(p.key)) (have.set(p.key, p.version), names.set(p.key, p.name));
    const wanted = new Map(v.desired.map((p) => [p.key, p.version]));
    for (const p of v.desired) if (!names.has(p.key)) names.set(p.key, p.name);
    return { have, wanted, known: true };
  });
  return [...names.keys()].sort().map((key) => {
    const versions = perVenv.map((v) => v.have.get(key) ?? null);
    const known = perVenv.filter((v) => v.known);
    const distinct = new Set(known.map((v) => v.have.get(key) ?? null));
    const off = known.some((v) => !sameVersion(v.wanted.get(key) ?? null, v.have.get(key) ?? null));
    const latest = newest.get(key);
    return { key, name: names.get(key)!, ...(latest ? { newest: latest } : {}), versions, differs: distinct.size > 1 || off };
  });
}

/** PEP 440 equality (an installed 1.0.0 is the planned 1.0, as the plan and the apply see it). */
function sameVersion(a: string | null, b: string | null): boolean {
  return a === null || b === null ? a === b : compareVersions(a, b) === 0;
}

function newestReleased(released: Awaited<ReturnType<typeof releasedWheels>>): Map<string, string> {
  const out = new Map<string, string>();
  for (const w of released) {
    const seen = out.get(w.normalizedName);
    if (seen === undefined || safeCompare(w.version, seen) > 0) out.set(w.normalizedName, w.version);
  }
  return out;
}

/** PEP 440 order, text for a non-PEP 440 version (the plan's own comparison). */
export const safeCompare = compareVersions;
