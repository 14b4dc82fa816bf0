/**
 * `applyPlan()`: carry out the confirmed part of a plan, hosts in parallel. Per host: push the wheels
 * its cache lacks (once per host), apply each confirmed venv (one remote script per venv, under the
 * venv's lock), then run the host's reload once. A failure stops that venv only; the report says what
 * happened to every venv.
 */
import { randomBytes } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import { join, posix } from 'node:path';
import type { ResolvedConfig, ResolvedHost, ResolvedVenv } from '../config/resolve-config.js';
import { RemoteCommandError, VdeployError, lastLines } from '../errors.js';
import type { Connection } from '../remote/connection.js';
import type { HostConnector } from '../remote/connect-host.js';
import { Semaphore } from '../remote/semaphore.js';
import { appendReleaseLog, formatErrorLine, formatInstallLine } from '../wheels/release-log.js';
import { withRepoLock } from '../wheels/repo-lock.js';
import type { ResolvedPackage } from '../resolve/resolve-venv.js';
import { APPLY_SCRIPT, type ApplyScriptInput, type ApplyScriptOutput } from './apply-script.js';
import type { EventSink, VenvOutcome } from './events.js';
import { hasChanges, packagesToFetch, pinnedRequirements, wheelsToPush, type HostPlan, type PackageChange, type Plan, type VenvPlan, type VenvTarget } from './plan.js';
import { FINALIZE_UPLOADS_SCRIPT } from './push-script.js';

export type MigrateMode = 'auto' | 'always' | 'never';

export interface ApplyPlanOptions {
  connector: HostConnector;
  /** Ids of the venvs the user said yes to; venvs with changes not in it are 'declined'. */
  confirmed: ReadonlySet<string>;
  /** auto: migrate Django venvs when something changed; always; never (--no-migrate). */
  migrate?: MigrateMode;
  /** Wait this long for another deploy's lock on a venv (default 0: fail at once). */
  lockWaitSeconds?: number;
  /** Start no new venv after the first failure. */
  failFast?: boolean;
  concurrency?: number;
  onEvent?: EventSink;
  /** Aborting stops starting new work; steps already running finish and are recorded. */
  signal?: AbortSignal;
}

export interface StepReport {
  name: string;
  ok: boolean;
  exitCode: number | null;
  ms: number;
  stderrTail?: string;
}

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
}

export interface HostReport {
  name: string;
  /** Wheels uploaded to the host's cache. */
  pushed: string[];
  reload?: { ok: boolean; ms: number; message?: string };
}

export interface Report {
  venvs: VenvReport[];
  hosts: HostReport[];
  /** Every selected venv succeeded or had nothing to do (declined counts as fine). */
  ok: boolean;
  interrupted: boolean;
}

const PUSH_CONCURRENCY = 4;

type OkPlan = Extract<VenvPlan, { status: 'ok' }>;

