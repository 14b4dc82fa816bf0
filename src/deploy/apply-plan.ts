/**
 * `applyPlan()`: carry out the confirmed part of a plan, hosts in parallel. Per host: push the wheels
 * its cache lacks (once per host), apply each confirmed venv in turn (each under its venv's lock),
 * then run the host's reload once — one remote command for all of it when nothing fails. A failure
 * stops that venv only; the report says what happened to every venv. Each host's part: apply-host.ts.
 * Build once, ship (issue 16): a host whose venvs receive a shipped release starts once its groups'
 * builders packed it (ship-host.ts, ship-apply.ts); the rest start at once.
 */
import type { ResolvedConfig } from '../config/resolve-config.js';
import type { HostConnector } from '../remote/connect-host.js';
import { Semaphore } from '../remote/semaphore.js';
import { appendReleaseLog, formatErrorLine, formatInstallLine } from '../wheels/release-log.js';
import { withRepoLock } from '../wheels/repo-lock.js';
import { DEFAULT_CACHE_MEGABYTES, pruneArtifacts } from './artifact-cache.js';
import { shipHost } from './ship-host.js';
import { confirmedFiles, filesWorkFor } from './files-work.js';
import { Shipping } from './ship-apply.js';
import type { MigrateMode } from './apply-venv.js';
import { SUCCESS_OUTCOMES, type EventSink, type VenvOutcome } from './events.js';
import { needsApply, type Plan, type VenvPlan } from './plan.js';
import type { HostReport, Report, VenvReport } from './report.js';

export type { MigrateMode } from './apply-venv.js';
export type { HostReport, Report, StepReport, VenvReport } from './report.js';

export interface ApplyPlanOptions {
  connector: HostConnector;
  /**
   * Ids of the venvs the user said yes to; venvs with changes not in it are 'declined'. A host's config
   * files are applied when `files:<host>` (filesId) is in it.
   */
  confirmed: ReadonlySet<string>;
  /** never (--no-migrate) overrides the plan's migrate; auto and always are decided when planning (planDeploy's `migrate`). */
  migrate?: MigrateMode;
  /** Wait this long for another deploy's lock on a venv (default 0: fail at once). */
  lockWaitSeconds?: number;
  /** Start no new venv after the first failure. */
  failFast?: boolean;
  /** Restore the pre-deploy set when migrate, reload or the health check fails (default true). */
  autoRollback?: boolean;
  concurrency?: number;
  onEvent?: EventSink;
  /** Aborting stops starting new work; steps already running finish and are recorded. */
  signal?: AbortSignal;
  /**
   * Shared by the applies of one deploy run in parts (deploy-pipelined.ts): a failure in any part
   * stops --fail-fast in all of them. Default: this call's own.
   */
  failure?: { failed: boolean };
  /** Hosts applied at once across those parts (default: a Semaphore of `concurrency`). */
  limit?: Semaphore;
  /** Trim the local artifact cache at the end (default true; a part that ships nothing leaves it to the part that does). */
  pruneCache?: boolean;
}

type OkPlan = Extract<VenvPlan, { status: 'ok' }>;

