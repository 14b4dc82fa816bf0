/**
 * `planDeploy()`: connect → probe → resolve → diff, for every selected venv, hosts in parallel.
 * Changes nothing on the hosts; locally it records in release_log the applies the hosts finished that
 * no run recorded (reconcile-log.ts). Per-host and per-venv failures become `status: 'error'` entries in the
 * plan (the rest still plan); only bad local input (deployfile, requirements, release log) throws.
 */
import type { ResolvedConfig, ResolvedHost, ResolvedVenv } from '../config/resolve-config.js';
import { ConfigError, ConnectError, hintOf, VdeployError } from '../errors.js';
import { DEFAULT_WHEEL_CACHE, probeHost } from '../facts/probe-host.js';
import type { HostFacts, InterpreterFacts, VenvFacts } from '../facts/types.js';
import type { FilesPlan } from '../files/types.js';
import { chooseRollbackTarget, historyLines, liveArtifact, migrationsToUnapply, parseHistory, rolledBackVersions } from '../history/history-entry.js';
import { parseRequirement } from '../requirements/pep508.js';
import type { HostConnector } from '../remote/connect-host.js';
import { Semaphore } from '../remote/semaphore.js';
import { readRequirementsFile, type RequirementLine } from '../requirements/requirements-file.js';
import { resolveVenv } from '../resolve/resolve-venv.js';
import { createWheelDependencyReader, type WheelDependencyReader } from '../resolve/wheel-dependencies.js';
import { WheelMetadataCache } from '../resolve/wheel-metadata-cache.js';
import { nearestName } from '../selectors/nearest-name.js';
import { hostHasFiles, selectTargets } from '../selectors/select-hosts.js';
import { desiredFilesForHosts } from '../files/desired-files.js';
import type { HostFiles } from '../files/types.js';
import { failedFilesPlan, planFilesOn, wantsFacts } from './files-work.js';
import { releasedWheels, type ReleasedWheel } from '../wheels/repository.js';
import type { EventSink } from './events.js';
import { healthcheckProblem } from './healthcheck-input.js';
import { recordUnrecorded } from './reconcile-log.js';
import { planShipping, type ShipFacts, type ShipOptions } from './ship-plan.js';
import { compareVersions, diffPackages, hasChanges, PROTECTED_PACKAGES, type HostPlan, type MigrateMode, type PackageChange, type Plan, type ReleasePlan, type RollbackPlan, type VenvPlan, type VenvTarget } from './plan.js';

/** What the venvs should have: the requirements files (deploy), or a recorded set (rollback). */
export type PlanMode = { kind: 'deploy' } | { kind: 'rollback'; to?: number; unapplyMigrations: boolean };

export interface PlanDeployOptions {
  mode?: PlanMode;
  selectors?: readonly string[];
  roles?: readonly string[];
  /** Plan removal of installed packages nothing requires. */
  prune?: boolean;
  /** Config files: remove the files vdeploy wrote that the repository no longer has (--prune-files). */
  pruneFiles?: boolean;
  /** Which Django venvs migrate after the install (default auto: those with changes). */
  migrate?: MigrateMode;
  connector: HostConnector;
  /** Hosts connected to and probed at once (default: the deployfile's ssh.concurrency). */
  concurrency?: number;
  onEvent?: EventSink;
  signal?: AbortSignal;
  /** Build once, ship to the rest of each group (ship-plan.ts); absent: disabled, every venv builds with pip. */
  ship?: ShipOptions;
  /**
   * Called as soon as one host's venvs are planned (host null: it could not be connected to or probed),
   * before the other hosts are: `vdeploy deploy --yes` starts applying there at once (deploy-pipelined.ts).
   * The venvs' plans carry no `ship` yet: groups need every host's facts.
   */
  onHostPlanned?: (host: HostPlan | null, venvs: readonly VenvPlan[]) => void;
}

