/**
 * `vdeploy plan` and `vdeploy deploy`: flag declarations and the stages — plan (core), show, confirm
 * (here, per venv), apply (core), summarize. The core returns data; this file renders and asks.
 */
import type { Argv, CommandModule } from 'yargs';
import { applyPlan, type MigrateMode } from '../../deploy/apply-plan.js';
import type { DeployEvent } from '../../deploy/events.js';
import { needsApply, planHasErrors } from '../../deploy/plan.js';
import { planDeploy, type PlanMode } from '../../deploy/plan-deploy.js';
import type { ShipOptions } from '../../deploy/ship-plan.js';
import { cachedGroup } from '../../deploy/artifact-cache.js';
import type { ResolvedConfig } from '../../config/resolve-config.js';
import { ConfigError } from '../../errors.js';
import { createHostConnector } from '../../remote/connect-host.js';
import { hostHasFiles, selectHosts } from '../../selectors/select-hosts.js';
import { filesNeedApply } from '../../files/types.js';
import { filesId } from '../../deploy/files-work.js';
import { renderHostFiles } from '../render-files-report.js';
import { confirmVenvs } from '../confirm.js';
import { deployAtOnce } from './deploy-at-once.js';
import { hostConnectorOptions, sshOptions, type SshArgs } from '../ssh-options.js';
import { loadConfig, type GlobalArgs } from '../context.js';
import { onInterrupt } from '../interrupt.js';
import { createLiveView } from '../live-view.js';
import type { Output } from '../output.js';
import { EXIT } from '../report-error.js';
import { formatEvent } from '../render-events.js';
import { renderPlan, renderRecovered, renderSummary, renderVenv } from '../render-plan.js';

/** What a second Ctrl-C leaves behind, in one line: the hosts finish on their own, the next run records it. */
export const SECOND_INTERRUPT =
  'interrupted: stopped without waiting; venvs already being applied finish on their hosts (their history is written there), ' +
  'but this run recorded nothing in release_log: the next `vdeploy plan` or `vdeploy deploy` records what they did';

interface PlanArgs extends GlobalArgs, SshArgs {
  selectors: string[];
  role: string[];
  json: boolean;
  prune: boolean;
  concurrency?: number;
}

/** Shipping flags, on plan and deploy only: rollbacks never ship. */
interface ShipArgs {
  /** false with --no-ship. */
  ship?: boolean;
  builder?: string;
}

interface DeployArgs extends PlanArgs, ShipArgs, FilesArgs {
  yes: boolean;
  'dry-run': boolean;
  migrate: string | boolean;
  'lock-wait': number;
  'fail-fast': boolean;
  rollback: boolean;
}

interface RollbackArgs extends DeployArgs {
  to?: number;
  'unapply-migrations': boolean;
}

/** What one run of plan/deploy/rollback was asked to do, flags read and checked. */
interface DeployRequest extends PlanArgs, ShipArgs, FilesArgs {
  mode: PlanMode;
  yes: boolean;
  dryRun: boolean;
  migrate: MigrateMode;
  lockWait: number;
  failFast: boolean;
  autoRollback: boolean;
}

function planOptions<T>(y: Argv<T>) {
  return sshOptions(y)
    .positional('selectors', {
      type: 'string',
      array: true,
      default: [] as string[],
      describe: 'host, user@host, user@host:/path, host:/path, :/path or user@ (none = all venvs)',
    })
    .option('role', { type: 'string', array: true, default: [] as string[], describe: 'Only hosts with this role (repeatable)' })
    .option('json', { type: 'boolean', default: false, describe: 'Print the plan (and the result) as JSON on stdout' })
    .option('prune', { type: 'boolean', default: false, describe: 'Remove installed packages nothing requires (never pip, setuptools, wheel)' })
    .option('concurrency', { type: 'number', describe: 'Hosts worked on at once (default: the deployfile\'s ssh.concurrency, else 16)' });
}

/** Config files, on plan and deploy only: rollbacks leave files alone. */
interface FilesArgs {
  'prune-files'?: boolean;
}

function filesOptions<T>(y: Argv<T>) {
  return y.option('prune-files', { type: 'boolean', default: false, describe: 'Remove the config files vdeploy wrote that the repository no longer has (listed in the plan first)' });
}

function shipOptions<T>(y: Argv<T>) {
  return y
    .option('ship', { type: 'boolean', describe: 'Build each group of identical releases venvs once and ship it to the others (default: the deployfile\'s ship.enabled, else on); --no-ship: every venv builds with pip' })
    .option('builder', { type: 'string', requiresArg: true, describe: 'Build each group on its venv on this host (default: the deployfile\'s ship.builder, else the group\'s first venv)' });
}

