/**
 * One venv's part of an apply: the apply script's input (built from the plan), its answer turned
 * into the report, and — when migrate, reload or the health check failed after the new packages went
 * in — the restore of the pre-deploy package set, unless automatic rollback is off. The runs
 * themselves go through the host apply script (vdeploy_remote/host_apply.py, run-host-apply.ts), a
 * host's venvs in one command.
 */
import { hostname, userInfo } from 'node:os';
import { posix } from 'node:path';
import type { ResolvedHost, ResolvedVenv } from '../config/resolve-config.js';
import { lastLines } from '../errors.js';
import type { Connection } from '../remote/connection.js';
import { sudoArgv, sudoRefusal } from '../remote/sudo.js';
import type { ResolvedPackage } from '../resolve/resolve-venv.js';
import type { ApplyVenvInput, HostApplyLine } from './apply-contract.js';
import type { EventSink } from './events.js';
import { describeHolder, lockedMessage } from './lock-holder.js';
import { healthcheckInput } from './healthcheck-input.js';
import { diffPackages, hasChanges, packagesToFetch, pinnedRequirements, type HostPlan, type MigrateMode, type VenvPlan } from './plan.js';
import type { VenvReport } from './report.js';
import { runHostApply } from './run-host-apply.js';
import { corruptUploadError, planUploads, uploadWheels } from './upload-wheels.js';

export type { MigrateMode } from './plan.js';

export interface ApplyVenvSettings {
  /** never (--no-migrate) turns migrate off; otherwise each venv's plan says whether it migrates (VenvPlan.migrate). */
  migrate: MigrateMode;
  lockWaitSeconds: number;
  /** Restore the pre-deploy set when migrate, reload or the health check fails (default on). */
  autoRollback: boolean;
  /** Local wheel repository, for wheels a restore needs that the host's cache lacks. */
  repoDir: string;
}

type OkPlan = Extract<VenvPlan, { status: 'ok' }>;
type VenvLine = Extract<HostApplyLine, { venv: number }>;

/** Steps after which the new packages are in place, so putting the old ones back makes sense. */
const RESTORABLE_FAILURES = new Set(['showmigrations', 'migrate', 'reload', 'healthcheck']);

type ReleasesInput = NonNullable<ApplyVenvInput['releases']>;

/** Build once, ship: what a builder packs (`pack`), or the tar a receiver takes its release from (`ship`). */
export interface ShipInputs {
  pack?: NonNullable<ReleasesInput['pack']>;
  ship?: NonNullable<ReleasesInput['ship']>;
}

/** The input of a venv's deploy or rollback, as planned. */
export function applyInputFor(venv: ResolvedVenv, hostPlan: HostPlan, plan: OkPlan, settings: ApplyVenvSettings, ship?: ShipInputs): ApplyVenvInput {
  return buildApplyInput(venv, hostPlan, plan, plan.desired, settings, {
    // 'migrate': --migrate always on an up-to-date venv; not a deploy a rollback could undo.
    action: plan.rollback ? 'rollback' : hasChanges(plan) ? 'deploy' : 'migrate',
    ...(plan.rollback?.undoes !== undefined ? { undoes: plan.rollback.undoes } : {}),
    ...(plan.rollback?.restores !== undefined ? { restores: plan.rollback.restores } : {}),
  }, ship ? { ship } : {});
}

/**
 * After a venv failed: put its pre-deploy set back if the failure came after the new packages went
 * in and automatic rollback is on. Updates `report` in place.
 */
export async function restoreIfNeeded(
  conn: Connection,
  venv: ResolvedVenv,
  host: ResolvedHost,
  hostPlan: HostPlan,
  plan: OkPlan,
  settings: ApplyVenvSettings,
  report: VenvReport,
  emit: EventSink,
): Promise<void> {
  if (report.outcome !== 'failed' || !report.failedStep || !RESTORABLE_FAILURES.has(report.failedStep) || !settings.autoRollback || !plan.restore) return;
  const reason = `${report.failedStep} failed`;
  if ('error' in plan.restore) {
    report.rolledBack = { reason, ok: false, message: `cannot restore the previous set: ${plan.restore.error}` };
    return;
  }
  report.rolledBack = await restore(conn, venv, host, hostPlan, plan, plan.restore.packages, settings, reason, emit);
  if (report.rolledBack.ok) report.outcome = 'restored';
}

