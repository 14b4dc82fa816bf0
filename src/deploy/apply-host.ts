/**
 * One host's share of `applyPlan()`: upload the wheels its cache lacks, apply its confirmed venvs
 * one after another and run its reload — normally all in ONE remote command (vdeploy_remote/host_apply.py),
 * started while the uploads are still going so its start-up overlaps them.
 *
 * The script stops after a venv that failed; then the failed venv is restored here if it should be
 * (before anything else happens on the host, exactly as when venvs ran one command each), and a new
 * run takes the venvs that are left. With config files, the venvs that held before their reload for
 * the files (host_apply.py) reload after them, and more than one of those may fail: each is restored,
 * in order. Ctrl-C (the abort signal) says "stop" to the running script:
 * the venv in progress finishes and is recorded, nothing new starts.
 */
import type { ResolvedHost, ResolvedVenv } from '../config/resolve-config.js';
import { hintOf } from '../errors.js';
import type { Connection } from '../remote/connection.js';
import type { HostApplyLine } from './apply-contract.js';
import { applyInputFor, restoreIfNeeded, successOutcome, sudoFor, venvOutcome, type ApplyVenvSettings } from './apply-venv.js';
import type { EventSink, VenvOutcome } from './events.js';
import { wheelsToPush, type HostPlan, type VenvPlan } from './plan.js';
import type { HostReport, VenvReport } from './report.js';
import { runHostApply } from './run-host-apply.js';
import type { ShipInputs } from './apply-venv.js';
import { corruptUploadError, planUploads, uploadWheels, type Upload } from './upload-wheels.js';
import { filesReport, notApplied, type FilesWork } from './files-work.js';

type OkPlan = Extract<VenvPlan, { status: 'ok' }>;

export interface ApplyHostContext {
  settings: ApplyVenvSettings;
  venvById: ReadonlyMap<string, ResolvedVenv>;
  emit: EventSink;
  signal: AbortSignal | undefined;
  /** Whether to start no new venv (interrupted, or --fail-fast after a failure anywhere). */
  stopStarting: () => boolean;
  /** Why nothing new starts, for the skipped venvs' reports. */
  skipReason: () => string;
  /** A venv failed: --fail-fast stops everywhere. */
  onFailure: () => void;
  /** A blank report for a venv that was not applied. */
  base: (v: OkPlan, outcome: VenvOutcome) => VenvReport;
  /** Build once, ship (ship-apply.ts): hooks for one run of the host; absent, a run is as without shipping. */
  ship?: ApplyHostShip;
}

export interface ApplyHostShip {
  /** A builder's pack request or a receiver's tar. */
  inputs: (v: OkPlan) => ShipInputs | undefined;
  /** The venvs that install with pip (their wheels are pushed); receivers are not among them. */
  pushFor: readonly OkPlan[];
  /** Tars uploaded beside the wheels, checked and renamed by the host like them; `send` uploads them. */
  uploads: readonly Upload[];
  send: (conn: Connection) => Promise<void>;
  /** Leave the reload to a later run on this host; a later run says how many venvs deployed before it. */
  deferReload?: boolean;
  deployedBefore?: number;
  /** A venv's answer (a builder's carries its pack). */
  onAnswer?: (v: OkPlan, report: VenvReport) => void;
  /** Whether this failed venv is applied again (a failed receive): then its failure and venv:end wait for that. */
  retried?: (v: OkPlan, report: VenvReport) => boolean;
  /** The wheels pushed, once the host confirmed them. */
  onPushed?: (uploads: readonly Upload[]) => void;
}

/**
 * `files`: the host's confirmed config files, applied by the script after its venvs and before the
 * reload (never by a run that leaves the reload to a later one); until the script answers for them
 * they go with each run on the host.
 */
