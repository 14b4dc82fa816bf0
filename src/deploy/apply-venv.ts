/**
 * Applying one venv's plan on its host: one run of the apply script (under the venv's lock), and —
 * when migrate, reload or the health check failed after the new packages went in — a second run that
 * restores the pre-deploy package set and reloads, unless automatic rollback is off.
 */
import { hostname, userInfo } from 'node:os';
import { posix } from 'node:path';
import type { ResolvedHost, ResolvedVenv } from '../config/resolve-config.js';
import { hintOf, lastLines } from '../errors.js';
import type { Connection } from '../remote/connection.js';
import { pythonScriptArgv } from '../remote/python-script.js';
import type { ResolvedPackage } from '../resolve/resolve-venv.js';
import { APPLY_SCRIPT, type ApplyScriptInput, type ApplyScriptOutput } from './apply-script.js';
import type { EventSink } from './events.js';
import { diffPackages, packagesToFetch, pinnedRequirements, type HostPlan, type VenvPlan } from './plan.js';
import { pushWheels, safeJson } from './push-wheels.js';
import type { VenvReport } from './report.js';

export type MigrateMode = 'auto' | 'always' | 'never';

export interface ApplyVenvSettings {
  /** auto: migrate Django venvs when something changed; always; never (--no-migrate). */
  migrate: MigrateMode;
  lockWaitSeconds: number;
  /** Restore the pre-deploy set when migrate, reload or the health check fails (default on). */
  autoRollback: boolean;
  /** Local wheel repository, for wheels a restore needs that the host's cache lacks. */
  repoDir: string;
}

type OkPlan = Extract<VenvPlan, { status: 'ok' }>;

/** Steps after which the new packages are in place, so putting the old ones back makes sense. */
const RESTORABLE_FAILURES = new Set(['showmigrations', 'migrate', 'reload', 'healthcheck']);

export async function applyVenv(
  conn: Connection,
  venv: ResolvedVenv,
  host: ResolvedHost,
  hostPlan: HostPlan,
  plan: OkPlan,
  settings: ApplyVenvSettings,
  emit: EventSink,
): Promise<VenvReport> {
  const started = performance.now();
  emit({ kind: 'venv:start', venv: plan.id });
  const report: VenvReport = {
    id: plan.id, host: plan.host, user: plan.user, path: plan.path, outcome: 'failed',
    changes: plan.changes, created: plan.create !== null, ms: 0, steps: [],
  };
  const action = plan.rollback ? 'rollback' : 'deploy';
  const input = buildInput(venv, hostPlan, plan, plan.desired, settings, {
    action,
    ...(plan.rollback?.undoes !== undefined ? { undoes: plan.rollback.undoes } : {}),
    ...(plan.rollback?.restores !== undefined ? { restores: plan.rollback.restores } : {}),
  });
  const run = await runApplyScript(conn, venv, host, input);
  Object.assign(report, run.report);
  for (const s of report.steps) emit({ kind: 'step:end', venv: plan.id, step: s.name, ok: s.ok, ms: s.ms });

  if (report.outcome === 'failed' && report.failedStep && RESTORABLE_FAILURES.has(report.failedStep) && settings.autoRollback && plan.restore) {
    const reason = `${report.failedStep} failed`;
    if ('error' in plan.restore) {
      report.rolledBack = { reason, ok: false, message: `cannot restore the previous set: ${plan.restore.error}` };
    } else {
      report.rolledBack = await restore(conn, venv, host, hostPlan, plan, plan.restore.packages, settings, reason, emit);
      if (report.rolledBack.ok) report.outcome = 'rolled-back';
    }
  }
  report.ms = Math.round(performance.now() - started);
  emit({ kind: 'venv:end', venv: plan.id, outcome: report.outcome, ms: report.ms });
  return report;
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
    const back: OkPlan = { ...plan, create: null, ...diff, desired: previous, installed: installedNow };
    const cached = new Set(hostPlan.cachedWheels);
    const missing = packagesToFetch(back).filter((p) => !cached.has(p.filename));
    if (missing.length > 0) await pushWheels(conn, settings.repoDir, hostPlan.cacheDir, missing);
    // The schema stays as migrate left it: the old code runs against it (unapplying needs the new code).
    const input = buildInput(venv, hostPlan, back, previous, { ...settings, migrate: 'never' }, { action: 'auto-rollback', reason }, { healthcheck: false });
    const run = await runApplyScript(conn, venv, host, input);
    const ok = run.report.outcome === 'deployed';
    emit({ kind: 'step:end', venv: plan.id, step: 'rollback', ok, ms: Math.round(performance.now() - started) });
    return { reason, ok, ...(ok ? {} : { message: run.report.message ?? 'the restore failed' }) };
  } catch (err) {
    emit({ kind: 'step:end', venv: plan.id, step: 'rollback', ok: false, ms: Math.round(performance.now() - started) });
    return { reason, ok: false, message: err instanceof Error ? err.message : String(err) };
  }
}