export async function planDeploy(config: ResolvedConfig, options: PlanDeployOptions): Promise<Plan> {
  const emit: EventSink = options.onEvent ?? (() => {});
  const mode: PlanMode = options.mode ?? { kind: 'deploy' };
  // Files have no history to go back to: a rollback plans venvs only.
  const hasFiles = (h: ResolvedHost) => mode.kind === 'deploy' && hostHasFiles(config, h);
  const targets = selectTargets(config, { selectors: options.selectors ?? [], roles: options.roles ?? [], hasFiles });
  const venvs = targets.venvs;
  checkBuilder(config, options.ship);
  // Rollbacks never ship: they switch, or rebuild from the release log.
  const shipping = options.ship?.enabled === true && mode.kind === 'deploy';
  // A rollback returns a venv to exactly a recorded set: what that set lacks goes.
  const prune = mode.kind === 'rollback' || (options.prune ?? false);

  // Local input first: a bad requirements file or release log stops everything before any connection.
  const requirements = new Map<string, RequirementLine[]>();
  if (mode.kind === 'deploy') {
    for (const file of new Set(venvs.map((v) => v.requirements))) requirements.set(file, await readRequirementsFile(file));
  }
  // Config files are rendered here too: a template error stops everything before any connection.
  const desired = mode.kind === 'deploy' ? await desiredFilesForHosts(config, targets.hosts) : new Map<string, HostFiles>();
  const pruneFiles = mode.kind === 'deploy' && (options.pruneFiles ?? false);
  // Facts are read on every planned host once the deployfile uses files anywhere (or --prune-files):
  // a host whose entries were all removed still has a record, whose files are then orphans.
  const filesInUse = pruneFiles || config.hosts.some(hasFiles);
  const released = await releasedWheels(config.wheels);
  const wheels = createWheelDependencyReader(config.wheels, { cache: new WheelMetadataCache() });

  const byHost = new Map<ResolvedHost, ResolvedVenv[]>(targets.hosts.map((h) => [h, []]));
  for (const v of venvs) byHost.get(v.host)!.push(v);

  const limit = new Semaphore(options.concurrency ?? config.ssh.concurrency);
  const perHost = await Promise.all(
    [...byHost].map(([host, hostVenvs]) =>
      limit.run(async () => {
        let facts: HostFacts;
        const hostFiles: HostFiles | undefined = desired.get(host.name);
        let files: FilesPlan | undefined;
        try {
          options.signal?.throwIfAborted();
          emit({ kind: 'host:connect', host: host.name });
          const started = performance.now();
          const conn = await options.connector.connect(host);
          emit({ kind: 'host:connected', host: host.name, ms: Math.round(performance.now() - started) });
          const probeStarted = performance.now();
          const cacheDir = host.wheelCache ?? config.ssh.wheelCache ?? DEFAULT_WHEEL_CACHE;
          // The files' facts are read beside the probe, on the same connection: no extra wait.
          const filesPlanned = wantsFacts(hostFiles, filesInUse) ? planFilesOn(conn, hostFiles, { prune: pruneFiles, ...(options.signal ? { signal: options.signal } : {}) }) : undefined;
          filesPlanned?.catch(() => {});
          facts = await probeHost(conn, { cacheDir, venvs: hostVenvs.map((v) => ({ path: v.path, python: v.python, ...(v.releases ? { releases: true } : {}) })) }, options.signal ? { signal: options.signal } : {});
          files = await filesPlanned;
          emit({ kind: 'host:probed', host: host.name, ms: Math.round(performance.now() - probeStarted) });
        } catch (err) {
          if (options.signal?.aborted) throw err;
          const stage = err instanceof ConnectError ? 'connect' : 'probe';
          const message = err instanceof Error ? err.message : String(err);
          emit({ kind: 'host:failed', host: host.name, stage, message });
          const failed = hostVenvs.map<VenvPlan>((v) => ({ ...target(v), status: 'error', stage, message, ...hintOf(err) }));
          options.onHostPlanned?.(null, failed);
          // A host selected for its files may have no venv to carry the failure: its files plan does.
          const unplanned: HostPlan | null =
            hostFiles && hostFiles.files.length > 0
              ? { name: host.name, cacheDir: '', cachedWheels: [], files: failedFilesPlan(hostFiles, pruneFiles, `${host.name}: ${stage} failed: ${message}`, hintOf(err).hint) }
              : null;
          return { host: unplanned, venvs: failed, histories: [], ship: [] };
        }
        const hostPlan: HostPlan = { name: host.name, cacheDir: facts.cacheDir, cachedWheels: facts.cachedWheels, ...(host.reload ? { reload: host.reload } : {}), ...(files ? { files } : {}) };
        const plans = await Promise.all(
          hostVenvs.map((v, i) => planVenv(v, facts.venvs[i]!, { mode, requirements: requirements.get(v.requirements) ?? [], released, wheels, prune, migrate: options.migrate ?? 'auto' })),
        );
        const histories = hostVenvs.map((v, i) => {
          const f = facts.venvs[i]!;
          return { id: v.id, host: host.name, path: v.path, history: parseHistory(historyLines(f)) };
        });
        const ship = shipping ? hostVenvs.flatMap((v, i) => shipFacts(v, facts.venvs[i]!, histories[i]!.history)) : [];
        options.onHostPlanned?.(hostPlan, plans);
        return { host: hostPlan, venvs: plans, histories, ship };
      }),
    ),
  );
  // Keep the deployfile's order in the plan, whatever order hosts answered in.
  const planned = new Map(perHost.flatMap((h) => h.venvs).map((p) => [p.id, p]));
  // The one thing planning writes, and only locally: what the hosts finished that no run recorded.
  const recovered = await recordUnrecorded(config.wheels, perHost.flatMap((h) => h.histories), emit);
  const plan: Plan = {
    venvs: venvs.map((v) => planned.get(v.id)!),
    hosts: perHost.flatMap((h) => (h.host ? [h.host] : [])),
    prune,
    recovered,
  };
  return shipping ? planShipping(plan, new Map(perHost.flatMap((h) => h.ship)), options.ship!) : plan;
}

