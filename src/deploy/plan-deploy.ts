/**
 * `planDeploy()`: connect → probe → resolve → diff, for every selected venv, hosts in parallel.
 * Changes nothing anywhere. Per-host and per-venv failures become `status: 'error'` entries in the
 * plan (the rest still plan); only bad local input (deployfile, requirements, release log) throws.
 */
import type { ResolvedConfig, ResolvedHost, ResolvedVenv } from '../config/resolve-config.js';
import { ConnectError, VdeployError } from '../errors.js';
import { DEFAULT_WHEEL_CACHE, probeHost } from '../facts/probe-host.js';
import type { HostFacts } from '../facts/types.js';
import type { HostConnector } from '../remote/connect-host.js';
import { Semaphore } from '../remote/semaphore.js';
import { readRequirementsFile, type RequirementLine } from '../requirements/requirements-file.js';
import { resolveVenv } from '../resolve/resolve-venv.js';
import { createWheelDependencyReader } from '../resolve/wheel-dependencies.js';
import { selectVenvs } from '../selectors/select-venvs.js';
import { releasedWheels, type ReleasedWheel } from '../wheels/repository.js';
import type { EventSink } from './events.js';
import { diffPackages, type HostPlan, type Plan, type VenvPlan, type VenvTarget } from './plan.js';

export interface PlanDeployOptions {
  selectors?: readonly string[];
  roles?: readonly string[];
  /** Plan removal of installed packages nothing requires. */
  prune?: boolean;
  connector: HostConnector;
  /** Hosts connected to and probed at once (default: the deployfile's ssh.concurrency). */
  concurrency?: number;
  onEvent?: EventSink;
  signal?: AbortSignal;
}

export async function planDeploy(config: ResolvedConfig, options: PlanDeployOptions): Promise<Plan> {
  const emit: EventSink = options.onEvent ?? (() => {});
  const venvs = selectVenvs(config, { selectors: options.selectors ?? [], roles: options.roles ?? [] });
  const prune = options.prune ?? false;

  // Local input first: a bad requirements file or release log stops everything before any connection.
  const requirements = new Map<string, RequirementLine[]>();
  for (const file of new Set(venvs.map((v) => v.requirements))) requirements.set(file, await readRequirementsFile(file));
  const released = await releasedWheels(config.wheels);
  const wheels = createWheelDependencyReader(config.wheels);

  const byHost = new Map<ResolvedHost, ResolvedVenv[]>();
  for (const v of venvs) byHost.set(v.host, [...(byHost.get(v.host) ?? []), v]);

  const limit = new Semaphore(options.concurrency ?? config.ssh.concurrency);
  const perHost = await Promise.all(
    [...byHost].map(([host, hostVenvs]) =>
      limit.run(async () => {
        let facts: HostFacts;
        try {
          options.signal?.throwIfAborted();
          emit({ kind: 'host:connect', host: host.name });
          const started = performance.now();
          const conn = await options.connector.connect(host);
          emit({ kind: 'host:connected', host: host.name, ms: Math.round(performance.now() - started) });
          const probeStarted = performance.now();
          const cacheDir = host.wheelCache ?? config.ssh.wheelCache ?? DEFAULT_WHEEL_CACHE;
          facts = await probeHost(conn, { cacheDir, venvs: hostVenvs.map((v) => ({ path: v.path, python: v.python })) }, options.signal ? { signal: options.signal } : {});
          emit({ kind: 'host:probed', host: host.name, ms: Math.round(performance.now() - probeStarted) });
        } catch (err) {
          if (options.signal?.aborted) throw err;
          const stage = err instanceof ConnectError ? 'connect' : 'probe';
          const message = err instanceof Error ? err.message : String(err);
          emit({ kind: 'host:failed', host: host.name, stage, message });
          return {
            host: null,
            venvs: hostVenvs.map<VenvPlan>((v) => ({ ...target(v), status: 'error', stage, message, ...hintOf(err) })),
          };
        }
        const hostPlan: HostPlan = { name: host.name, cacheDir: facts.cacheDir, cachedWheels: facts.cachedWheels, ...(host.reload ? { reload: host.reload } : {}) };
        const plans = await Promise.all(
          hostVenvs.map((v, i) => planVenv(v, facts.venvs[i]!, requirements.get(v.requirements)!, released, wheels, prune)),
        );
        return { host: hostPlan, venvs: plans };
      }),
    ),
  );
  // Keep the deployfile's order in the plan, whatever order hosts answered in.
  const planned = new Map(perHost.flatMap((h) => h.venvs).map((p) => [p.id, p]));
  return {
    venvs: venvs.map((v) => planned.get(v.id)!),
    hosts: perHost.flatMap((h) => (h.host ? [h.host] : [])),
    prune,
  };
}

async function planVenv(
  venv: ResolvedVenv,
  facts: HostFacts['venvs'][number],
  requirements: RequirementLine[],
  released: readonly ReleasedWheel[],
  wheels: ReturnType<typeof createWheelDependencyReader>,
  prune: boolean,
): Promise<VenvPlan> {
  const base = target(venv);
  if (facts.state === 'not-a-venv') {
    return {
      ...base,
      status: 'error',
      stage: 'probe',
      message: `${venv.id}: ${facts.detail}; vdeploy never overwrites it`,
      hint: 'point the venv at another path in the deployfile, or move what is there out of the way',
    };
  }
  if (!facts.interpreter) {
    const why = facts.state === 'missing' ? facts.interpreterError : undefined;
    return {
      ...base,
      status: 'error',
      stage: 'probe',
      message: `${venv.id}: cannot run its python "${venv.python}" to create it${why ? `: ${why}` : ''}`,
      hint: 'set venvs[].python to an interpreter that exists on the host (e.g. /usr/bin/python3) and has the venv module',
    };
  }
  try {
    const resolution = await resolveVenv({
      requirements,
      released,
      interpreter: facts.interpreter,
      dependenciesOf: (w) => wheels.dependenciesOf(w),
      sha256Of: (w) => wheels.sha256Of(w),
    });
    if (!resolution.ok) return { ...base, status: 'error', stage: 'resolve', message: resolution.message, hint: resolution.hint };
    const installed = facts.state === 'venv' ? facts.installed : [];
    return {
      ...base,
      status: 'ok',
      create: facts.state === 'missing' ? venv.python : null,
      ...diffPackages(resolution.packages, installed, prune),
      desired: resolution.packages,
      installed,
    };
  } catch (err) {
    if (!(err instanceof VdeployError)) throw err;
    return { ...base, status: 'error', stage: 'resolve', message: err.message, ...hintOf(err) };
  }
}

function target(v: ResolvedVenv): VenvTarget {
  return { id: v.id, host: v.host.name, user: v.user, path: v.path };
}

function hintOf(err: unknown): { hint?: string } {
  return err instanceof VdeployError && err.hint ? { hint: err.hint } : {};
}
