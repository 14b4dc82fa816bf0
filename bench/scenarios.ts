/**
 * One row of the benchmark: a scenario on some hosts × venvs, each contender run `runs` times on the
 * same fleet, reset (untimed) to the scenario's starting state before every timed run, and the result
 * checked after every one of them. The contenders take turns going first, so a drift in the
 * machine's load does not always land on the same one.
 */
import { loadavg } from 'node:os';
import type { DeployProject } from '../test/helpers/deploy-project.js';
import type { BenchFleet, VenvState } from './bench-fleet.js';
import { timeBaseline, timeFloorInstall, timeFloorNoop, timeVdeploy, type FleetTarget, type RssMethod } from './contenders.js';
import { profileRun, seconds, type RunProfile } from './profile.js';
import { APP, wantedWheels, type WheelSet } from './wheel-set.js';

export type Scenario = 'fresh' | 'noop' | 'upgrade';
export type Contender = 'vdeploy' | 'baseline' | 'floor';
export const CONTENDERS: readonly Contender[] = ['vdeploy', 'baseline', 'floor'];

export interface RowResult {
  scenario: Scenario;
  group: 'main' | 'scale';
  hosts: number;
  venvs: number;
  /** Milliseconds of every run, per contender, in the order run. */
  runs: Record<Contender, number[]>;
  /** vdeploy's peak RSS per run, KiB. */
  rssKiB: number[];
  /** vdeploy's CPU time (user + system) per run, ms; absent in rows measured before it was recorded. */
  cpuMs?: number[];
  /** Where vdeploy's time went, per run. */
  profiles: RunProfile[];
  /** 1-minute load average before and after each run (the machine is shared). */
  load: number[];
  /** Untimed reset time of the row, ms (how much of the benchmark's wall time is not measurement). */
  resetMs: number;
  measuredAt: string;
  /** When the benchmark process that measured this row started (rows of several sessions can be merged). */
  session: string;
}

export interface RowContext {
  bench: BenchFleet;
  wheels: WheelSet;
  project: DeployProject;
  targets: FleetTarget[];
  rss: RssMethod;
  /** What the floor installs: vdeploy's pinned requirements and a find-links directory with exactly those wheels. */
  floor: { requirements: string; findLinks: string };
  log: (line: string) => void;
  session: string;
}

/** A contender left a venv with other versions than expected: the benchmark must not report it. */
export class WrongResultError extends Error {}

const START: Record<Scenario, VenvState> = { fresh: 'empty', noop: 'app-1.1', upgrade: 'app-1.0' };

/**
 * `baseline` false: the baseline is not run (its runs stay empty, reported as "–"). It works one venv
 * after another, so past 32 hosts it only grows linearly: 128 × 2 venvs would take 7 minutes a run.
 */
export async function measureRow(ctx: RowContext, scenario: Scenario, group: RowResult['group'], runs: number, baseline = true): Promise<RowResult> {
  const hosts = ctx.targets.length;
  const venvs = ctx.targets[0]?.venvs.length ?? 0;
  const label = `${scenario} ${hosts}×${venvs}`;
  const row: RowResult = {
    scenario, group, hosts, venvs,
    runs: { vdeploy: [], baseline: [], floor: [] },
    rssKiB: [], cpuMs: [], profiles: [], load: [], resetMs: 0,
    measuredAt: new Date().toISOString(),
    session: ctx.session,
  };
  const reset = async () => {
    const started = performance.now();
    await ctx.bench.reset(START[scenario], ctx.targets);
    row.resetMs += performance.now() - started;
  };
  // Every scenario ends with the app at 1.1 everywhere.
  await ctx.project.setRequirements(`${APP}==1.1\n`);
  const wanted = wantedWheels(ctx.wheels, '1.1');
  const run: Record<Contender, () => Promise<number>> = {
    vdeploy: async () => {
      const r = await timeVdeploy(ctx.project.dir, ['deploy', '--yes'], ctx.rss);
      const profile = profileRun(r.lines, r.ms);
      row.rssKiB.push(r.rssKiB);
      row.cpuMs!.push(r.cpuMs);
      row.profiles.push(profile);
      if (scenario === 'noop' && (profile.push > 0 || Object.keys(profile.steps).length > 0)) {
        ctx.log(`  warning: vdeploy did work on a no-op: ${JSON.stringify(profile)}`);
      }
      return r.ms;
    },
    baseline: () => timeBaseline(ctx.bench.fleet, ctx.targets, wanted, ctx.bench.stageOf),
    floor: () => (scenario === 'noop' ? timeFloorNoop(ctx.bench.fleet, ctx.targets) : timeFloorInstall(ctx.targets, ctx.floor.requirements, ctx.floor.findLinks)),
  };

  // A no-op changes nothing (checked after every run), so one reset serves all its runs.
  if (scenario === 'noop') await reset();
  for (let i = 0; i < runs; i++) {
    const order = CONTENDERS.map((_, k) => CONTENDERS[(k + i) % CONTENDERS.length]!).filter((c) => baseline || c !== 'baseline');
    const took: string[] = [];
    for (const contender of order) {
      if (scenario !== 'noop') await reset();
      row.load.push(loadavg()[0]!);
      const ms = await run[contender]();
      row.load.push(loadavg()[0]!);
      const problems = ctx.bench.check('app-1.1', ctx.targets);
      if (problems.length > 0) {
        throw new WrongResultError(`${label}, run ${i + 1}: ${contender} left the fleet wrong (${problems.length} problems):\n  ${problems.slice(0, 10).join('\n  ')}`);
      }
      row.runs[contender].push(ms);
      took.push(`${contender} ${seconds(ms)}`);
    }
    ctx.log(`  ${label} run ${i + 1}/${runs}: ${took.join(', ')}; vdeploy peak RSS ${(row.rssKiB.at(-1)! / 1024).toFixed(0)} MiB, CPU ${seconds(row.cpuMs!.at(-1)!)}; load ${loadavg()[0]!.toFixed(2)}`);
  }
  return row;
}