/** Put the pre-deploy packages back (pushing any the cache lost), reload, and record it. */
async function restore(
  conn: Connection,
  venv: ResolvedVenv,
  host: ResolvedHost,
  hostPlan: HostPlan,
  plan: OkPlan,
  previous: ResolvedPackage[],
  settings: ApplyVenvSettings,
  reason: string,
  emit: EventSink,
): Promise<NonNullable<VenvReport['rolledBack']>> {
  emit({ kind: 'step:start', venv: plan.id, step: 'rollback' });
  const started = performance.now();
  try {
    const installedNow = plan.desired.map((p) => ({ name: p.name, key: p.key, version: p.version }));
    const diff = diffPackages(previous, installedNow, true);
    // Neither the rollback's unmigrate nor migrate: the schema stays as the failed apply left it, and
    // the command they need may be gone (a rollback that removed Django).
    const { rollback: _undone, ...rest } = plan;
    const back: OkPlan = { ...rest, create: null, ...diff, desired: previous, installed: installedNow, migrate: false };
    const cached = new Set(hostPlan.cachedWheels);
    const uploads = planUploads(settings.repoDir, hostPlan.cacheDir, packagesToFetch(back).filter((p) => !cached.has(p.filename)));
    await uploadWheels(conn, hostPlan.cacheDir, uploads, { cacheExists: true });
    // The schema stays as migrate left it: the old code runs against it (unapplying needs the new code).
    const input = buildApplyInput(venv, hostPlan, back, previous, { ...settings, migrate: 'never' }, { action: 'auto-rollback', reason }, { healthcheck: false });
    const { lines } = await runHostApply(conn, { uploads, waitForUploads: false, venvs: [{ sudo: sudoFor(venv, host), input }], reload: null, reloadAnyway: false }).done;
    const pushed = lines.find((l): l is Extract<HostApplyLine, { push: unknown }> => 'push' in l);
    if (pushed && pushed.push.bad.length > 0) throw corruptUploadError(pushed.push.bad);
    const result = venvOutcome(venv, host, lines.find((l): l is VenvLine => 'venv' in l));
    const ok = result.outcome === 'deployed';
    emit({ kind: 'step:end', venv: plan.id, step: 'rollback', ok, ms: Math.round(performance.now() - started) });
    return { reason, ok, ...(ok ? {} : { message: result.message ?? 'the restore failed' }) };
  } catch (err) {
    emit({ kind: 'step:end', venv: plan.id, step: 'rollback', ok: false, ms: Math.round(performance.now() - started) });
    return { reason, ok: false, message: err instanceof Error ? err.message : String(err) };
  }
}

export function buildApplyInput(
  venv: ResolvedVenv,
  hostPlan: HostPlan,
  plan: OkPlan,
  desired: readonly ResolvedPackage[],
  settings: ApplyVenvSettings,
  record: Record<string, unknown>,
  opts: { healthcheck?: boolean; ship?: ShipInputs } = {},
): ApplyVenvInput {
  // A switch to a release still on the host runs no pip: the apply only verifies that release. A
  // receiver runs none either: its release comes from the shipped tar (`expect` is still verified).
  const receiving = Boolean(opts.ship?.ship && plan.releases);
  const switching = plan.releases?.build === 'switch';
  const installs = !switching && !receiving && (plan.create !== null || plan.changes.some((c) => c.kind !== 'remove'));
  const removals = switching || receiving ? [] : plan.changes.filter((c) => c.kind === 'remove');
  const unapply = plan.rollback?.unapplyMigrations ? plan.rollback.migrations : [];
  const healthcheck = opts.healthcheck === false ? undefined : (venv.healthcheck ?? venv.host.healthcheck);
  return {
    venv: plan.path,
    create: plan.create === null || receiving ? null : { python: plan.create },
    lockWaitSeconds: settings.lockWaitSeconds,
    holder: { user: userInfo().username, host: hostname(), pid: process.pid, startedAt: new Date().toISOString() },
    install: installs
      ? {
          requirements: pinnedRequirements(desired),
          cacheDir: hostPlan.cacheDir,
          wheels: packagesToFetch(plan).map((p) => ({ filename: p.filename, sha256: p.sha256 })),
        }
      : null,
    uninstall: removals.map((c) => c.name),
    uninstallKeys: removals.map((c) => c.key),
    expect: Object.fromEntries(desired.map((p) => [p.key, p.version])),
    migrate: venv.django ? djangoCommand(venv, plan.migrate === true && settings.migrate !== 'never') : null,
    unmigrate: unapply.map(({ app, to }) => ({ app, to })),
    reload: venv.reload ?? null,
    healthcheck: healthcheck ? healthcheckInput(healthcheck, desired) : null,
    releases: plan.releases
      ? {
          keep: plan.releases.keep,
          switchTo: plan.releases.switchTo ?? null,
          switchBack: settings.autoRollback,
          ...(opts.ship?.pack ? { pack: opts.ship.pack } : {}),
          ...(receiving ? { ship: opts.ship!.ship } : {}),
        }
      : null,
    history: {
      time: new Date().toISOString(),
      localUser: userInfo().username,
      localHost: hostname(),
      // With localHost: lets a later run tell an apply whose vdeploy is still running (it records it
      // itself) from one whose vdeploy died before recording it (reconcile-log.ts recovers that one).
      localPid: process.pid,
      packages: desired.map((p) => ({ name: p.name, version: p.version, wheel: p.filename, sha256: p.sha256 })),
      changes: plan.changes,
      ...record,
    },
  };
}

function djangoCommand(venv: ResolvedVenv, run: boolean): ApplyVenvInput['migrate'] {
  const django = venv.django!;
  // Releases: through `current`; the apply points migrate at the new release, unmigrate at the live one.
  const home = venv.releases ? posix.join(venv.path, 'current') : venv.path;
  const argv = django.manage ? [posix.join(home, 'bin', 'python'), django.manage] : [posix.join(home, 'bin', 'django-admin')];
  return { argv, ...(django.cwd ? { cwd: django.cwd } : {}), env: { ...django.env, DJANGO_SETTINGS_MODULE: django.settings }, run };
}