function buildInput(
  venv: ResolvedVenv,
  hostPlan: HostPlan,
  plan: OkPlan,
  desired: readonly ResolvedPackage[],
  settings: ApplyVenvSettings,
  record: Record<string, unknown>,
  opts: { healthcheck?: boolean } = {},
): ApplyScriptInput {
  const installs = plan.create !== null || plan.changes.some((c) => c.kind !== 'remove');
  const removals = plan.changes.filter((c) => c.kind === 'remove');
  const unapply = plan.rollback?.unapplyMigrations ? plan.rollback.migrations : [];
  const healthcheck = opts.healthcheck === false ? undefined : (venv.healthcheck ?? venv.host.healthcheck);
  return {
    venv: plan.path,
    create: plan.create === null ? null : { python: plan.create },
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
    migrate: venv.django ? djangoCommand(venv, settings.migrate !== 'never') : null,
    unmigrate: unapply.map(({ app, to }) => ({ app, to })),
    reload: venv.reload ?? null,
    healthcheck: healthcheck
      ? {
          ...(healthcheck.command ? { command: healthcheck.command } : {}),
          ...(healthcheck.url ? { url: healthcheck.url } : {}),
          expectStatus: healthcheck.expectStatus,
          timeout: healthcheck.timeout,
          retries: healthcheck.retries,
          interval: healthcheck.interval,
        }
      : null,
    history: {
      time: new Date().toISOString(),
      localUser: userInfo().username,
      localHost: hostname(),
      packages: desired.map((p) => ({ name: p.name, version: p.version, wheel: p.filename, sha256: p.sha256 })),
      changes: plan.changes,
      ...record,
    },
  };
}

function djangoCommand(venv: ResolvedVenv, run: boolean): ApplyScriptInput['migrate'] {
  const django = venv.django!;
  const argv = django.manage ? [posix.join(venv.path, 'bin', 'python'), django.manage] : [posix.join(venv.path, 'bin', 'django-admin')];
  return { argv, ...(django.cwd ? { cwd: django.cwd } : {}), env: { ...django.env, DJANGO_SETTINGS_MODULE: django.settings }, run };
}

/** One run of the apply script, as the venv's owner; its output turned into report fields. */
async function runApplyScript(conn: Connection, venv: ResolvedVenv, host: ResolvedHost, input: ApplyScriptInput): Promise<{ report: Partial<VenvReport> & { outcome: VenvReport['outcome'] } }> {
  const sudo = venv.user !== host.user ? ['sudo', '-n', '-u', venv.user] : [];
  try {
    const result = await conn.exec([...sudo, ...pythonScriptArgv('vdeploy-apply', APPLY_SCRIPT)], { stdin: JSON.stringify(input), nothrow: true });
    const out = parseApplyOutput(result.stdout);
    if (!out) {
      return {
        report: {
          outcome: 'failed',
          failedStep: 'apply',
          message: `${venv.id}: the apply script ${result.signal ? `was killed by ${result.signal}` : `exited with ${result.exitCode}`}: ${lastLines(stripProgress(result.stderr), 5) || 'no output'}`,
          hint: sudo.length > 0 ? `check that ${host.user} may run \`sudo -n -u ${venv.user} python3\` without a password` : "check that python3 is on the host's PATH",
        },
      };
    }
    const report: Partial<VenvReport> & { outcome: VenvReport['outcome'] } = { outcome: out.outcome, steps: out.steps };
    if (out.outcome === 'locked') {
      const who = out.heldBy ?? {};
      report.failedStep = 'lock';
      report.message = `${venv.id}: another deploy holds the lock (${String(who.user ?? '?')}@${String(who.host ?? '?')}, pid ${String(who.pid ?? '?')}, since ${String(who.startedAt ?? '?')})`;
      report.hint = 'wait for it to finish, or pass --lock-wait SECONDS to wait for it';
    } else if (out.outcome !== 'deployed') {
      const step = out.steps.find((s) => !s.ok);
      report.failedStep = out.failedStep ?? step?.name ?? 'apply';
      const how = step?.exitCode !== null && step?.exitCode !== undefined ? ` (exit ${step.exitCode})` : '';
      const why = out.error ?? step?.stderrTail?.split('\n').slice(-5).join(' | ') ?? out.outcome;
      report.message = `${venv.id}: ${report.failedStep} failed${how}: ${why}`;
    }
    return { report };
  } catch (err) {
    return {
      report: {
        outcome: 'failed',
        failedStep: 'apply',
        message: `${venv.id}: ${err instanceof Error ? err.message : String(err)}`,
        ...hintOf(err),
      },
    };
  }
}

function parseApplyOutput(stdout: string): ApplyScriptOutput | undefined {
  const out = safeJson<ApplyScriptOutput>(stdout);
  return out && typeof out.outcome === 'string' && Array.isArray(out.steps) ? out : undefined;
}

function stripProgress(stderr: string): string {
  return stderr.split('\n').filter((l) => !l.startsWith('@vdeploy ')).join('\n');
}
