/**
 * `npm run bench`: vdeploy's deploy speed, scaling and memory, side by side with a naive baseline and
 * the floor, on a real fleet of sshds on this machine. Prints the results as Markdown and writes
 * bench/results.md and bench/results.json. Exits 1 if any run left a venv with the wrong versions (a
 * fast wrong deploy is not a result); missed speed targets are reported, never an error.
 *
 *   npm run bench                  # the full benchmark (minutes)
 *   npm run bench -- --smoke       # 1 × 1, one run: CI's check that it works
 *   npm run bench -- --scenarios layouts --merge   # only the in-place vs releases rows, kept with the rest
 *   npm run bench -- --help
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, release, tmpdir, totalmem, type } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeDeployProject, type DeployProject } from '../test/helpers/deploy-project.js';
import { startBenchFleet, type BenchFleet, type VenvState } from './bench-fleet.js';
import { detectRssMethod, pinnedRequirements, timeVdeploy, USER_TMPDIR, VDEPLOY_CLI, type FleetTarget, type RssMethod } from './contenders.js';
import { parseBenchOptions, USAGE, type BenchOptions } from './options.js';
import { chooseScratchRoot } from './scratch-root.js';
import { median, seconds } from './profile.js';
import { measureLayoutRow, type LayoutRow } from './layouts.js';
import { checkLayoutTargets, checkTargets, renderLayoutTable, renderMarkdown, renderTable, summarizeLayoutRow, summarizeRow, type BenchResults, type Machine, type StartupTimes } from './report.js';
import { measureRow, WrongResultError, type RowContext, type RowResult, type Scenario } from './scenarios.js';
import { LocalArtifacts, measureShipRow, type ShipRow } from './ship.js';
import { checkShipTargets, formatSplit, renderShipTable, summarizeShipRow } from './ship-report.js';
import { SYSTEM_PYTHON } from './venvs.js';
import { APP, copyWheels, prepareWheels, wantedWheels, type WheelSet } from './wheel-set.js';

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const STARTUP_SAMPLES = 5;
const MIB = 2 ** 20;
const GIB = 2 ** 30;
const log = (line: string) => process.stderr.write(`bench: ${line}\n`);

/** Temporary directories of this run, removed at the end (and on Ctrl-C). */
const scratch: string[] = [];
function removeScratch(): void {
  for (const dir of scratch.splice(0)) {
    rmSync(dir, { recursive: true, force: true });
    // vdeploy's deployfile loader (jiti) caches each project's transpiled deployfile in TMPDIR/jiti.
    for (const tmp of new Set([USER_TMPDIR ?? tmpdir(), dirname(dir)])) {
      const cache = join(tmp, 'jiti');
      if (!existsSync(cache)) continue;
      for (const f of readdirSync(cache)) if (f.startsWith(`${basename(dir)}-`)) rmSync(join(cache, f), { force: true });
    }
  }
}