export async function applyHost(
  conn: Connection,
  host: ResolvedHost,
  hostPlan: HostPlan,
  venvs: readonly OkPlan[],
  ctx: ApplyHostContext,
  files?: FilesWork,
): Promise<{ reports: VenvReport[]; host: HostReport; deployed: number }> {
  const { emit, settings } = ctx;
  const hostReport: HostReport = { name: host.name, pushed: [] };
  const reports = new Map<string, VenvReport>();
  const wheels = wheelsToPush(hostPlan, ctx.ship?.pushFor ?? venvs);
  const wheelUploads = planUploads(settings.repoDir, hostPlan.cacheDir, wheels);
  let uploads: Upload[] = [...wheelUploads, ...(ctx.ship?.uploads ?? [])];
  const pushStarted = performance.now();
  if (wheelUploads.length > 0) emit({ kind: 'push:start', host: host.name, wheels: wheels.map((w) => w.filename) });
  const reload = ctx.ship?.deferReload ? undefined : host.reload;

  let pending = [...venvs];
  let deployed = ctx.ship?.deployedBefore ?? 0;
  let reloadDone = false;
  // The files go with the run that does the reload: never with one that defers it.
  const filesWork = ctx.ship?.deferReload ? undefined : files;
  let filesDone = filesWork === undefined;
  const filesNotRun = (message: string) => {
    if (filesDone) return;
    filesDone = true;
    hostReport.files = notApplied(filesWork!, message);
  };
  while (pending.length > 0 || (reload && deployed > 0 && !reloadDone) || !filesDone) {
    if (!filesDone && ctx.stopStarting()) {
      filesNotRun(`${host.name}: files ${ctx.skipReason()}`);
      continue;
    }
    if (pending.length > 0 && ctx.stopStarting()) {
      for (const v of pending) reports.set(v.id, { ...ctx.base(v, 'skipped'), message: ctx.skipReason() });
      pending = [];
      continue;
    }
    const batch = pending;
    const inputs = batch.map((v) => {
      const venv = ctx.venvById.get(v.id)!;
      return { sudo: sudoFor(venv, host), input: applyInputFor(venv, hostPlan, v, settings, ctx.ship?.inputs(v)) };
    });
    const started = new Map<number, number>();
    const sendFiles = !filesDone;
    let filesStarted: number | undefined;
    const startFiles = () => {
      if (!sendFiles || filesStarted !== undefined) return;
      filesStarted = performance.now();
      emit({ kind: 'files:start', host: host.name });
    };
    // Set by the line handler: the venvs that did not deploy, in venv order — the one the script stopped
    // after, and any that failed their reload or health check after the host's files (they held for them).
    const halted: Array<{ plan: OkPlan; report: VenvReport }> = [];
    let pushError: unknown;
    const run = runHostApply(
      conn,
      { uploads: uploads.map(({ tmp, final, sha256 }) => ({ tmp, final, sha256 })), waitForUploads: uploads.length > 0, venvs: inputs, reload: reload ?? null, reloadAnyway: deployed > 0, files: sendFiles ? filesWork!.input : null },
      {
        onProgress: (p) => {
          if ('reload' in p) return emit({ kind: 'reload:start', host: host.name });
          if ('files' in p) return startFiles();
          const v = batch[p.venv];
          if (!v) return;
          if (p.phase === 'venv-start') {
            started.set(p.venv, performance.now());
            emit({ kind: 'venv:start', venv: v.id });
          } else if (p.phase === 'start') {
            emit({ kind: 'step:start', venv: v.id, step: p.step });
          } else if (p.phase === 'hold') {
            emit({ kind: 'venv:hold', venv: v.id });
          }
        },
        onLine: (line) => {
          if ('push' in line) {
            if (line.push.bad.length > 0) pushError = corruptUploadError(line.push.bad);
            else {
              hostReport.pushed = wheels.map((w) => w.filename);
              ctx.ship?.onPushed?.(wheelUploads);
              if (wheelUploads.length > 0) emit({ kind: 'push:end', host: host.name, wheels: hostReport.pushed, bytes: line.push.bytes, ms: Math.round(performance.now() - pushStarted) });
            }
          } else if ('files' in line) {
            startFiles();
            filesDone = true;
            const report = filesReport(host.name, filesWork!, line);
            hostReport.files = report;
            emit({ kind: 'files:end', host: host.name, ok: report.ok, written: report.written.length + report.meta.length + report.removed.length, handlers: report.handlers.length, ms: Math.round(performance.now() - (filesStarted ?? performance.now())) });
            if (!report.ok) ctx.onFailure();
          } else if ('venv' in line) {
            const v = batch[line.venv];
            if (!v) return;
            const report = venvReport(ctx, v, venvOutcome(ctx.venvById.get(v.id)!, host, line), started.get(line.venv));
            reports.set(v.id, report);
            for (const s of report.steps) emit({ kind: 'step:end', venv: v.id, step: s.name, ok: s.ok, ms: s.ms });
            ctx.ship?.onAnswer?.(v, report);
            if (report.outcome === 'deployed') {
              report.outcome = successOutcome(v);
              deployed++;
              emit({ kind: 'venv:end', venv: v.id, outcome: report.outcome, ms: report.ms });
            } else {
              // Its venv:end waits for the restore, if there is one.
              halted.push({ plan: v, report });
              // A receive that failed is applied again with pip (ship-host.ts): not a failure yet.
              if (!ctx.ship?.retried?.(v, report)) ctx.onFailure();
            }
          } else if ('reload' in line) {
            reloadDone = true;
            const { ok, exitCode, ms, tail } = line.reload;
            hostReport.reload = { ok, ms, ...(ok ? {} : { message: `${host.name}: reload \`${host.reload}\` exited with ${exitCode}: ${tail}` }) };
            emit({ kind: 'reload:end', host: host.name, ok, ms });
            if (!ok) ctx.onFailure();
          }
        },
      },
    );
    const onAbort = () => run.stop();
    ctx.signal?.addEventListener('abort', onAbort, { once: true });
    if (ctx.signal?.aborted) run.stop();
    if (uploads.length > 0) {
      const artifacts = ctx.ship?.uploads.length ? ctx.ship.send(conn) : Promise.resolve();
      Promise.all([uploadWheels(conn, hostPlan.cacheDir, uploads.slice(0, wheelUploads.length), { cacheExists: hostPlan.cachedWheels.length > 0 }), artifacts]).then(
        () => run.uploaded(),
        (err: unknown) => {
          pushError ??= err;
          run.stop();
        },
      );
    }
    let outcome: Awaited<typeof run.done> | undefined;
    try {
      outcome = await run.done;
    } catch (err) {
      pushError ??= uploads.length > 0 && !hostReport.pushed.length ? err : undefined;
      // The connection is gone: whatever this run had not answered for failed with it.
      const message = `${host.name}: ${err instanceof Error ? err.message : String(err)}`;
      if (!pushError) {
        for (const v of batch) if (!reports.has(v.id)) reports.set(v.id, { ...ctx.base(v, 'failed'), failedStep: 'apply', message, ...hintOf(err) });
        filesNotRun(`${message} (the files' apply, if it started, left what it wrote; its handlers not run are pending)`);
        ctx.onFailure();
        return { reports: venvs.map((v) => reports.get(v.id)!), host: hostReport, deployed };
      }
    } finally {
      ctx.signal?.removeEventListener('abort', onAbort);
    }
    uploads = [];
    if (pushError !== undefined) {
      const message = `${host.name}: ${pushError instanceof Error ? pushError.message : String(pushError)}`;
      emit({ kind: 'host:failed', host: host.name, stage: 'push', message });
      for (const v of venvs) reports.set(v.id, { ...ctx.base(v, 'failed'), failedStep: 'push', message, ...hintOf(pushError) });
      filesNotRun(`${host.name}: files not applied: the push failed`);
      ctx.onFailure();
      return { reports: venvs.map((v) => reports.get(v.id)!), host: hostReport, deployed };
    }

    const answered = outcome!.lines.filter((l): l is Extract<HostApplyLine, { venv: number }> => 'venv' in l).length;
    pending = batch.slice(answered);
    if (halted.length > 0) {
      for (const { plan, report } of halted) {
        await restoreIfNeeded(conn, ctx.venvById.get(plan.id)!, host, hostPlan, plan, settings, report, emit);
        report.ms = Math.round(performance.now() - (started.get(batch.indexOf(plan)) ?? performance.now()));
        if (!ctx.ship?.retried?.(plan, report)) {
          emit({ kind: 'venv:end', venv: plan.id, outcome: report.outcome, ms: report.ms });
          // New config for code that did not deploy could break what runs: the files wait for a run where every
          // venv deploys (a no-op when they ran already, before the reload this venv failed).
          filesNotRun(`${host.name}: files not applied: ${plan.id} failed`);
        }
      }
    } else if (outcome!.done?.stoppedBy === 'stop' || pending.length > 0) {
      // Told to stop (or an answer went missing): the rest never started.
      for (const v of pending) reports.set(v.id, { ...ctx.base(v, 'skipped'), message: ctx.skipReason() });
      pending = [];
      // The script ran the reload itself if anything deployed; don't run it twice.
      reloadDone = true;
      filesNotRun(`${host.name}: files ${ctx.skipReason()}`);
    } else {
      reloadDone = true;
      // Asked for and not answered for: the script's contract says this cannot happen.
      if (sendFiles) filesNotRun(`${host.name}: the apply script did not answer for the files`);
    }
  }
  return { reports: venvs.map((v) => reports.get(v.id)!), host: hostReport, deployed };
}

function venvReport(ctx: ApplyHostContext, v: OkPlan, fields: Partial<VenvReport> & { outcome: VenvReport['outcome'] }, startedAt: number | undefined): VenvReport {
  // Created when the create step ran, or (planned as created) deployed after an earlier run created it;
  // not when the apply never started (sudo refused, say).
  const created = v.create !== null && (fields.outcome === 'deployed' || (fields.steps ?? []).some((s) => s.name === 'create' && s.ok));
  return { ...ctx.base(v, fields.outcome), created, ...fields, ms: Math.round(performance.now() - (startedAt ?? performance.now())) };
}