export async function applyPlan(config: ResolvedConfig, plan: Plan, options: ApplyPlanOptions): Promise<Report> {
  const emit: EventSink = options.onEvent ?? (() => {});
  const venvById = new Map(config.venvs.map((v) => [v.id, v]));
  const hostByName = new Map(config.hosts.map((h) => [h.name, h]));
  const reports = new Map<string, VenvReport>();
  const hostReports: HostReport[] = [];
  const failure = options.failure ?? { failed: false };
  const stopStarting = () => Boolean(options.signal?.aborted || (options.failFast && failure.failed));

  const base = (v: VenvPlan, outcome: VenvOutcome): VenvReport => ({
    id: v.id, host: v.host, user: v.user, path: v.path, outcome,
    changes: v.status === 'ok' ? v.changes : [], created: false, ms: 0, steps: [],
    ...(v.status === 'error' ? { failedStep: v.stage, message: v.message, ...(v.hint ? { hint: v.hint } : {}) } : {}),
  });
  const toApply: OkPlan[] = [];
  // A host whose files could not be planned (facts unreadable, a directory where a file goes) fails,
  // and nothing is applied there: its venvs' new code would run with the old config.
  const filesFailed = new Map(plan.hosts.flatMap((h) => (h.files?.error ? [[h.name, h.files.error] as const] : [])));
  for (const [name, error] of filesFailed) hostReports.push({ name, pushed: [], files: { ok: false, written: [], meta: [], removed: [], unchanged: 0, handlers: [], pending: [], message: error.message, ...(error.hint ? { hint: error.hint } : {}) } });
  for (const v of plan.venvs) {
    if (v.status === 'error') reports.set(v.id, base(v, 'failed'));
    else if (filesFailed.has(v.host) && needsApply(v)) reports.set(v.id, { ...base(v, 'skipped'), message: `${v.id}: not started: the files of ${v.host} could not be planned` });
    else if (!needsApply(v)) reports.set(v.id, base(v, 'unchanged'));
    else if (!options.confirmed.has(v.id)) reports.set(v.id, base(v, 'declined'));
    else toApply.push(v);
  }
  if (plan.venvs.some((v) => v.status === 'error') || filesFailed.size > 0) failure.failed = true;

  const settings = {
    migrate: options.migrate ?? 'auto',
    lockWaitSeconds: options.lockWaitSeconds ?? 0,
    autoRollback: options.autoRollback ?? true,
    repoDir: config.wheels,
  } as const;
  const limit = options.limit ?? new Semaphore(options.concurrency ?? config.ssh.concurrency);
  const shipping = new Shipping(plan, toApply, emit, options.signal);
  const hostsToApply = plan.hosts.filter((h) => toApply.some((v) => v.host === h.name) || confirmedFiles(h, options.confirmed));
  const hostCtx = {
    settings,
    venvById,
    emit,
    signal: options.signal,
    stopStarting,
    skipReason: () => (options.signal?.aborted ? 'not started: the deploy was interrupted' : 'not started: an earlier venv failed (--fail-fast)'),
    onFailure: () => {
      failure.failed = true;
    },
    base,
  };
  await Promise.all(
    hostsToApply.map(async (hostPlan) => {
      const host = hostByName.get(hostPlan.name)!;
      const venvs = toApply.filter((v) => v.host === host.name);
      const files = confirmedFiles(hostPlan, options.confirmed) ? filesWorkFor(hostPlan.files) : undefined;
      const done = await shipHost({ host, hostPlan, venvs, limit, shipping, ctx: hostCtx, connect: () => options.connector.connect(host), onConnectFailed: () => (failure.failed = true), ...(files ? { files } : {}) });
      hostReports.push(done.host);
      for (const r of done.reports) reports.set(r.id, r);
    }),
  );
  await shipping.drain();
  // The cache is an optimization: pruning it never fails a deploy.
  if (options.pruneCache !== false) await pruneArtifacts({ megabytes: config.ship?.cacheMegabytes ?? DEFAULT_CACHE_MEGABYTES }).catch(() => undefined);

  const venvReports = plan.venvs.map((v) => reports.get(v.id)!);
  await recordInReleaseLog(config.wheels, venvReports, plan);
  return {
    venvs: venvReports,
    hosts: hostReports.sort((a, b) => (a.name < b.name ? -1 : 1)),
    ok: venvReports.every((r) => SUCCESS_OUTCOMES.has(r.outcome)) && hostReports.every((h) => h.reload?.ok !== false && h.files?.ok !== false),
    interrupted: options.signal?.aborted ?? false,
    bytesSent: { ...shipping.bytesSent },
  };
}

async function recordInReleaseLog(repoDir: string, reports: readonly VenvReport[], plan: Plan): Promise<void> {
  const time = new Date();
  const lines: string[] = [];
  for (const r of reports) {
    const p = plan.venvs.find((v) => v.id === r.id);
    if ((r.outcome === 'deployed' || r.outcome === 'rolled back') && p?.status === 'ok') {
      const changed = new Set(r.changes.filter((c) => c.kind !== 'remove').map((c) => c.key));
      for (const pkg of p.desired) {
        if (r.created || changed.has(pkg.key)) lines.push(formatInstallLine({ host: r.host, path: r.path, filename: pkg.filename, time }));
      }
    } else if (r.outcome === 'failed' || r.outcome === 'locked' || r.outcome === 'interrupted' || r.outcome === 'restored') {
      // Plan-stage failures changed nothing on the host; only failed applies are history.
      if (p?.status === 'ok') lines.push(formatErrorLine(`${r.host}:${r.path}: ${r.failedStep ?? r.outcome}: ${r.message ?? r.outcome}`));
    }
  }
  if (lines.length > 0) await withRepoLock(repoDir, () => appendReleaseLog(repoDir, lines));
}

