/**
 * `deployPipelined()`: plan and apply with no barrier between hosts (`vdeploy deploy --yes`). Without
 * a confirmation to wait for, a host need not wait for the slowest host's plan (one silent host would
 * hold every other for the whole connect timeout): a host none of whose venvs can ship starts its
 * apply as soon as its own plan is ready. Venvs that may build or receive a shipped release wait for
 * the end of planning, since groups need every host's facts; then their builders start at once and
 * their receivers wait for the artifacts as in any apply (ship-apply.ts).
 *
 * Each part is an `applyPlan()` of a sub-plan (its release log lines written once, by that part); the
 * parts share --fail-fast's failure, the abort signal and the concurrency bound, and their reports
 * merge into one, venvs in plan order.
 */
import type { ResolvedConfig } from '../config/resolve-config.js';
import { Semaphore } from '../remote/semaphore.js';
import { applyPlan, type ApplyPlanOptions } from './apply-plan.js';
import { needsApply, type HostPlan, type Plan, type VenvPlan } from './plan.js';
import { planDeploy, type PlanDeployOptions } from './plan-deploy.js';
import type { Report } from './report.js';
import { isShipCandidate } from './ship-plan.js';
import { filesNeedApply } from '../files/types.js';
import { filesId } from './files-work.js';

export interface PipelinedOptions {
  plan: Omit<PlanDeployOptions, 'onHostPlanned'>;
  /** Every venv with changes is applied: there is no confirmation (--yes). */
  apply: Omit<ApplyPlanOptions, 'confirmed' | 'failure' | 'limit' | 'pruneCache'>;
  /** Planning is over (every host planned, groups formed): the plan, while the applies go on. */
  onPlanned?: (plan: Plan) => void;
}

export async function deployPipelined(config: ResolvedConfig, options: PipelinedOptions): Promise<{ plan: Plan; report: Report }> {
  const failure = { failed: false };
  const limit = new Semaphore(options.apply.concurrency ?? config.ssh.concurrency);
  const shipping = options.plan.ship?.enabled === true && (options.plan.mode ?? { kind: 'deploy' }).kind === 'deploy';
  const early: Array<Promise<Report>> = [];
  const startedHosts = new Set<string>();
  const applyPart = (part: Plan, pruneCache: boolean) =>
    applyPlan(config, part, { ...options.apply, confirmed: everything(part), failure, limit, pruneCache });

  const onHostPlanned = (host: HostPlan | null, venvs: readonly VenvPlan[]) => {
    if (venvs.some((v) => v.status === 'error')) failure.failed = true;
    if (host === null || (shipping && venvs.some(isShipCandidate))) return;
    startedHosts.add(host.name);
    // Planning goes on beside it: an apply that throws is reported once planning is over.
    const report = applyPart({ venvs: [...venvs], hosts: [host], prune: false, recovered: [] }, false);
    report.catch(() => {});
    early.push(report);
  };
  let plan: Plan;
  try {
    plan = await planDeploy(config, { ...options.plan, onHostPlanned });
  } catch (err) {
    // Bad local input throws before any host is planned; anything later waits for what already runs.
    await Promise.allSettled(early);
    throw err;
  }
  options.onPlanned?.(plan);
  const rest: Plan = {
    ...plan,
    venvs: plan.venvs.filter((v) => !startedHosts.has(v.host)),
    hosts: plan.hosts.filter((h) => !startedHosts.has(h.name)),
  };
  const parts = await Promise.allSettled([...early, applyPart(rest, true)]);
  const rejected = parts.find((p): p is PromiseRejectedResult => p.status === 'rejected');
  if (rejected) throw rejected.reason;
  const reports = parts.map((p) => (p as PromiseFulfilledResult<Report>).value);
  return { plan, report: mergeReports(plan, reports, options.apply.signal?.aborted ?? false) };
}

/** What --yes confirms: every venv with changes, and every host's file work. */
export function everything(plan: Plan): Set<string> {
  return new Set([...plan.venvs.filter(needsApply).map((v) => v.id), ...plan.hosts.filter((h) => filesNeedApply(h.files)).map((h) => filesId(h.name))]);
}

/** One report of the parts' reports: venvs in plan order, hosts by name, bytes summed. */
export function mergeReports(plan: Plan, parts: readonly Report[], interrupted: boolean): Report {
  const byId = new Map(parts.flatMap((p) => p.venvs.map((v) => [v.id, v] as const)));
  return {
    venvs: plan.venvs.flatMap((v) => {
      const r = byId.get(v.id);
      return r ? [r] : [];
    }),
    hosts: parts.flatMap((p) => p.hosts).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
    ok: parts.every((p) => p.ok),
    interrupted: interrupted || parts.some((p) => p.interrupted),
    bytesSent: {
      wheels: parts.reduce((n, p) => n + p.bytesSent.wheels, 0),
      artifacts: parts.reduce((n, p) => n + p.bytesSent.artifacts, 0),
    },
  };
}