/** A builder host that is not in the deployfile is bad input: said before any connection. */
function checkBuilder(config: ResolvedConfig, ship: ShipOptions | undefined): void {
  const builder = ship?.builder;
  if (builder === undefined || config.hosts.some((h) => h.name === builder)) return;
  const names = config.hosts.map((h) => h.name);
  const near = nearestName(builder, names);
  throw new ConfigError(`builder "${builder}" is not a host of the deployfile`, {
    hint: `${near ? `did you mean "${near}"? ` : ''}name one of its hosts (${names.join(', ')}), or leave --builder out to build on each group's first venv`,
  });
}

/** What shipping needs to know of a venv beyond its plan: its interpreter, and the artifact of its live release. */
function shipFacts(venv: ResolvedVenv, facts: VenvFacts, history: ReturnType<typeof parseHistory>): Array<[string, ShipFacts]> {
  if (facts.state === 'not-a-venv' || !facts.interpreter) return [];
  const artifact = liveArtifact(history, facts.releases?.live ?? null);
  return [[venv.id, { python: venv.python, interpreter: facts.interpreter, ...(artifact !== undefined ? { liveArtifact: artifact } : {}) }]];
}

interface PlanContext {
  mode: PlanMode;
  /** The venv's requirements file, read (deploy mode). */
  requirements: RequirementLine[];
  released: readonly ReleasedWheel[];
  wheels: WheelDependencyReader;
  prune: boolean;
  migrate: MigrateMode;
}

async function planVenv(venv: ResolvedVenv, facts: VenvFacts, ctx: PlanContext): Promise<VenvPlan> {
  const history = parseHistory(historyLines(facts));
  const newest = history.at(-1);
  const base: VenvTarget = {
    ...target(venv),
    ...(newest ? { last: { number: newest.number, action: newest.action, time: newest.time, localUser: newest.localUser, localHost: newest.localHost, outcome: newest.outcome, ...(newest.release ? { release: newest.release } : {}) } } : {}),
  };
  const fail = (stage: string, message: string, hint?: string): VenvPlan => ({ ...base, status: 'error', stage, message, ...(hint ? { hint } : {}) });
  if (facts.state === 'not-a-venv') {
    const hint = venv.releases
      ? `releases need an app root of their own: give this venv a new path (its releases go under <path>/releases/, the app runs from <path>/current), or drop \`releases\` to keep deploying ${venv.path} in place`
      : 'point the venv at another path in the deployfile, or move what is there out of the way';
    return fail('probe', `${venv.id}: ${facts.detail}; vdeploy never overwrites it`, hint);
  }
  if (!facts.interpreter) {
    const why = facts.state === 'missing' ? facts.interpreterError : undefined;
    return fail(
      'probe',
      `${venv.id}: cannot run its python "${venv.python}" to create it${why ? `: ${why}` : ''}`,
      'set venvs[].python to an interpreter that exists on the host (e.g. /usr/bin/python3) and has the venv module',
    );
  }
  const installed = facts.state === 'venv' ? facts.installed : [];
  let requirements = ctx.requirements;
  let rollback: RollbackPlan | undefined;
  let targetRelease: string | undefined;
  if (ctx.mode.kind === 'rollback') {
    const chosen = chooseRollbackTarget(history, ctx.mode.to);
    if (!chosen.ok) return fail('rollback', `${venv.id}: ${chosen.message}`, chosen.hint);
    const where = chosen.undoes !== undefined ? `before history #${chosen.undoes}` : `history #${chosen.restores}`;
    requirements = pinnedLines(chosen.packages, where);
    rollback = {
      ...(chosen.undoes !== undefined ? { undoes: chosen.undoes } : {}),
      ...(chosen.restores !== undefined ? { restores: chosen.restores } : {}),
      migrations: migrationsToUnapply(chosen.currentMigrations, chosen.migrations),
      unapplyMigrations: ctx.mode.unapplyMigrations,
    };
    targetRelease = chosen.release;
  }
  try {
    const resolution = await resolveWith(ctx, facts.interpreter, requirements);
    if (!resolution.ok) return fail('resolve', resolution.message, resolution.hint);
    const unchecked = healthcheckProblem(venv.healthcheck ?? venv.host.healthcheck, resolution.packages);
    if (unchecked) return fail('plan', `${venv.id}: ${unchecked}`, 'name a package of this venv\'s requirements in {version:NAME}, or leave the placeholder out');
    const diff = diffPackages(resolution.packages, installed, ctx.prune);
    const plan: VenvPlan = {
      ...base,
      status: 'ok',
      create: facts.state === 'missing' ? venv.python : null,
      ...(facts.state === 'missing' && facts.halfMade ? { halfMade: true as const } : {}),
      ...(facts.state === 'venv' && facts.stashes?.length ? { stashes: facts.stashes } : {}),
      ...diff,
      desired: resolution.packages,
      installed,
      ...(rollback ? { rollback } : {}),
      ...(venv.releases ? { releases: releasePlan(venv.releases.keep, facts, targetRelease) } : {}),
    };
    if (venv.django) {
      // migrate needs Django in the venv afterwards: a rollback to before the first deploy removes it.
      const keepsDjango = resolution.packages.some((p) => p.key === 'django');
      plan.migrate = keepsDjango && ctx.migrate !== 'never' && (hasChanges(plan) || ctx.migrate === 'always');
    }
    if (ctx.mode.kind === 'deploy') {
      const reinstalls = reinstalledAfterRollback(history, diff.changes);
      if (reinstalls) plan.reinstalls = reinstalls;
    }
    // What to put back if migrate, reload or the health check fails after the install.
    const canFailAfterInstall = venv.django || venv.reload || venv.healthcheck || venv.host.healthcheck;
    // A release is put back by switching `current` back, on the host: nothing to restore with pip.
    if (facts.state === 'venv' && !venv.releases && hasChanges(plan) && canFailAfterInstall) {
      const current = Object.fromEntries(installed.filter((p) => !PROTECTED_PACKAGES.has(p.key)).map((p) => [p.key, p.version]));
      const restore = await resolveWith(ctx, facts.interpreter, pinnedLines(current, 'the installed set'));
      (plan as Extract<VenvPlan, { status: 'ok' }>).restore = restore.ok ? { packages: restore.packages } : { error: restore.message };
    }
    return plan;
  } catch (err) {
    if (!(err instanceof VdeployError)) throw err;
    return fail('resolve', err.message, err.hint);
  }
}