async function main(argv: string[]): Promise<number> {
  let options: BenchOptions | 'help';
  try {
    options = parseBenchOptions(argv, BENCH_DIR);
  } catch (err) {
    process.stderr.write(`bench: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (options === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  if (!existsSync(VDEPLOY_CLI)) {
    log(`${VDEPLOY_CLI} not found: build first (\`npm run bench\` runs \`npm run build\` for you)`);
    return 2;
  }
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    // process.exit runs the fleet helper's exit hook, which stops exactly the sshds it started.
    process.on(signal, () => {
      removeScratch();
      process.exit(130);
    });
  }

  // Everything the fleet writes goes under one root; os.tmpdir() (and so the fleet helper) reads TMPDIR.
  // Inodes: a venv with its saved states takes about 10,000 (directories are never shared by the snapshots' hard links).
  const venvs = options.hosts * options.venvs * 3 + (options.scale ? Math.max(...options.scaleHosts) * options.scaleVenvs : 0);
  const root = chooseScratchRoot(options.tmpdir, GIB + options.hosts * options.venvs * 100 * MIB + (options.scale ? GIB : 0), 100_000 + venvs * 10_000);
  process.env.TMPDIR = root.dir;
  const began = performance.now();
  const session = new Date().toISOString();
  const startLoad = loadavg().map((l) => Number(l.toFixed(2)));
  const rss = await detectRssMethod();
  const work = mkdtempSync(join(tmpdir(), 'vdeploy-bench-'));
  scratch.push(work);
  // vdeploy's local caches (interpreter facts, wheel metadata, the artifact cache of issue 16) in the
  // scratch root: warm as deploying the fleet leaves them, and no artifacts left in the user's cache.
  const localCache = join(work, 'vdeploy-cache');
  process.env.VDEPLOY_CACHE_DIR = localCache;
  log(`load average ${loadavg().map((l) => l.toFixed(2)).join(' ')} on ${availableParallelism()} CPUs; peak RSS via ${rss}; fleet on ${root.description}`);
  const rows: RowResult[] = [];
  const layoutRows: LayoutRow[] = [];
  const shipRows: ShipRow[] = [];
  let startup: StartupTimes | undefined;
  try {
    const wheels = await prepareWheels(join(work, 'wheels'));
    const floor = { requirements: join(work, 'floor-requirements.txt'), findLinks: join(work, 'floor-wheels') };
    writeFileSync(floor.requirements, pinnedRequirements(wantedWheels(wheels, '1.1')));
    copyWheels(wantedWheels(wheels, '1.1'), floor.findLinks);
    const context = (bench: BenchFleet, project: DeployProject, targets: FleetTarget[]): RowContext => ({ bench, wheels, project, targets, rss, floor, log, session });

    const shipping = options.ship.length > 0;
    if (shipping && !supportsShipping()) {
      log(`${VDEPLOY_CLI} has no shipping (\`deploy --no-ship\`): the ship rows need a vdeploy with issue 16`);
      return 2;
    }
    if (options.scenarios.length > 0 || options.layouts.length > 0 || shipping) {
      const layouts = options.layouts.length > 0;
      const mainHosts = options.scenarios.length > 0 || layouts ? options.hosts : 0;
      const bench = await startBenchFleet({
        hosts: Math.max(mainHosts, shipping ? options.shipHosts : 0),
        venvs: options.venvs,
        roots: layouts ? options.venvs : 0,
        shipRoots: shipping ? options.venvs : 0,
        wheels,
        log,
      });
      try {
        // The in-place venvs of every host: the main rows' targets, and the floors of the ship rows.
        const project = await makeProject(bench, bench.all, wheels);
        await establishStates(bench, project, bench.all, rss);
        const main = bench.slice(options.hosts, options.venvs);
        const mainProject = main.length === bench.all.length ? project : await makeProject(bench, main, wheels);
        for (const scenario of options.scenarios) {
          log(`${scenario} ${options.hosts}×${options.venvs}: ${options.runs} run${options.runs > 1 ? 's' : ''} of each contender`);
          rows.push(await measureRow(context(bench, mainProject, main), scenario, 'main', options.runs));
        }
        if (layouts) {
          // Built with pip, as issue 15 measured them: shipping off (a vdeploy without it has nothing to turn off).
          const roots = bench.allRoots.slice(0, options.hosts);
          const releases = await makeProject(bench, roots, wheels, { releases: true, ship: supportsShipping() ? false : undefined });
          await establishStates(bench, releases, roots, rss, false);
          for (const scenario of options.layouts) {
            log(`${scenario} ${options.hosts}×${options.venvs}: ${options.runs} run${options.runs > 1 ? 's' : ''} of each layout`);
            const ctx = { bench, targets: { inPlace: main, releases: roots }, projects: { inPlace: mainProject, releases }, rss, log, session };
            layoutRows.push(await measureLayoutRow(ctx, scenario, options.runs));
          }
        }
        if (shipping) {
          const roots = bench.allShipRoots.slice(0, options.shipHosts);
          // Shipping is on by default: the deployfile says nothing about it, as a user's would not.
          const shipProject = await makeProject(bench, roots, wheels, { releases: true });
          const artifacts = new LocalArtifacts(join(localCache, 'artifacts'), join(work, 'artifact-states'));
          // The states of the app roots and of the local artifact cache, as deploying with shipping leaves them.
          await establishStates(bench, shipProject, roots, rss, false, (state) => artifacts.save(state));
          const ctx = { bench, targets: { releases: roots, inPlace: bench.slice(options.shipHosts, options.venvs) }, project: shipProject, floor, artifacts, rss, log, session };
          for (const scenario of options.ship) {
            log(`${scenario} ${options.shipHosts}×${options.venvs}: ${options.runs} run${options.runs > 1 ? 's' : ''} of each contender`);
            shipRows.push(await measureShipRow(ctx, scenario, options.runs));
          }
        }
        // Only with the main rows: a layouts-only run merged into earlier results keeps their startup times.
        if (options.scenarios.length > 0) startup = await measureStartup(mainProject, rss);
      } finally {
        await bench.stop();
      }
    }

    if (options.scale) {
      const largest = Math.max(...options.scaleHosts);
      const bench = await startBenchFleet({ hosts: largest, venvs: options.scaleVenvs, wheels, log });
      try {
        const projects = new Map<number, DeployProject>();
        for (const hosts of new Set([1, ...options.scaleHosts])) projects.set(hosts, await makeProject(bench, bench.slice(hosts, options.scaleVenvs), wheels));
        // Installing Django into 64 venvs would take minutes of setup: deploy host1 for real, then give
        // every other venv the same files (paths rewritten). Every timed run still checks every venv.
        const first = bench.slice(1, options.scaleVenvs);
        await establishStates(bench, projects.get(1)!, first, rss);
        const source = { host: first[0]!.host, venv: first[0]!.venvs[0]! };
        bench.cloneState('app-1.0', source, bench.all);
        bench.cloneState('app-1.1', source, bench.all);
        // The cloned hosts never saw vdeploy, so its local interpreter cache knows host1 only, where a
        // fleet that vdeploy deployed has had every host probed. One untimed no-op deploy of the whole
        // fleet leaves it as such a deploy would; without it the first timed run of each size pays
        // the cold probe (an interpreter start per host) and the scale rows compare cold with warm.
        await bench.reset('app-1.1', bench.all);
        const warm = await timeVdeploy(projects.get(largest)!.dir, ['deploy', '--yes'], rss);
        const problems = bench.check('app-1.1', bench.all);
        if (problems.length > 0) throw new WrongResultError(`the warming no-op deploy changed the fleet:\n  ${problems.slice(0, 10).join('\n  ')}`);
        log(`every host probed once by a no-op deploy (untimed, ${seconds(warm.ms)}), as deploying the fleet leaves vdeploy's local caches`);
        for (const scenario of ['noop', 'upgrade'] as Scenario[]) {
          for (const hosts of options.scaleHosts) {
            log(`scale: ${scenario} ${hosts}×${options.scaleVenvs}: ${options.scaleRuns} run${options.scaleRuns > 1 ? 's' : ''} of each contender`);
            rows.push(await measureRow(context(bench, projects.get(hosts)!, bench.slice(hosts, options.scaleVenvs)), scenario, 'scale', options.scaleRuns, hosts <= options.scaleBaselineMax));
          }
        }
      } finally {
        await bench.stop();
      }
    }
  } catch (err) {
    if (err instanceof WrongResultError) log(`WRONG RESULT, no numbers reported: ${err.message}`);
    else log(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    return 1;
  } finally {
    removeScratch();
  }

  const results: BenchResults = {
    generatedAt: new Date().toISOString(),
    sessions: [{ started: session, command: `npm run bench${argv.length ? ` -- ${argv.join(' ')}` : ''}`, loadAverage: startLoad }],
    machine: { ...describeMachine(), storage: root.description },
    rssMethod: rss,
    ...(startup ? { startup } : {}),
    rows,
    ...(layoutRows.length ? { layoutRows } : {}),
    ...(shipRows.length ? { shipRows } : {}),
  };
  const merged = options.merge && options.out ? mergeWithPrevious(results, join(options.out, 'results.json')) : results;
  if (options.out) {
    mkdirSync(options.out, { recursive: true });
    writeFileSync(join(options.out, 'results.md'), renderMarkdown(merged));
    const json = {
      ...merged,
      summaries: merged.rows.map(summarizeRow),
      layoutSummaries: (merged.layoutRows ?? []).map(summarizeLayoutRow),
      shipSummaries: (merged.shipRows ?? []).map(summarizeShipRow),
      targets: [...checkTargets(merged.rows), ...checkLayoutTargets(merged.layoutRows ?? []), ...checkShipTargets(merged.shipRows ?? [])],
    };
    writeFileSync(join(options.out, 'results.json'), `${JSON.stringify(json, null, 2)}\n`);
  }
  const smokeTables = [
    ...(rows.length ? renderTable(rows) : []),
    ...(layoutRows.length ? ['', ...renderLayoutTable(layoutRows)] : []),
    ...(shipRows.length ? ['', ...renderShipTable(shipRows), '', ...shipRows.map((r) => `${r.scenario}: ${formatSplit(summarizeShipRow(r).split)}`)] : []),
  ];
  process.stdout.write(options.smoke ? `${smokeTables.join('\n')}\n` : renderMarkdown(merged));
  const verified =
    rows.reduce((n, r) => n + r.runs.vdeploy.length + r.runs.baseline.length + r.runs.floor.length, 0) +
    layoutRows.reduce((n, r) => n + r.runs.inPlace.length + r.runs.releases.length, 0) +
    shipRows.reduce((n, r) => n + r.runs.ship.length + r.runs.floor.length, 0);
  log(`all ${verified} timed runs verified (every venv held exactly the expected versions); took ${seconds(performance.now() - began)}${options.out ? `; wrote ${join(options.out, 'results.md')} and results.json` : ''}`);
  return 0;
}

/**
 * A deploy project (deployfile, wheel repository, requirements) for these hosts and venvs (with
 * `releases`: app roots; `ship`: the deployfile's `ship.enabled`, left out when undefined).
 */
async function makeProject(bench: BenchFleet, targets: readonly FleetTarget[], wheels: WheelSet, opts: { releases?: boolean; ship?: boolean } = {}): Promise<DeployProject> {
  const project = await makeDeployProject(
    { ...bench.fleet, hosts: targets.map((t) => t.host) },
    {
      venvs: targets.flatMap(({ host, venvs }) => venvs.map((path) => ({ host, path, ...(opts.releases ? { releases: true } : {}) }))),
      requirements: `${APP}==1.1\n`,
      wheels: wheels.all.map((w) => w.file),
      ...(opts.ship !== undefined ? { extra: { ship: { enabled: opts.ship } } } : {}),
    },
  );
  scratch.push(project.dir);
  return project;
}

/**
 * Record the states scenarios start from, made by vdeploy itself (untimed): the venvs as created
 * (empty), after deploying the app 1.0, and after upgrading it to 1.1 — each checked. With
 * `caches` false (the app roots, deployed after the venvs on the same hosts), the wheel caches keep
 * the states the venvs' deploys gave them: what deploying the app 1.0 alone leaves in a cache.
 */
async function establishStates(bench: BenchFleet, project: DeployProject, targets: readonly FleetTarget[], rss: RssMethod, caches = true, after?: (state: VenvState) => void): Promise<void> {
  bench.capture('empty', targets, caches);
  after?.('empty');
  for (const version of ['1.0', '1.1'] as const) {
    await project.setRequirements(`${APP}==${version}\n`);
    const r = await timeVdeploy(project.dir, ['deploy', '--yes'], rss);
    const problems = bench.check(`app-${version}`, targets);
    if (problems.length > 0) throw new WrongResultError(`setting up (deploying ${APP} ${version}) left the fleet wrong:\n  ${problems.slice(0, 10).join('\n  ')}`);
    bench.capture(`app-${version}`, targets, caches);
    after?.(`app-${version}`);
    log(`state app-${version} deployed (untimed setup, ${seconds(r.ms)})`);
  }
}

let shipSupport: boolean | undefined;
/** Whether the measured CLI has issue 16's shipping (`deploy --no-ship`): VDEPLOY_BENCH_CLI may name an older build. */
function supportsShipping(): boolean {
  shipSupport ??= execFileSync(process.execPath, [VDEPLOY_CLI, 'deploy', '--help'], { encoding: 'utf8' }).includes('--no-ship');
  return shipSupport;
}

async function measureStartup(project: DeployProject, rss: RssMethod): Promise<StartupTimes> {
  const sample = async (args: string[]) => {
    const times: number[] = [];
    for (let i = 0; i < STARTUP_SAMPLES; i++) times.push((await timeVdeploy(project.dir, args, rss)).ms);
    return median(times);
  };
  return { version: await sample(['--version']), venvs: await sample(['venvs']) };
}

function describeMachine(): Machine {
  const run = (file: string, args: string[]) => {
    try {
      return execFileSync(file, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
    } catch (err) {
      return String((err as { stderr?: string }).stderr ?? '').trim();
    }
  };
  return {
    cpu: cpus()[0]?.model.replace(/\s+/g, ' ').trim() ?? 'unknown CPU',
    nproc: availableParallelism(),
    memoryBytes: totalmem(),
    os: `${type()} ${release()}`,
    node: process.version,
    python: run(SYSTEM_PYTHON, ['--version']),
    ssh: run('sh', ['-c', 'ssh -V 2>&1']).split(',')[0]!,
  };
}

/** This run's rows, plus the rows of an earlier results.json that this run did not measure. */
function mergeWithPrevious(results: BenchResults, file: string): BenchResults {
  if (!existsSync(file)) return results;
  const previous = JSON.parse(readFileSync(file, 'utf8')) as BenchResults;
  const key = (r: RowResult) => `${r.group} ${r.scenario} ${r.hosts}×${r.venvs}`;
  const fresh = new Set(results.rows.map(key));
  const order = (r: RowResult) => (r.group === 'main' ? 0 : 1) * 1e6 + ['fresh', 'noop', 'upgrade'].indexOf(r.scenario) * 1e3 + r.hosts;
  const rows = [...previous.rows.filter((r) => !fresh.has(key(r))), ...results.rows].sort((a, b) => order(a) - order(b));
  const layoutKey = (r: LayoutRow) => `${r.scenario} ${r.hosts}×${r.venvs}`;
  const freshLayouts = new Set((results.layoutRows ?? []).map(layoutKey));
  const layoutOrder = (r: LayoutRow) => ['layout-upgrade', 'layout-rollback', 'layout-fresh'].indexOf(r.scenario) * 1e3 + r.hosts;
  const layoutRows = [...(previous.layoutRows ?? []).filter((r) => !freshLayouts.has(layoutKey(r))), ...(results.layoutRows ?? [])].sort((a, b) => layoutOrder(a) - layoutOrder(b));
  const shipKey = (r: ShipRow) => `${r.scenario} ${r.hosts}×${r.venvs}`;
  const freshShips = new Set((results.shipRows ?? []).map(shipKey));
  const shipOrder = (r: ShipRow) => ['ship-fresh', 'ship-upgrade', 'ship-noop'].indexOf(r.scenario) * 1e3 + r.hosts;
  const shipRows = [...(previous.shipRows ?? []).filter((r) => !freshShips.has(shipKey(r))), ...(results.shipRows ?? [])].sort((a, b) => shipOrder(a) - shipOrder(b));
  return {
    ...results,
    ...(results.startup ?? previous.startup ? { startup: results.startup ?? previous.startup! } : {}),
    rows,
    ...(layoutRows.length ? { layoutRows } : {}),
    ...(shipRows.length ? { shipRows } : {}),
    sessions: [...previous.sessions, ...results.sessions].filter((s) => [...rows, ...layoutRows, ...shipRows].some((r) => r.session === s.started)),
  };
}

process.exitCode = await main(process.argv.slice(2));
