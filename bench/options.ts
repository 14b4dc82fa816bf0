/** The benchmark's command line: `npm run bench -- [options]`. */
import { parseArgs } from 'node:util';
import { LAYOUT_SCENARIOS, type LayoutScenario } from './layouts.js';
import type { Scenario } from './scenarios.js';
import { SHIP_SCENARIOS, type ShipScenario } from './ship.js';

export interface BenchOptions {
  hosts: number;
  venvs: number;
  runs: number;
  scenarios: Scenario[];
  /** In-place vs releases layout rows (issue 15), on the main rows' hosts × venvs. */
  layouts: LayoutScenario[];
  scale: boolean;
  scaleHosts: number[];
  scaleVenvs: number;
  scaleRuns: number;
  /** The scale rows run the baseline up to this many hosts only (it grows linearly: minutes a run past 32). */
  scaleBaselineMax: number;
  /** Build once, ship (issue 16): the releases layout with shipping against the main rows' floors. */
  ship: ShipScenario[];
  /** Hosts of the ship rows (venvs: --venvs); default --hosts (smoke: 2, so that one host receives over SSH). */
  shipHosts: number;
  smoke: boolean;
  /** Where results.md and results.json go; undefined: print only. */
  out: string | undefined;
  merge: boolean;
  /** Where the fleet lives (--tmpdir); undefined: /dev/shm when usable, else the system's temp dir. */
  tmpdir: string | undefined;
}

export const USAGE = `Usage: npm run bench -- [options]

  --hosts N           hosts in the main rows (default 4)
  --venvs N           venvs per host in the main rows (default 4)
  --runs N            timed runs per contender and row; the median is reported (default 3)
  --scenarios LIST    any of fresh,noop,upgrade,scale, the in-place vs releases layout rows
                      layout-upgrade,layout-rollback,layout-fresh (or "layouts" for these three),
                      and build once, ship: ship-fresh,ship-upgrade,ship-noop (or "ship")
                      (default: all)
  --scale-hosts LIST  fleet sizes of the scale rows (default 1,4,16,32,64,128)
  --scale-venvs N     venvs per host in the scale rows (default 2)
  --scale-runs N      runs per scale row (default 1: the scale rows' baselines alone take ~6 min a run)
  --scale-baseline-max N  run the scale rows' baseline up to N hosts only (default 32; it grows
                      linearly, one venv after another: 128 hosts would take 7 minutes a run)
  --ship-hosts N      hosts of the ship rows (default: --hosts; with --smoke 2)
  --smoke             1 host × 1 venv, 1 run, fresh/noop/upgrade/layout-upgrade/layout-rollback;
                      prints the tables, writes no files unless --out is given (CI's check that the
                      benchmark works); \`--smoke --scenarios ship-upgrade\`: one ship row, 2 hosts × 1 venv
  --out DIR           write results.md and results.json there (default: bench/)
  --merge             keep the rows of DIR/results.json that this run does not measure
  --tmpdir DIR        put the fleet, venvs and projects under DIR (default: /dev/shm when it is a
                      tmpfs with room, else the system's temporary directory)
  -h, --help          this text

Environment: VDEPLOY_BENCH_CLI=path/to/main.js measures another build of the CLI (default: dist/);
VDEPLOY_SHARED_WHEELS=DIR takes the shared wheels from DIR (default: ../shared/wheels).
`;

const ALL: readonly string[] = ['fresh', 'noop', 'upgrade', ...LAYOUT_SCENARIOS, ...SHIP_SCENARIOS, 'scale'];
// Without the ship rows: their setup (another host's venvs, app roots deployed fresh and upgraded
// with shipping) adds about a minute, which CI does not have. `--smoke --scenarios ship-upgrade` runs one.
const SMOKE = 'fresh,noop,upgrade,layout-upgrade,layout-rollback';
const GROUPS: Record<string, readonly string[]> = { layouts: LAYOUT_SCENARIOS, ship: SHIP_SCENARIOS };

/** Parse argv; throws an Error whose message is one line naming the bad flag and what it needs. */
export function parseBenchOptions(argv: readonly string[], defaultOut: string): BenchOptions | 'help' {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      hosts: { type: 'string' },
      venvs: { type: 'string' },
      runs: { type: 'string' },
      scenarios: { type: 'string' },
      'scale-hosts': { type: 'string' },
      'scale-venvs': { type: 'string' },
      'scale-runs': { type: 'string' },
      'scale-baseline-max': { type: 'string' },
      'ship-hosts': { type: 'string' },
      smoke: { type: 'boolean', default: false },
      out: { type: 'string' },
      merge: { type: 'boolean', default: false },
      tmpdir: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return 'help';
  const smoke = values.smoke!;
  const runs = count('--runs', values.runs, smoke ? 1 : 3);
  const names = list('--scenarios', values.scenarios ?? (smoke ? SMOKE : ALL.join(','))).flatMap((n): string[] => [...(GROUPS[n] ?? [n])]);
  const unknown = names.find((n) => !ALL.includes(n));
  if (unknown) throw new Error(`--scenarios: unknown scenario "${unknown}"; choose from ${ALL.join(', ')} (or layouts, ship)`);
  const scaleHosts = list('--scale-hosts', values['scale-hosts'] ?? '1,4,16,32,64,128').map((h) => count('--scale-hosts', h, 0));
  const hosts = count('--hosts', values.hosts, smoke ? 1 : 4);
  const options: BenchOptions = {
    hosts,
    venvs: count('--venvs', values.venvs, smoke ? 1 : 4),
    runs,
    scenarios: names.filter((n): n is Scenario => ['fresh', 'noop', 'upgrade'].includes(n)),
    layouts: LAYOUT_SCENARIOS.filter((n) => names.includes(n)),
    scale: names.includes('scale'),
    scaleHosts: [...new Set(scaleHosts)].sort((a, b) => a - b),
    scaleVenvs: count('--scale-venvs', values['scale-venvs'], 2),
    scaleRuns: count('--scale-runs', values['scale-runs'], 1),
    scaleBaselineMax: count('--scale-baseline-max', values['scale-baseline-max'], 32),
    ship: SHIP_SCENARIOS.filter((n) => names.includes(n)),
    shipHosts: count('--ship-hosts', values['ship-hosts'], smoke ? 2 : hosts),
    smoke,
    out: values.out ?? (smoke ? undefined : defaultOut),
    merge: values.merge!,
    tmpdir: values.tmpdir,
  };
  const tooMany = [options.hosts, options.shipHosts, ...options.scaleHosts].find((h) => h > 200);
  if (tooMany) throw new Error(`at most 200 hosts (loopback addresses 127.0.0.2…), got ${tooMany}`);
  if (options.merge && !options.out) throw new Error('--merge needs a results directory: give --out DIR');
  return options;
}

function count(flag: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} must be a whole number of at least 1, got "${text}"`);
  return n;
}

function list(flag: string, text: string): string[] {
  const items = text.split(',').map((s) => s.trim()).filter(Boolean);
  if (items.length === 0) throw new Error(`${flag} needs a comma-separated list, got "${text}"`);
  return items;
}