/** The argv prefix that runs the apply as the venv's owner when that is not the login user. */
export function sudoFor(venv: ResolvedVenv, host: ResolvedHost): string[] {
  return venv.user !== host.user ? sudoArgv(venv.user) : [];
}

/** A venv's line from the host apply script (undefined: it never answered) → the report's outcome fields. */
export function venvOutcome(venv: ResolvedVenv, host: ResolvedHost, line: VenvLine | undefined): Partial<VenvReport> & { outcome: VenvReport['outcome'] } {
  const out = line?.output;
  const full = diskFull(venv, host, [line?.stderrTail, out?.error, ...(out?.steps ?? []).map((s) => s.stderrTail)]);
  if (full && out?.outcome !== 'deployed') {
    const failedStep = out?.failedStep ?? out?.steps.find((s) => !s.ok)?.name ?? 'apply';
    return { outcome: out?.outcome === 'interrupted' ? 'interrupted' : 'failed', failedStep, ...(out ? { steps: out.steps } : {}), ...full };
  }
  if (!out) {
    const sudo = sudoFor(venv, host).length > 0;
    const refused = sudo ? sudoRefusal(line?.stderrTail ?? '', { host: host.name, login: host.user, owner: venv.user, what: 'the apply script' }) : undefined;
    if (refused) return { outcome: 'failed', failedStep: 'apply', message: `${venv.id}: ${refused.message}`, hint: refused.hint };
    return {
      outcome: 'failed',
      failedStep: 'apply',
      message: `${venv.id}: the apply script ${line ? `exited with ${line.exitCode}: ${lastLines(line.stderrTail ?? '', 5) || 'no output'}` : 'gave no answer'}`,
      hint: sudo ? `check that ${host.user} may run \`sudo -n -u ${venv.user} python3\` without a password` : "check that python3 is on the host's PATH",
    };
  }
  const report: Partial<VenvReport> & { outcome: VenvReport['outcome'] } = { outcome: out.outcome, steps: out.steps };
  if (venv.django && out.migrations) report.migrations = out.migrations;
  if (out.release) report.release = out.release;
  if (out.outcome === 'locked') {
    const holder = describeHolder(out.heldBy ?? {});
    report.failedStep = 'lock';
    report.heldBy = holder;
    Object.assign(report, lockedMessage(venv.id, holder));
  } else if (out.outcome !== 'deployed') {
    const step = out.steps.find((st) => !st.ok);
    report.failedStep = out.failedStep ?? step?.name ?? 'apply';
    const how = step?.exitCode !== null && step?.exitCode !== undefined ? ` (exit ${step.exitCode})` : '';
    const why = out.error ?? step?.stderrTail?.split('\n').slice(-5).join(' | ') ?? out.outcome;
    report.message = `${venv.id}: ${report.failedStep} failed${how}: ${why}`;
    // Releases: a failed reload or health check after the switch switched `current` back on the host.
    const back = out.release?.switchedBack;
    if (back) {
      const failed = out.steps.find((st) => st.name === 'switch-back' && !st.ok);
      report.rolledBack = { reason: `${report.failedStep} failed`, ok: back.ok, ...(back.ok ? {} : { message: `switching current back to ${out.release?.previous ?? 'nothing'} failed${failed?.stderrTail ? `: ${failed.stderrTail}` : ''}` }) };
      if (back.ok) report.outcome = 'restored';
    }
  }
  return report;
}

/**
 * A full disk on the host, whatever ran into it (python -m venv, ensurepip, pip, the history write):
 * said as such, since the command's own last line ("returned non-zero exit status 1", an EOFError
 * from a truncated file) points elsewhere.
 */
function diskFull(venv: ResolvedVenv, host: ResolvedHost, texts: ReadonlyArray<string | undefined>): Pick<VenvReport, 'message' | 'hint'> | undefined {
  const text = texts.find((t) => t !== undefined && /\[Errno 28\]|No space left on device/.test(t));
  if (text === undefined) return undefined;
  const line = text.split('\n').find((l) => /\[Errno 28\]|No space left on device/.test(l))!.trim();
  const detail = /\[Errno 28\][^\n]*/.exec(line)?.[0].replace('[Errno 28]', 'Errno 28').trim() ?? 'Errno 28 No space left on device';
  return {
    message: `${venv.id}: disk full on ${host.name} (${detail.slice(0, 200)}): free space at ${venv.path}`,
    hint: `free space on the filesystem holding ${venv.path} on ${host.name} (df ${venv.path}), then deploy again`,
  };
}

/** How a venv's successful apply reads in the report: a rollback says so, as does a migrate-only apply. */
export function successOutcome(plan: OkPlan): VenvReport['outcome'] {
  return plan.rollback ? 'rolled back' : hasChanges(plan) ? 'deployed' : 'migrated';
}
