/**
 * A test fleet (real sshds on loopback) prepared for the benchmark: venvs made from a template, a
 * staging directory per host for the baseline, optionally app roots for the releases layout (issue
 * 15: <root>/releases/<id>/ venvs and a <root>/current symlink), and named states (empty, app 1.0,
 * app 1.1) of every venv, app root and wheel cache that a scenario can reset to between runs,
 * untimed, and check.
 */
import { existsSync, lstatSync, mkdirSync, readlinkSync, renameSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { LocalConnection } from '../src/remote/local-connection.js';
import { Semaphore } from '../src/remote/semaphore.js';
import { cacheDirOf } from '../test/helpers/deploy-project.js';
import { startFleet, type Fleet, type FleetHost } from '../test/helpers/fleet.js';
import type { FleetTarget } from './contenders.js';
import { restoreTree, snapshotTree, type TreeSnapshot } from './tree-snapshot.js';
import { checkVenv, cloneSnapshot, createTemplateVenv, createVenvFromTemplate, readInstalled } from './venvs.js';
import { APP, wantedWheels, type WheelSet } from './wheel-set.js';

export type VenvState = 'empty' | 'app-1.0' | 'app-1.1';

export interface BenchFleet {
  fleet: Fleet;
  /** Every host with all its venvs. */
  all: FleetTarget[];
  /** Every host with all its app roots (releases layout; none unless started with `roots`). */
  allRoots: FleetTarget[];
  /** Every host with its app roots deployed with shipping (issue 16; none unless started with `shipRoots`). */
  allShipRoots: FleetTarget[];
  /** The first `hosts` hosts with their first `venvs` venvs. */
  slice(hosts: number, venvs: number): FleetTarget[];
  cacheOf(host: FleetHost): string;
  stageOf(host: FleetHost): string;
  /**
   * Remember the current venvs and wheel caches of `targets` as `state` (without `caches`: the
   * venvs only, keeping the caches' states as an earlier capture recorded them).
   */
  capture(state: VenvState, targets: readonly FleetTarget[], caches?: boolean): void;
  /** Give every venv of `targets` the state `source` has (its files, with paths rewritten). */
  cloneState(state: VenvState, source: { host: FleetHost; venv: string }, targets: readonly FleetTarget[]): void;
  /** Put `targets` back into `state` (venvs, caches, empty staging) and check the venvs. */
  reset(state: VenvState, targets: readonly FleetTarget[]): Promise<void>;
  /**
   * Problems of `targets`' venvs against `state` (empty list: all right). An app root is checked
   * through its `current` symlink: the live release must hold exactly the state's versions.
   */
  check(state: VenvState, targets: readonly FleetTarget[]): string[];
  stop(): Promise<void>;
}

const SETUP_CONCURRENCY = 2;

/**
 * `roots`: app roots per host for the releases layout, <host>/srv/app1… (made empty; vdeploy builds
 * the releases); `shipRoots`: as many more, <host>/srv/ship1…, for the ship rows, whose states are
 * made by deploys with shipping (their history names the artifacts a delta starts from).
 *
 * The sshds skip root's ~/.bashrc (fleet.ts `lightShell`): on this machine it costs 0.6 CPU-seconds
 * per session, which real servers would pay on their own CPUs, not on the controller's.
 */
export async function startBenchFleet(opts: { hosts: number; venvs: number; roots?: number; shipRoots?: number; wheels: WheelSet; log: (line: string) => void }): Promise<BenchFleet> {
  const started = performance.now();
  const fleet = await startFleet({ hosts: opts.hosts, venvsPerHost: 0, lightShell: true });
  try {
    const template = join(fleet.dir, 'template-venv');
    await createTemplateVenv(template);
    const limit = new Semaphore(SETUP_CONCURRENCY);
    await Promise.all(
      fleet.hosts.flatMap((host) =>
        Array.from({ length: opts.venvs }, (_, i) => {
          const venv = join(host.root, 'srv', `venv${i + 1}`);
          host.venvs[i] = venv;
          return limit.run(() => createVenvFromTemplate(template, venv));
        }),
      ),
    );
    const makeRoots = (count: number, prefix: string): FleetTarget[] =>
      fleet.hosts.map((host) => ({
        host,
        venvs: Array.from({ length: count }, (_, i) => {
          const root = join(host.root, 'srv', `${prefix}${i + 1}`);
          mkdirSync(root, { recursive: true });
          return root;
        }),
      }));
    const roots = makeRoots(opts.roots ?? 0, 'app');
    const shipRoots = makeRoots(opts.shipRoots ?? 0, 'ship');
    const extra = [opts.roots ? `${opts.roots} app roots` : '', opts.shipRoots ? `${opts.shipRoots} ship app roots` : ''].filter(Boolean);
    opts.log(`fleet: ${opts.hosts} sshd hosts × ${opts.venvs} venvs${extra.length ? ` and ${extra.join(' and ')}` : ''} ready in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    return prepare(fleet, opts.wheels, readInstalled(template), roots, shipRoots);
  } catch (err) {
    await fleet.stop();
    throw err;
  }
}

function prepare(fleet: Fleet, wheels: WheelSet, base: ReadonlyMap<string, string>, allRoots: FleetTarget[], allShipRoots: FleetTarget[]): BenchFleet {
  const local = new LocalConnection();
  const all: FleetTarget[] = fleet.hosts.map((host) => ({ host, venvs: [...host.venvs] }));
  const roots = new Set([...allRoots, ...allShipRoots].flatMap((t) => t.venvs));
  const snapshots = new Map<string, Map<VenvState, TreeSnapshot>>();
  const cacheOf = (host: FleetHost) => cacheDirOf(host);
  const stageOf = (host: FleetHost) => join(host.root, 'baseline-stage');
  const snapshotDir = (host: FleetHost, state: VenvState, name: string) => join(host.root, 'bench-states', state, name);
  const remember = (path: string, state: VenvState, snapshot: TreeSnapshot) => {
    const byState = snapshots.get(path) ?? new Map<VenvState, TreeSnapshot>();
    byState.set(state, snapshot);
    snapshots.set(path, byState);
  };
  const snapshotOf = (path: string, state: VenvState) => {
    const found = snapshots.get(path)?.get(state);
    if (!found) throw new Error(`bench: no ${state} state recorded for ${path}`);
    return found;
  };
  const expected = (state: VenvState) => {
    const out = new Map(base);
    if (state !== 'empty') for (const w of wantedWheels(wheels, state === 'app-1.0' ? '1.0' : '1.1')) out.set(w.key, w.version);
    return out;
  };
  const check = (state: VenvState, targets: readonly FleetTarget[]) =>
    targets.flatMap(({ venvs }) =>
      venvs.flatMap((venv) => {
        const app = state === 'empty' ? undefined : { name: APP, version: state.slice('app-'.length) };
        if (!roots.has(venv)) return checkVenv(venv, expected(state), app);
        if (state === 'empty') return existsSync(join(venv, 'current')) ? [`${venv}: has a current release, expected none`] : [];
        const live = liveRelease(venv);
        return typeof live === 'string' ? checkVenv(join(venv, 'current'), expected(state), app) : [live.problem];
      }),
    );

  return {
    fleet,
    all,
    allRoots,
    allShipRoots,
    slice: (hosts, venvs) => all.slice(0, hosts).map((t) => ({ host: t.host, venvs: t.venvs.slice(0, venvs) })),
    cacheOf,
    stageOf,
    capture(state, targets, caches = true) {
      for (const { host, venvs } of targets) {
        const cache = cacheOf(host);
        // An empty state has no wheel cache at all, as on a host vdeploy never saw.
        if (caches && state !== 'empty' && existsSync(cache)) remember(cache, state, fresh(snapshotDir(host, state, 'wheel-cache'), (d) => snapshotTree(cache, d)));
        for (const venv of venvs) remember(venv, state, fresh(snapshotDir(host, state, basename(venv)), (d) => snapshotTree(venv, d)));
      }
    },
    cloneState(state, source, targets) {
      const sourceCache = snapshotOf(cacheOf(source.host), state);
      const sourceVenv = snapshotOf(source.venv, state);
      for (const { host, venvs } of targets) {
        if (host !== source.host) remember(cacheOf(host), state, fresh(snapshotDir(host, state, 'wheel-cache'), (d) => snapshotTree(sourceCache.dir, d)));
        for (const venv of venvs) {
          if (venv === source.venv || snapshots.get(venv)?.has(state)) continue;
          const dir = snapshotDir(host, state, basename(venv));
          remember(venv, state, fresh(dir, (d) => cloneSnapshot(sourceVenv, { venv: source.venv, cache: cacheOf(source.host) }, { venv, cache: cacheOf(host) }, d)));
        }
      }
    },
    async reset(state, targets) {
      // An empty state throws away a whole installed venv: rename it aside and let `rm -rf`s run
      // side by side instead of unlinking 9,000 files one by one here.
      const trash: string[] = [];
      for (const { host, venvs } of targets) {
        rmSync(stageOf(host), { recursive: true, force: true });
        mkdirSync(stageOf(host), { recursive: true });
        if (state === 'empty') {
          rmSync(cacheOf(host), { recursive: true, force: true });
          for (const venv of venvs) {
            const aside = join(host.root, 'bench-trash', `${basename(venv)}-${trash.length}`);
            mkdirSync(join(host.root, 'bench-trash'), { recursive: true });
            if (existsSync(venv)) {
              renameSync(venv, aside);
              trash.push(aside);
            }
          }
        } else {
          restoreTree(snapshotOf(cacheOf(host), state), cacheOf(host));
        }
      }
      const limit = new Semaphore(4);
      await Promise.all(trash.map((dir) => limit.run(() => local.exec(['rm', '-rf', '--', dir]))));
      for (const { venvs } of targets) for (const venv of venvs) restoreTree(snapshotOf(venv, state), venv);
      const problems = check(state, targets);
      if (problems.length > 0) throw new Error(`bench: resetting to ${state} went wrong:\n  ${problems.slice(0, 10).join('\n  ')}`);
      // Write back what the reset (and the previous run) left dirty now, not during the next timed run.
      await local.exec(['sync']);
    },
    check,
    stop: () => fleet.stop(),
  };
}

/** The release `<root>/current` names (a relative symlink releases/<id> to a directory), or what is wrong with it. */
function liveRelease(root: string): string | { problem: string } {
  const link = join(root, 'current');
  let target: string;
  try {
    if (!lstatSync(link).isSymbolicLink()) return { problem: `${link} is not a symlink` };
    target = readlinkSync(link);
  } catch {
    return { problem: `${root}: no current release` };
  }
  const m = /^releases\/([^/]+)$/.exec(target);
  if (!m || !existsSync(join(root, target, 'pyvenv.cfg'))) return { problem: `${link} -> ${target} is not a release under ${root}/releases` };
  return m[1]!;
}

/** Make `dir` anew (an older state of the same name is replaced) and fill it. */
function fresh<T>(dir: string, fill: (dir: string) => T): T {
  rmSync(dir, { recursive: true, force: true });
  return fill(dir);
}