export function planCommand(output: Output, setExit: (code: number) => void): CommandModule<GlobalArgs, PlanArgs & ShipArgs & FilesArgs> {
  return {
    command: 'plan [selectors..]',
    describe: 'Show what a deploy would change on each selected venv and host (changes nothing anywhere)',
    builder: (y) => filesOptions(shipOptions(planOptions(y))),
    handler: async (args) => {
      await runDeploy({ ...args, mode: { kind: 'deploy' }, yes: false, dryRun: true, migrate: 'auto', lockWait: 0, failFast: false, autoRollback: true }, output, setExit);
    },
  };
}

function applyOptions<T>(y: Argv<T>) {
  return planOptions(y)
    .option('yes', { alias: 'y', type: 'boolean', default: false, describe: 'Apply to every venv with changes without asking' })
    .option('dry-run', { type: 'boolean', default: false, describe: 'Stop after showing the plan' })
    .option('migrate', { type: 'string', default: 'auto', describe: 'Django migrate: on venvs with changes (auto), or on every selected Django venv, up to date or not (always); --no-migrate never' })
    .option('lock-wait', { type: 'number', default: 0, describe: "Seconds to wait for another deploy's lock on a venv (default: fail at once)" })
    .option('fail-fast', { type: 'boolean', default: false, describe: 'Start no new venv after the first failure' })
    .option('rollback', { type: 'boolean', default: true, describe: 'Restore the previous set when migrate, reload or the health check fails (--no-rollback: leave it)' });
}

/** The flags common to deploy and rollback, read and checked. */
function readApplyArgs(args: DeployArgs, mode: PlanMode): DeployRequest {
  // yargs turns --no-migrate into migrate=false.
  if (args.migrate !== false && args.migrate !== 'auto' && args.migrate !== 'always') {
    throw new ConfigError(`--migrate must be auto or always (or --no-migrate), got ${JSON.stringify(args.migrate)}`, { hint: 'e.g. --migrate always' });
  }
  return {
    ...args,
    mode,
    dryRun: args['dry-run'],
    lockWait: args['lock-wait'],
    failFast: args['fail-fast'],
    migrate: args.migrate === false ? 'never' : args.migrate,
    autoRollback: args.rollback,
  };
}

export function deployCommand(output: Output, setExit: (code: number) => void): CommandModule<GlobalArgs, DeployArgs> {
  return {
    command: 'deploy [selectors..]',
    describe: 'Plan, confirm per venv, then push wheels, install offline, migrate, reload and record',
    builder: (y) => filesOptions(shipOptions(applyOptions(y))),
    handler: async (args) => {
      await runDeploy(readApplyArgs(args, { kind: 'deploy' }), output, setExit);
    },
  };
}

export function rollbackCommand(output: Output, setExit: (code: number) => void): CommandModule<GlobalArgs, RollbackArgs> {
  return {
    command: 'rollback [selectors..]',
    describe: "Return each venv to the package set before its last successful deploy (or history entry --to N)",
    builder: (y) =>
      applyOptions(y)
        .option('to', { type: 'number', describe: 'Go back to the package set history entry N left behind (see `vdeploy history`)' })
        .option('unapply-migrations', { type: 'boolean', default: false, describe: 'Migrate Django apps back to their recorded state before installing the older code' }),
    handler: async (args) => {
      if (args.to !== undefined && (!Number.isInteger(args.to) || args.to < 1)) {
        throw new ConfigError(`--to must be a history entry number (1 or more), got ${args.to}`, { hint: 'see the numbers with `vdeploy history SELECTOR`' });
      }
      const mode: PlanMode = { kind: 'rollback', unapplyMigrations: args['unapply-migrations'], ...(args.to !== undefined ? { to: args.to } : {}) };
      await runDeploy(readApplyArgs(args, mode), output, setExit);
    },
  };
}

/** The deployfile's `ship`, overridden by --no-ship / --ship and --builder (checked by planDeploy before connecting). */
function shipRequest(ship: ResolvedConfig['ship'], args: ShipArgs): ShipOptions {
  const builder = args.builder ?? ship.builder;
  return { enabled: args.ship ?? ship.enabled, ...(builder !== undefined ? { builder } : {}), cachedGroup: (key) => cachedGroup(key)?.meta.digest };
}