export async function applyPlan(config: ResolvedConfig, plan: Plan, options: ApplyPlanOptions): Promise<Report> {
  const emit: EventSink = options.onEvent ?? (() => {});
  const venvById = new Map(config.venvs.map((v) => [v.id, v]));
  const hostByName = new Map(config.hosts.map((h) => [h.name, h]));
  const reports = new Map<string, VenvReport>();
  const hostReports: HostReport[] = [];
  let failed = false;
  const stopStarting = () => options.signal?.aborted || (options.failFast && failed);

  const base = (v: VenvPlan, outcome: VenvOutcome): VenvReport => ({
    id: v.id, host: v.host, user: v.user, path: v.path, outcome,
    changes: v.status === 'ok' ? v.changes : [], created: false, ms: 0, steps: [],
    ...(v.status === 'error' ? { failedStep: v.stage, message: v.message, ...(v.hint ? { hint: v.hint } : {}) } : {}),
  });
  const toApply: OkPlan[] = [];
  for (const v of plan.venvs) {
    if (v.status === 'error') reports.set(v.id, base(v, 'failed'));
    else if (!hasChanges(v)) reports.set(v.id, base(v, 'unchanged'));
    else if (!options.confirmed.has(v.id)) reports.set(v.id, base(v, 'declined'));
    else toApply.push(v);
  }
  if (plan.venvs.some((v) => v.status === 'error')) failed = true;

  const limit = new Semaphore(options.concurrency ?? config.ssh.concurrency);
  const hostsToApply = plan.hosts.filter((h) => toApply.some((v) => v.host === h.name));
  await Promise.all(
    hostsToApply.map((hostPlan) =>
      limit.run(async () => {
        const host = hostByName.get(hostPlan.name)!;
        const venvs = toApply.filter((v) => v.host === host.name);
        const hostReport: HostReport = { name: host.name, pushed: [] };
        hostReports.push(hostReport);
        const skip = (v: OkPlan, outcome: VenvOutcome, message?: string) => reports.set(v.id, { ...base(v, outcome), ...(message ? { message } : {}) });
        if (stopStarting()) return venvs.forEach((v) => skip(v, 'skipped', 'not started: the deploy was stopped'));

        let conn: Connection;
        try {
          conn = await options.connector.connect(host);
          const wheels = wheelsToPush(hostPlan, venvs);
          if (wheels.length > 0) {
            emit({ kind: 'push:start', host: host.name, wheels: wheels.map((w) => w.filename) });
            const started = performance.now();
            const bytes = await pushWheels(conn, config.wheels, hostPlan.cacheDir, wheels);
            hostReport.pushed = wheels.map((w) => w.filename);
            emit({ kind: 'push:end', host: host.name, wheels: hostReport.pushed, bytes, ms: Math.round(performance.now() - started) });
          }
        } catch (err) {
          failed = true;
          const message = `${host.name}: ${err instanceof Error ? err.message : String(err)}`;
          emit({ kind: 'host:failed', host: host.name, stage: 'push', message });
          for (const v of venvs) reports.set(v.id, { ...base(v, 'failed'), failedStep: 'push', message, ...hintOf(err) });
          return;
        }

        let deployed = 0;
        for (const v of venvs) {
          if (stopStarting()) {
            skip(v, 'skipped', options.signal?.aborted ? 'not started: the deploy was interrupted' : 'not started: an earlier venv failed (--fail-fast)');
            continue;
          }
          const report = await applyVenv(conn, venvById.get(v.id)!, host, hostPlan, v, options, emit);
          reports.set(v.id, report);
          if (report.outcome === 'deployed') deployed++;
          else failed = true;
        }
        // The host's reload runs once, after all of its venvs, and only if one of them changed.
        if (host.reload && deployed > 0) {
          emit({ kind: 'reload:start', host: host.name });
          const result = await conn.exec(['sh', '-c', host.reload], { nothrow: true });
          const ok = result.exitCode === 0;
          hostReport.reload = { ok, ms: result.ms, ...(ok ? {} : { message: `${host.name}: reload \`${host.reload}\` exited with ${result.exitCode ?? result.signal}: ${lastLines(result.stderr || result.stdout, 5)}` }) };
          emit({ kind: 'reload:end', host: host.name, ok, ms: result.ms });
          if (!ok) failed = true;
        }
      }),
    ),
  );

  const venvReports = plan.venvs.map((v) => reports.get(v.id)!);
  await recordInReleaseLog(config.wheels, venvReports, plan);
  return {
    venvs: venvReports,
    hosts: hostReports.sort((a, b) => (a.name < b.name ? -1 : 1)),
    ok: venvReports.every((r) => ['deployed', 'unchanged', 'declined'].includes(r.outcome)) && hostReports.every((h) => h.reload?.ok !== false),
    interrupted: options.signal?.aborted ?? false,
  };
}

