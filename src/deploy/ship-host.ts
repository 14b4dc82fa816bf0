/**
 * One host's part of `applyPlan()` with shipping (ship-apply.ts). A host without receivers runs at
 * once, as without shipping. A host with receivers waits for its groups' releases without holding a
 * concurrency slot (the builder it waits for may need that slot), then runs ONE apply with the tars
 * among its uploads. A host that both builds and receives first runs its builds (so groups it builds
 * are never waited on), then its receivers, and reloads once at the end. A receiver whose receive
 * failed (the manifest check refused a file) is applied once more with pip.
 */
import type { ResolvedHost } from '../config/resolve-config.js';
import { hintOf } from '../errors.js';
import type { Connection } from '../remote/connection.js';
import type { Semaphore } from '../remote/semaphore.js';
import { applyHost, type ApplyHostContext, type ApplyHostShip } from './apply-host.js';
import type { HostPlan, VenvPlan } from './plan.js';
import type { HostReport, VenvReport } from './report.js';
import type { Shipping } from './ship-apply.js';
import { notApplied, type FilesWork } from './files-work.js';

type OkPlan = Extract<VenvPlan, { status: 'ok' }>;

export interface ShipHostArgs {
  host: ResolvedHost;
  hostPlan: HostPlan;
  venvs: readonly OkPlan[];
  limit: Semaphore;
  shipping: Shipping;
  ctx: ApplyHostContext;
  connect: () => Promise<Connection>;
  onConnectFailed: () => void;
  /** The host's confirmed config files: applied by its last run (the one that reloads). */
  files?: FilesWork;
}

export async function shipHost(a: ShipHostArgs): Promise<{ reports: VenvReport[]; host: HostReport }> {
  const { host, hostPlan, shipping, ctx } = a;
  const receivers = a.venvs.filter((v) => shipping.receivers(a.venvs).includes(v));
  const builds = a.venvs.filter((v) => !receivers.includes(v));
  const first = receivers.length === 0 || shipping.isBuilderHost(a.venvs) ? builds : [];
  const later = first.length > 0 || receivers.length === 0 ? receivers : a.venvs;
  const reports = new Map<string, VenvReport>();
  const hostReport: HostReport = { name: host.name, pushed: [] };
  let deployed = 0;
  let conn: Connection | undefined;
  let connectFailed = false;

  // Until a run answered for them: each run that reloads takes them.
  let files = a.files;
  const merge = (done: { reports: VenvReport[]; host: HostReport; deployed: number }) => {
    for (const r of done.reports) reports.set(r.id, r);
    hostReport.pushed.push(...done.host.pushed);
    if (done.host.reload) hostReport.reload = done.host.reload;
    if (done.host.files) {
      hostReport.files = done.host.files;
      files = undefined;
    }
    deployed = done.deployed;
  };
  const skip = (venvs: readonly OkPlan[]) => {
    for (const v of venvs) reports.set(v.id, { ...ctx.base(v, 'skipped'), message: ctx.skipReason() });
  };
  const open = async (venvs: readonly OkPlan[]): Promise<Connection | undefined> => {
    if (conn || connectFailed) return conn;
    try {
      conn = await a.connect();
      return conn;
    } catch (err) {
      connectFailed = true;
      a.onConnectFailed();
      const message = `${host.name}: ${err instanceof Error ? err.message : String(err)}`;
      ctx.emit({ kind: 'host:failed', host: host.name, stage: 'connect', message });
      for (const v of a.venvs) reports.set(v.id, { ...ctx.base(v, 'failed'), failedStep: 'connect', message, ...hintOf(err) });
      if (files) hostReport.files = notApplied(files, `${message} (files not applied)`);
      void venvs;
      return undefined;
    }
  };
  const ship = (over: Partial<ApplyHostShip> & Pick<ApplyHostShip, 'pushFor'>): ApplyHostShip => ({
    inputs: (v) => shipping.packInput(v, hostPlan),
    uploads: [],
    send: async () => {},
    deployedBefore: deployed,
    onPushed: (uploads) => shipping.countWheels(uploads),
    ...over,
  });

  if (a.venvs.length === 0) {
    // Only config files to apply here: one run, no shipping to wait for.
    await a.limit.run(async () => {
      if (ctx.stopStarting()) {
        if (files) hostReport.files = notApplied(files, `${host.name}: files ${ctx.skipReason()}`);
        return;
      }
      const c = await open([]);
      if (c) merge(await applyHost(c, host, hostPlan, [], ctx, files));
    });
    return { reports: [], host: hostReport };
  }
  if (first.length > 0) {
    await a.limit.run(async () => {
      if (ctx.stopStarting()) return skip(first);
      const c = await open(first);
      if (!c) return;
      merge(await applyHost(c, host, hostPlan, first, { ...ctx, ship: ship({ pushFor: first, deferReload: later.length > 0, onAnswer: (v, r) => shipping.onAnswer(v, r, c) }) }, files));
    });
    shipping.settleHost(host.name, `its builder on ${host.name} did not answer`);
  }
  if (later.length > 0 && !connectFailed) {
    await shipping.waitFor(receivers, host.name);
    await a.limit.run(async () => {
      if (ctx.stopStarting()) {
        // The reload an earlier run on this host left to this one still runs.
        if (deployed > 0 && conn && host.reload) merge(await applyHost(conn, host, hostPlan, [], { ...ctx, ship: ship({ pushFor: [] }) }, files));
        if (files) hostReport.files = notApplied(files, `${host.name}: files ${ctx.skipReason()}`);
        return skip(later);
      }
      const c = await open(later);
      if (!c) return;
      const recv = shipping.planReceive(host.name, hostPlan, receivers);
      // Receivers whose receive failed: their failure and venv:end wait for the retry with pip.
      const held = new Set<string>();
      const pushFor = later.filter((v) => !recv.inputs.has(v.id));
      merge(
        await applyHost(c, host, hostPlan, later, {
          ...ctx,
          ship: ship({
            inputs: (v) => recv.inputs.get(v.id) ?? shipping.packInput(v, hostPlan),
            pushFor,
            uploads: recv.uploads,
            send: (cn) => shipping.sendTars(cn, host.name, recv.uploads),
            onAnswer: (v, r) => shipping.onAnswer(v, r, c),
            retried: (v, r) => {
              const again = recv.inputs.has(v.id) && r.failedStep === 'receive' && !ctx.signal?.aborted;
              if (again) held.add(v.id);
              return again;
            },
          }),
        }, files),
      );
      for (const [id, shipped] of recv.shipped) {
        const r = reports.get(id);
        if (r) r.shipped = shipped;
      }
      await receiveAgain(a, c, later.filter((v) => held.has(v.id)), reports, ship, merge);
    });
  }
  return { reports: a.venvs.map((v) => reports.get(v.id) ?? { ...ctx.base(v, 'skipped'), message: ctx.skipReason() }), host: hostReport };
}