/** How a releases venv's next release comes to be; `target`: the release a rollback returns to. */
function releasePlan(keep: number, facts: VenvFacts, target: string | undefined): ReleasePlan {
  const onHost = facts.state === 'not-a-venv' ? [] : (facts.releases?.list.map((r) => r.id) ?? []);
  const live = facts.state === 'not-a-venv' ? null : (facts.releases?.live ?? null);
  const base = { keep, live, onHost };
  if (target !== undefined && target !== live && onHost.includes(target)) return { ...base, build: 'switch', switchTo: target };
  const cleanedUp = target !== undefined && target !== live && !onHost.includes(target) ? { cleanedUp: target } : {};
  return { ...base, build: facts.state === 'venv' ? 'clone' : 'fresh', ...cleanedUp };
}

/** The changes that put back versions the venv's newest rollback took off (see VenvPlan.reinstalls). */
function reinstalledAfterRollback(history: ReturnType<typeof parseHistory>, changes: readonly PackageChange[]): Extract<VenvPlan, { status: 'ok' }>['reinstalls'] {
  const undone = rolledBackVersions(history);
  if (!undone) return undefined;
  const packages = changes.flatMap((c) => (c.to !== undefined && undone.versions[c.key] !== undefined && compareVersions(undone.versions[c.key]!, c.to) === 0 ? [{ name: c.name, version: c.to, ...(c.from !== undefined ? { now: c.from } : {}) }] : []));
  return packages.length > 0 ? { entry: undone.entry, packages } : undefined;
}

function resolveWith(ctx: PlanContext, interpreter: InterpreterFacts, requirements: readonly RequirementLine[]) {
  return resolveVenv({
    requirements,
    released: ctx.released,
    interpreter,
    dependenciesOf: (w) => ctx.wheels.dependenciesOf(w),
    sha256Of: (w) => ctx.wheels.sha256Of(w),
    digestOf: (w, algorithm) => ctx.wheels.digestOf(w, algorithm),
  });
}

/** `name==version` requirement lines for a recorded package set; `where` names it in messages. */
function pinnedLines(set: Record<string, string>, where: string): RequirementLine[] {
  return Object.entries(set).map(([key, version]) => ({ requirement: parseRequirement(`${key}==${version}`), file: where, line: 0 }));
}

function target(v: ResolvedVenv): VenvTarget {
  return { id: v.id, host: v.host.name, user: v.user, path: v.path };
}