async function applyVenv(
  conn: Connection,
  venv: ResolvedVenv,
  host: ResolvedHost,
  hostPlan: HostPlan,
  plan: OkPlan,
  options: ApplyPlanOptions,
  emit: EventSink,
): Promise<VenvReport> {
  const started = performance.now();
  emit({ kind: 'venv:start', venv: plan.id });
  const installs = plan.create !== null || plan.changes.some((c) => c.kind !== 'remove');
  const removals = plan.changes.filter((c) => c.kind === 'remove');
  const migrateMode = options.migrate ?? 'auto';
  const input: ApplyScriptInput = {
    venv: plan.path,
    create: plan.create === null ? null : { python: plan.create },
    lockWaitSeconds: options.lockWaitSeconds ?? 0,
    holder: { user: userInfo().username, host: hostname(), pid: process.pid, startedAt: new Date().toISOString() },
    install: installs
      ? {
          requirements: pinnedRequirements(plan.desired),
          cacheDir: hostPlan.cacheDir,
          wheels: packagesToFetch(plan).map((p) => ({ filename: p.filename, sha256: p.sha256 })),
        }
      : null,
    uninstall: removals.map((c) => c.name),
    uninstallKeys: removals.map((c) => c.key),
    expect: Object.fromEntries(plan.desired.map((p) => [p.key, p.version])),
    migrate: venv.django && migrateMode !== 'never' ? migrateCommand(venv) : null,
    reload: venv.reload ?? null,
    history: {
      action: 'deploy',
      time: new Date().toISOString(),
      localUser: userInfo().username,
      localHost: hostname(),
      packages: plan.desired.map(packageRecord),
      changes: plan.changes,
    },
  };
  const sudo = venv.user !== host.user ? ['sudo', '-n', '-u', venv.user] : [];
  const report: VenvReport = {
    id: plan.id, host: plan.host, user: plan.user, path: plan.path, outcome: 'failed',
    changes: plan.changes, created: plan.create !== null, ms: 0, steps: [],
  };
  try {
    const result = await conn.exec([...sudo, 'python3', '-I', '-c', APPLY_SCRIPT], { stdin: JSON.stringify(input), nothrow: true });
    const out = parseApplyOutput(result.stdout);
    if (!out) {
      report.failedStep = 'apply';
      report.message = `${plan.id}: the apply script ${result.signal ? `was killed by ${result.signal}` : `exited with ${result.exitCode}`}: ${lastLines(stripProgress(result.stderr), 5) || 'no output'}`;
      report.hint = sudo.length > 0 ? `check that ${host.user} may run \`sudo -n -u ${venv.user} python3\` without a password` : 'check that python3 is on the host\'s PATH';
    } else {
      report.steps = out.steps;
      for (const s of out.steps) emit({ kind: 'step:end', venv: plan.id, step: s.name, ok: s.ok, ms: s.ms });
      report.outcome = out.outcome;
      if (out.outcome === 'locked') {
        const who = out.heldBy ?? {};
        report.failedStep = 'lock';
        report.message = `${plan.id}: another deploy holds the lock (${String(who.user ?? '?')}@${String(who.host ?? '?')}, pid ${String(who.pid ?? '?')}, since ${String(who.startedAt ?? '?')})`;
        report.hint = 'wait for it to finish, or pass --lock-wait SECONDS to wait for it';
      } else if (out.outcome !== 'deployed') {
        const step = out.steps.find((s) => !s.ok);
        report.failedStep = out.failedStep ?? step?.name ?? 'apply';
        const how = step?.exitCode !== null && step?.exitCode !== undefined ? ` (exit ${step.exitCode})` : '';
        const why = out.error ?? step?.stderrTail?.split('\n').slice(-5).join(' | ') ?? out.outcome;
        report.message = `${plan.id}: ${report.failedStep} failed${how}: ${why}`;
      }
    }
  } catch (err) {
    report.failedStep = 'apply';
    report.message = `${plan.id}: ${err instanceof Error ? err.message : String(err)}`;
    Object.assign(report, hintOf(err));
  }
  report.ms = Math.round(performance.now() - started);
  emit({ kind: 'venv:end', venv: plan.id, outcome: report.outcome, ms: report.ms });
  return report;
}

