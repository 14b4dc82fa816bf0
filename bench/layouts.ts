/**
 * The layout rows (issue 15): the same change made by vdeploy to in-place venvs and to app roots in
 * the releases layout, on the same hosts, in turns, each run reset (untimed) to the scenario's start
 * and checked after (an app root through `current`: the live release must hold exactly the expected
 * versions). Besides each run's wall time, every venv's apply time as vdeploy reports it: the host's
 * time for that venv, which is what "a rollback by switch takes well under a second" is about.
 */
import { loadavg } from 'node:os';
import type { DeployProject } from '../test/helpers/deploy-project.js';
import type { BenchFleet, VenvState } from './bench-fleet.js';
import { timeVdeploy, type FleetTarget, type RssMethod } from './contenders.js';
import { median, profileRun, seconds, venvApplyTimes, type RunProfile } from './profile.js';
import { WrongResultError } from './scenarios.js';
import { APP } from './wheel-set.js';

export type LayoutScenario = 'layout-fresh' | 'layout-upgrade' | 'layout-rollback';
export const LAYOUT_SCENARIOS: readonly LayoutScenario[] = ['layout-upgrade', 'layout-rollback', 'layout-fresh'];
export type Layout = 'inPlace' | 'releases';
export const LAYOUTS: readonly Layout[] = ['inPlace', 'releases'];

export interface LayoutRow {
  scenario: LayoutScenario;
  hosts: number;
  venvs: number;
  /** Whole-process milliseconds of every run, per layout, in the order run. */
  runs: Record<Layout, number[]>;
  /** Every venv's apply time (ms) of every run, per layout. */
  venvMs: Record<Layout, number[]>;
  profiles: Record<Layout, RunProfile[]>;
  rssKiB: Record<Layout, number[]>;
  load: number[];
  resetMs: number;
  measuredAt: string;
  session: string;
}

export interface LayoutContext {
  bench: BenchFleet;
  /** The same hosts: in-place venvs, and app roots in the releases layout. */
  targets: Record<Layout, FleetTarget[]>;
  projects: Record<Layout, DeployProject>;
  rss: RssMethod;
  log: (line: string) => void;
  session: string;
}

/** Each scenario's start, the command timed, and the state every venv must be in afterwards. */
const SCENARIO: Record<LayoutScenario, { start: VenvState; args: string[]; end: VenvState }> = {
  'layout-fresh': { start: 'empty', args: ['deploy', '--yes'], end: 'app-1.1' },
  'layout-upgrade': { start: 'app-1.0', args: ['deploy', '--yes'], end: 'app-1.1' },
  // The start is the app 1.0 deployed, then 1.1: the rollback undoes the 1.1 deploy (in place: pip
  // installs 1.0 again; releases: `current` switches back to the 1.0 release, no pip).
  'layout-rollback': { start: 'app-1.1', args: ['rollback', '--yes'], end: 'app-1.0' },
};

export async function measureLayoutRow(ctx: LayoutContext, scenario: LayoutScenario, runs: number): Promise<LayoutRow> {
  const { start, args, end } = SCENARIO[scenario];
  const hosts = ctx.targets.inPlace.length;
  const venvs = ctx.targets.inPlace[0]?.venvs.length ?? 0;
  const label = `${scenario} ${hosts}×${venvs}`;
  const row: LayoutRow = {
    scenario, hosts, venvs,
    runs: { inPlace: [], releases: [] },
    venvMs: { inPlace: [], releases: [] },
    profiles: { inPlace: [], releases: [] },
    rssKiB: { inPlace: [], releases: [] },
    load: [], resetMs: 0,
    measuredAt: new Date().toISOString(),
    session: ctx.session,
  };
  for (const layout of LAYOUTS) await ctx.projects[layout].setRequirements(`${APP}==1.1\n`);
  for (let i = 0; i < runs; i++) {
    // Take turns going first, so a drift in the machine's load does not always land on one layout.
    const order = i % 2 === 0 ? LAYOUTS : [...LAYOUTS].reverse();
    const took: string[] = [];
    for (const layout of order) {
      const targets = ctx.targets[layout];
      const reset = performance.now();
      await ctx.bench.reset(start, targets);
      row.resetMs += performance.now() - reset;
      row.load.push(loadavg()[0]!);
      const r = await timeVdeploy(ctx.projects[layout].dir, args, ctx.rss);
      row.load.push(loadavg()[0]!);
      const problems = ctx.bench.check(end, targets);
      if (problems.length > 0) {
        throw new WrongResultError(`${label}, run ${i + 1}: ${layout} left the fleet wrong (${problems.length} problems):\n  ${problems.slice(0, 10).join('\n  ')}`);
      }
      const perVenv = venvApplyTimes(r.lines);
      if (perVenv.length !== hosts * venvs) {
        throw new WrongResultError(`${label}, run ${i + 1}: ${layout}: vdeploy reported ${perVenv.length} venvs done, expected ${hosts * venvs}`);
      }
      row.runs[layout].push(r.ms);
      row.venvMs[layout].push(...perVenv);
      row.profiles[layout].push(profileRun(r.lines, r.ms));
      row.rssKiB[layout].push(r.rssKiB);
      took.push(`${layout} ${seconds(r.ms)} (per venv ${seconds(median(perVenv))})`);
    }
    ctx.log(`  ${label} run ${i + 1}/${runs}: ${took.join(', ')}; load ${loadavg()[0]!.toFixed(2)}`);
  }
  return row;
}
