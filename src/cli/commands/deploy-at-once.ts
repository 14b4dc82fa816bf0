/**
 * `vdeploy deploy --yes`: no confirmation to wait for, so no barrier between hosts — each host starts
 * applying as soon as its own plan is ready (deploy-pipelined.ts). One live view on a terminal (a row
 * per selected venv from the start: its host's connect and probe, then its apply); plain lines
 * otherwise. The plan text is printed once planning is over (on a terminal, when the view ends), then
 * the summary, as for any deploy.
 */
import { deployPipelined } from '../../deploy/deploy-pipelined.js';
import type { DeployEvent } from '../../deploy/events.js';
import type { PlanDeployOptions } from '../../deploy/plan-deploy.js';
import type { ApplyPlanOptions } from '../../deploy/apply-plan.js';
import { hasWork, needsApply, planHasErrors, type Plan } from '../../deploy/plan.js';
import type { ResolvedConfig } from '../../config/resolve-config.js';
import { hostHasFiles, selectTargets } from '../../selectors/select-hosts.js';
import { filesNeedApply } from '../../files/types.js';
import { filesId } from '../../deploy/files-work.js';
import { onInterrupt } from '../interrupt.js';
import { createLiveView } from '../live-view.js';
import type { Output } from '../output.js';
import { EXIT } from '../report-error.js';
import { formatEvent } from '../render-events.js';
import { renderPlan, renderRecovered, renderSummary } from '../render-plan.js';

export interface AtOnceRequest {
  selectors: readonly string[];
  role: readonly string[];
  json: boolean;
  /** The live view (a terminal, not --json). */
  live: boolean;
  plan: Omit<PlanDeployOptions, 'onHostPlanned' | 'onEvent' | 'signal'>;
  apply: Omit<ApplyPlanOptions, 'confirmed' | 'onEvent' | 'signal' | 'failure' | 'limit' | 'pruneCache'>;
  /** What a second Ctrl-C leaves behind (printed right before exit 130). */
  secondInterrupt: string;
}

export async function deployAtOnce(config: ResolvedConfig, req: AtOnceRequest, output: Output, setExit: (code: number) => void): Promise<void> {
  const targets = selectTargets(config, { selectors: req.selectors, roles: req.role, hasFiles: (h) => hostHasFiles(config, h) });
  // A row per venv, and one per host with config files (`files:host1`).
  const rowIds = [...targets.venvs.map((v) => v.id), ...targets.hosts.filter((h) => hostHasFiles(config, h)).map((h) => filesId(h.name))];
  const view = req.live ? await createLiveView(rowIds, 'venv', output.colour?.out ?? false) : undefined;
  const showEvent = view
    ? (e: DeployEvent) => view.onEvent(e)
    : (e: DeployEvent) => {
        const line = formatEvent(e);
        if (line !== undefined) output.err(line);
      };
  // Held while the view is up (listr2 owns the terminal), printed at once in plain mode.
  const planText: string[] = [];
  const onPlanned = (plan: Plan) => {
    if (!req.json) {
      const withChanges = hasWork(plan);
      const failed = planHasErrors(plan);
      planText.push(...renderRecovered(plan.recovered), ...renderPlan(plan));
      if (!withChanges && !failed) planText.push('Nothing to deploy.');
    }
    for (const v of plan.venvs) {
      if (v.status === 'error') view?.settleRow(v.id, `${v.stage} failed: ${v.message}`, false);
      else if (!needsApply(v)) view?.settleRow(v.id, 'unchanged', true);
    }
    for (const h of plan.hosts) {
      if (h.files?.error) view?.settleRow(filesId(h.name), `files failed: ${h.files.error.message}`, false);
      else if (!filesNeedApply(h.files)) view?.settleRow(filesId(h.name), 'files unchanged', true);
    }
    if (!view) flush();
  };
  const flush = () => {
    for (const line of planText.splice(0)) output.out(line);
  };

  // First Ctrl-C: start nothing new (hosts being planned finish planning), let running steps finish
  // and be recorded; second: exit now.
  const stop = new AbortController();
  const restore = onInterrupt(
    () => {
      showEvent({ kind: 'interrupt', message: 'Stopping: running steps finish and are recorded; press Ctrl-C again to exit at once.' });
      stop.abort();
    },
    () => output.err(req.secondInterrupt),
  );
  let done;
  try {
    done = await deployPipelined(config, {
      plan: { ...req.plan, onEvent: showEvent },
      apply: { ...req.apply, onEvent: showEvent, signal: stop.signal },
      onPlanned,
    });
  } finally {
    restore();
    await view?.close();
  }
  flush();
  const { plan, report } = done;
  const planFailed = planHasErrors(plan);
  if (req.json) output.json({ plan, report });
  else if (hasWork(plan) || planFailed) for (const line of renderSummary(report)) output.out(line);
  if (report.interrupted) setExit(EXIT.interrupted);
  else if (!report.ok) setExit(EXIT.targetFailed);
}