function migrateCommand(venv: ResolvedVenv): ApplyScriptInput['migrate'] {
  const django = venv.django!;
  const argv = django.manage
    ? [posix.join(venv.path, 'bin', 'python'), django.manage, 'migrate', '--noinput']
    : [posix.join(venv.path, 'bin', 'django-admin'), 'migrate', '--noinput'];
  return {
    argv,
    ...(django.cwd ? { cwd: django.cwd } : {}),
    env: { ...django.env, DJANGO_SETTINGS_MODULE: django.settings },
  };
}

/**
 * Upload each wheel to a temporary name in the cache, then one remote call checks every sha256 and
 * renames the good ones into place: an interrupted upload never leaves a partial wheel under its
 * final name, and the next run (seeing it missing) uploads it again.
 */
async function pushWheels(conn: Connection, repoDir: string, cacheDir: string, wheels: readonly ResolvedPackage[]): Promise<number> {
  await conn.exec(['mkdir', '-p', '--', cacheDir]);
  const suffix = randomBytes(6).toString('hex');
  const uploads = wheels.map((w) => ({ local: join(repoDir, w.filename), tmp: posix.join(cacheDir, `.${w.filename}.tmp-${suffix}`), final: posix.join(cacheDir, w.filename), sha256: w.sha256 }));
  const limit = new Semaphore(PUSH_CONCURRENCY);
  await Promise.all(uploads.map((u) => limit.run(() => conn.put(u.local, u.tmp, { mode: 0o644 }))));
  const result = await conn.exec(['python3', '-I', '-c', FINALIZE_UPLOADS_SCRIPT], {
    stdin: JSON.stringify(uploads.map(({ tmp, final, sha256 }) => ({ tmp, final, sha256 }))),
    nothrow: true,
  });
  const out = safeJson<{ bad: Array<{ final: string; got: string }>; bytes: number }>(result.stdout);
  if (result.exitCode !== 0 || !out) throw new RemoteCommandError('finalize wheel uploads', result, { hint: 'check free space and permissions of the wheel cache directory' });
  if (out.bad.length > 0) {
    throw new VdeployError(`uploaded wheel${out.bad.length > 1 ? 's' : ''} arrived corrupted: ${out.bad.map((b) => posix.basename(b.final)).join(', ')}`, {
      hint: 'run the deploy again; if it repeats, check the network and the disk of the host',
    });
  }
  return out.bytes;
}

async function recordInReleaseLog(repoDir: string, reports: readonly VenvReport[], plan: Plan): Promise<void> {
  const time = new Date();
  const lines: string[] = [];
  for (const r of reports) {
    const p = plan.venvs.find((v) => v.id === r.id);
    if (r.outcome === 'deployed' && p?.status === 'ok') {
      const changed = new Set(r.changes.filter((c) => c.kind !== 'remove').map((c) => c.key));
      for (const pkg of p.desired) {
        if (r.created || changed.has(pkg.key)) lines.push(formatInstallLine({ host: r.host, path: r.path, filename: pkg.filename, time }));
      }
    } else if (r.outcome === 'failed' || r.outcome === 'locked' || r.outcome === 'interrupted') {
      // Plan-stage failures changed nothing on the host; only failed applies are history.
      if (p?.status === 'ok') lines.push(formatErrorLine(`${r.host}:${r.path}: ${r.failedStep ?? r.outcome}: ${r.message ?? r.outcome}`));
    }
  }
  if (lines.length > 0) await withRepoLock(repoDir, () => appendReleaseLog(repoDir, lines));
}

function packageRecord(p: ResolvedPackage) {
  return { name: p.name, version: p.version, wheel: p.filename, sha256: p.sha256 };
}

function parseApplyOutput(stdout: string): ApplyScriptOutput | undefined {
  const out = safeJson<ApplyScriptOutput>(stdout);
  return out && typeof out.outcome === 'string' && Array.isArray(out.steps) ? out : undefined;
}

function safeJson<T>(text: string): T | undefined {
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}

function stripProgress(stderr: string): string {
  return stderr.split('\n').filter((l) => !l.startsWith('@vdeploy ')).join('\n');
}

function hintOf(err: unknown): { hint?: string } {
  return err instanceof VdeployError && err.hint ? { hint: err.hint } : {};
}