/** Receivers whose receive failed: applied once more, with pip (their wheels pushed now). */
async function receiveAgain(
  a: ShipHostArgs,
  conn: Connection,
  failedReceives: readonly OkPlan[],
  reports: Map<string, VenvReport>,
  ship: (over: Partial<ApplyHostShip> & Pick<ApplyHostShip, 'pushFor'>) => ApplyHostShip,
  merge: (done: { reports: VenvReport[]; host: HostReport; deployed: number }) => void,
): Promise<void> {
  if (failedReceives.length === 0) return;
  if (a.ctx.signal?.aborted) {
    // Interrupted before the retry: the failure stands.
    a.ctx.onFailure();
    for (const v of failedReceives) a.ctx.emit({ kind: 'venv:end', venv: v.id, outcome: reports.get(v.id)!.outcome, ms: reports.get(v.id)!.ms });
    return;
  }
  // The venv's own message starts with its id; the fallback line names the venv already.
  const why = new Map(failedReceives.map((v) => [v.id, (reports.get(v.id)!.message ?? 'the receive failed').replace(`${v.id}: `, '')]));
  for (const v of failedReceives) {
    a.ctx.emit({ kind: 'ship:fallback', venv: v.id, reason: why.get(v.id)! });
    // What it received was bad: the next deploy must not ship it again from the local cache.
    a.shipping.forget(v);
  }
  merge(await applyHost(conn, a.host, a.hostPlan, failedReceives, { ...a.ctx, ship: ship({ inputs: () => undefined, pushFor: failedReceives }) }));
  for (const v of failedReceives) {
    const r = reports.get(v.id)!;
    const group = v.ship?.group ?? '';
    r.shipped = { role: 'receiver', group, fellBack: why.get(v.id)! };
  }
}