async function runDeploy(args: DeployRequest, output: Output, setExit: (code: number) => void): Promise<void> {
  if (args.concurrency !== undefined && (!Number.isInteger(args.concurrency) || args.concurrency < 1)) {
    throw new ConfigError(`--concurrency must be a whole number of at least 1, got ${args.concurrency}`, { hint: 'e.g. --concurrency 8' });
  }
  if (!Number.isFinite(args.lockWait) || args.lockWait < 0) {
    throw new ConfigError(`--lock-wait must be a number of seconds, 0 or more, got ${args.lockWait}`, { hint: 'e.g. --lock-wait 60' });
  }
  const config = await loadConfig(args);
  const connector = createHostConnector(config, hostConnectorOptions(args, output));
  const plainEvent = (e: DeployEvent) => {
    const line = formatEvent(e);
    if (line !== undefined) output.err(line);
  };
  // listr2 on a terminal; plain lines for logs, pipes and --json.
  const live = output.isTTY && process.stderr.isTTY && !args.json;
  try {
    const planOpts = {
      mode: args.mode,
      selectors: args.selectors,
      roles: args.role,
      prune: args.prune,
      pruneFiles: args['prune-files'] ?? false,
      migrate: args.migrate,
      connector,
      ...(args.concurrency !== undefined ? { concurrency: args.concurrency } : {}),
      ship: shipRequest(config.ship, args),
    };
    if (args.yes && !args.dryRun && args.mode.kind === 'deploy') {
      // Nothing to confirm: each host applies as soon as its own plan is ready (no barrier between hosts).
      const apply = { connector, migrate: args.migrate, lockWaitSeconds: args.lockWait, failFast: args.failFast, autoRollback: args.autoRollback, ...(args.concurrency !== undefined ? { concurrency: args.concurrency } : {}) };
      await deployAtOnce(config, { selectors: args.selectors, role: args.role, json: args.json, live, plan: planOpts, apply, secondInterrupt: SECOND_INTERRUPT }, output, setExit);
      return;
    }
    const hostNames = selectHosts(config, { selectors: args.selectors, roles: args.role, hasFiles: (h) => args.mode.kind === 'deploy' && hostHasFiles(config, h) }).map((h) => h.name);
    const planView = live ? await createLiveView(hostNames, 'host', output.colour?.out ?? false) : undefined;
    let plan;
    try {
      plan = await planDeploy(config, { ...planOpts, onEvent: planView ? (e) => planView.onEvent(e) : plainEvent });
    } finally {
      await planView?.close();
    }
    const planFailed = planHasErrors(plan);
    if (!args.json) for (const line of [...renderRecovered(plan.recovered), ...renderPlan(plan)]) output.out(line);
    if (args.dryRun) {
      if (args.json) output.json({ plan });
      if (planFailed) setExit(EXIT.targetFailed);
      return;
    }

    // Venvs with changes, then hosts with file work (applied after their venvs, before the reload).
    const withChanges = [...plan.venvs.filter(needsApply).map((v) => v.id), ...plan.hosts.filter((h) => filesNeedApply(h.files)).map((h) => filesId(h.name))];
    let confirmed = new Set<string>();
    if (withChanges.length > 0) {
      if (args.yes) confirmed = new Set(withChanges);
      else if (!process.stdin.isTTY) {
        throw new ConfigError('deploy needs a confirmation and standard input is not a terminal; nothing was changed', {
          hint: 'pass --yes to deploy every venv shown in the plan without asking',
        });
      } else {
        const shown = plan;
        const verb = args.mode.kind === 'rollback' ? 'Roll back' : 'Deploy to';
        const filesHost = (id: string) => shown.hosts.find((h) => filesId(h.name) === id)?.name;
        confirmed = await confirmVenvs(withChanges, {
          verb,
          question: (id) => {
            const host = filesHost(id);
            return host !== undefined ? `Apply files to ${host}` : `${verb} ${id}`;
          },
          detail: (id) => {
            const host = filesHost(id);
            return host !== undefined ? renderHostFiles(shown, host) : renderVenv(shown, shown.venvs.find((v) => v.id === id)!);
          },
        });
      }
    } else if (!args.json && !planFailed) {
      // With a venv that failed to plan, the summary below says what happened, not "nothing".
      output.out(args.mode.kind === 'rollback' ? 'Nothing to roll back.' : 'Nothing to deploy.');
    }

    // First Ctrl-C: start nothing new, let running steps finish and be recorded; second: exit now.
    const stop = new AbortController();
    const applyView = live && confirmed.size > 0 ? await createLiveView([...confirmed], 'venv', output.colour?.out ?? false) : undefined;
    const showEvent = applyView ? (e: DeployEvent) => applyView.onEvent(e) : plainEvent;
    const restore = onInterrupt(
      () => {
        showEvent({ kind: 'interrupt', message: 'Stopping: running steps finish and are recorded; press Ctrl-C again to exit at once.' });
        stop.abort();
      },
      // Synchronous, right before exit 130: the live view puts the terminal back on exit (live-view.ts).
      () => output.err(SECOND_INTERRUPT),
    );
    let report;
    try {
      report = await applyPlan(config, plan, {
        connector,
        confirmed,
        migrate: args.migrate,
        lockWaitSeconds: args.lockWait,
        failFast: args.failFast,
        autoRollback: args.autoRollback,
        ...(args.concurrency !== undefined ? { concurrency: args.concurrency } : {}),
        onEvent: showEvent,
        signal: stop.signal,
      });
    } finally {
      restore();
      await applyView?.close();
    }
    if (args.json) output.json({ plan, report });
    else if (withChanges.length > 0 || planFailed) for (const line of renderSummary(report)) output.out(line);
    if (report.interrupted) setExit(EXIT.interrupted);
    else if (!report.ok) setExit(EXIT.targetFailed);
  } finally {
    await connector.closeAll();
  }
}
