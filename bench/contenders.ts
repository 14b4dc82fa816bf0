/**
 * The three things the benchmark times, side by side on the same fleet and wheels:
 * - vdeploy: `vdeploy deploy --yes` through the built CLI, the whole process, with its peak RSS;
 * - the naive baseline: what vdeploy replaces — one venv after another, `pip freeze` over ssh, scp the
 *   wheels that venv lacks, `pip install --upgrade --no-index --find-links` (the ssh/scp binaries,
 *   no parallelism);
 * - the floor: the unavoidable part — the same pip installs vdeploy runs, run directly with the same
 *   parallelism and no SSH; for a no-op, one `ssh host true` per host in parallel.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { LocalConnection } from '../src/remote/local-connection.js';
import { Semaphore } from '../src/remote/semaphore.js';
import type { Fleet, FleetHost } from '../test/helpers/fleet.js';
import { CLI_BIN } from '../test/helpers/paths.js';
import { normalizeName } from './venvs.js';

export interface BenchWheel {
  /** As in the wheel's filename, e.g. Django. */
  name: string;
  /** Normalized name, e.g. django. */
  key: string;
  version: string;
  file: string;
  sha256: string;
}

/** Some of a fleet: hosts, each with the venvs a scenario deploys to. */
export interface FleetTarget {
  host: FleetHost;
  venvs: string[];
}

/** One stderr line of a vdeploy run and when it arrived (ms since the process was started). */
export interface TimedLine {
  ms: number;
  text: string;
}

export interface VdeployRun {
  ms: number;
  /** Peak resident set size of the vdeploy process, KiB. */
  rssKiB: number;
  /** CPU time (user + system) of the vdeploy process, ms: what the controller spends, SSH handshakes included. */
  cpuMs: number;
  stdout: string;
  lines: TimedLine[];
}

export type RssMethod = 'gnu-time' | 'node-hook';

/** The built CLI that is measured; VDEPLOY_BENCH_CLI=path/to/main.js measures another build (A/B comparisons). */
export const VDEPLOY_CLI = process.env.VDEPLOY_BENCH_CLI ?? CLI_BIN;

/** vdeploy's own default for hosts worked on at once (ssh.concurrency): the floor uses the same. */
export const VDEPLOY_CONCURRENCY = 16;

const local = new LocalConnection();
/** The user's TMPDIR, before the benchmark points it at its scratch root: vdeploy runs as the user would. */
export const USER_TMPDIR = process.env.TMPDIR;
const HOOK = pathToFileURL(join(dirname(fileURLToPath(import.meta.url)), 'max-rss-hook.mjs')).href;
const PIP_ENV = { PIP_CONFIG_FILE: '/dev/null' };

/** GNU time's %M when it is installed (the outside view); else a preloaded hook reading the process's own getrusage. */
export async function detectRssMethod(): Promise<RssMethod> {
  if (!existsSync('/usr/bin/time')) return 'node-hook';
  const r = await local.exec(['/usr/bin/time', '--version'], { nothrow: true });
  return /GNU/.test(r.stdout + r.stderr) ? 'gnu-time' : 'node-hook';
}

/** Run the built CLI in `cwd` (exit code must be 0) and measure it. */
export function timeVdeploy(cwd: string, args: readonly string[], rss: RssMethod): Promise<VdeployRun> {
  // GNU time: "%M %U %S" (peak RSS KiB, user and system CPU seconds); the hook writes the same.
  const scratch = mkdtempSync(join(tmpdir(), 'vdeploy-bench-rss-'));
  const rssFile = join(scratch, 'rss');
  const node = [process.execPath, ...(rss === 'node-hook' ? ['--import', HOOK] : []), VDEPLOY_CLI, ...args];
  const argv = rss === 'gnu-time' ? ['/usr/bin/time', '-f', '%M %U %S', '-o', rssFile, ...node] : node;
  // As a user would run it, minus an SSH agent: only the fleet's key (the deployfile names it).
  const env: NodeJS.ProcessEnv = { ...process.env, TMPDIR: USER_TMPDIR, NO_COLOR: '1', FORCE_COLOR: undefined, SSH_AUTH_SOCK: undefined, VDEPLOY_SSH_PASSPHRASE: undefined };
  if (rss === 'node-hook') env.VDEPLOY_BENCH_RSS_FILE = rssFile;
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(argv[0]!, argv.slice(1), { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let pending = '';
    const lines: TimedLine[] = [];
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    // Lines are stamped as they arrive: vdeploy writes each event when it happens (stderr is a pipe,
    // written synchronously), so the stamps are a timeline of the run.
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      const ms = performance.now() - started;
      const parts = (pending + d).split('\n');
      pending = parts.pop()!;
      for (const text of parts) lines.push({ ms, text });
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const ms = performance.now() - started;
      if (pending) lines.push({ ms, text: pending });
      const rssText = existsSync(rssFile) ? readFileSync(rssFile, 'utf8') : '';
      rmSync(scratch, { recursive: true, force: true });
      if (code !== 0) {
        const tail = [...lines.slice(-15).map((l) => l.text), stdout.slice(-2000)].join('\n');
        reject(new Error(`vdeploy ${args.join(' ')} exited with ${code ?? signal} in ${cwd}:\n${tail}`));
        return;
      }
      // GNU time writes "Command exited with non-zero status" lines before its own when it fails; ours is last.
      const [rssKiB, user, system] = (rssText.trim().split('\n').pop() ?? '').split(' ').map(Number) as [number, number, number];
      if (!Number.isFinite(rssKiB) || rssKiB <= 0 || !Number.isFinite(user + system)) {
        reject(new Error(`could not read vdeploy's peak RSS and CPU time (${rss}): ${JSON.stringify(rssText)}`));
        return;
      }
      resolve({ ms, rssKiB, cpuMs: Math.round((user + system) * 1000), stdout, lines });
    });
  });
}

/**
 * The naive tool: every venv of every host in turn. `pip freeze` over ssh says what the venv has;
 * the wheels it lacks (against the exact pins wanted) are copied with one scp into a staging
 * directory on the host and installed with one `pip install --upgrade`. Returns the milliseconds.
 */
export async function timeBaseline(fleet: Fleet, targets: readonly FleetTarget[], wanted: readonly BenchWheel[], stageOf: (host: FleetHost) => string): Promise<number> {
  const started = performance.now();
  for (const { host, venvs } of targets) {
    for (const venv of venvs) {
      const python = join(venv, 'bin', 'python');
      const pip = ['env', 'PIP_CONFIG_FILE=/dev/null', python, '-m', 'pip'];
      const freeze = await fleet.exec(host, [...pip, 'freeze', '--isolated', '--disable-pip-version-check']);
      const have = parseFreeze(freeze.stdout);
      const needed = wanted.filter((w) => have.get(w.key) !== w.version);
      if (needed.length === 0) continue;
      const stage = stageOf(host);
      await local.exec(['scp', '-q', ...scpOptions(fleet, host), ...needed.map((w) => w.file), `${fleet.user}@${host.address}:${stage}/`]);
      await fleet.exec(host, [
        ...pip, 'install', '--isolated', '--disable-pip-version-check', '--no-input', '--upgrade', '--no-index', '--find-links', stage,
        ...needed.map((w) => `${w.name}==${w.version}`),
      ]);
    }
  }
  return performance.now() - started;
}

/**
 * The floor of a deploy that installs: exactly the pip command vdeploy's apply script runs, on the
 * same venvs, hosts in parallel (up to vdeploy's concurrency) and each host's venvs one after another,
 * as vdeploy does — only without vdeploy and without SSH.
 */
export async function timeFloorInstall(targets: readonly FleetTarget[], requirementsFile: string, findLinks: string): Promise<number> {
  const limit = new Semaphore(VDEPLOY_CONCURRENCY);
  const started = performance.now();
  await Promise.all(
    targets.map(({ venvs }) =>
      limit.run(async () => {
        for (const venv of venvs) {
          await runLikeSshSession([
            join(venv, 'bin', 'python'), '-m', 'pip', 'install', '--isolated', '--no-index', '--find-links', findLinks,
            '--require-hashes', '--disable-pip-version-check', '--no-input', '--report', '/dev/null', '-r', requirementsFile,
          ]);
        }
      }),
    ),
  );
  return performance.now() - started;
}

/**
 * Run a command as an SSH session would: in a session of its own, with the small environment sshd
 * gives (not this process's, which may carry PYTHON* and PIP_* settings the hosts' pips never see),
 * plus PIP_CONFIG_FILE=/dev/null as vdeploy sets.
 */
function runLikeSshSession(argv: readonly string[]): Promise<void> {
  const env: NodeJS.ProcessEnv = {
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: process.env.HOME,
    USER: process.env.USER,
    LOGNAME: process.env.LOGNAME,
    SHELL: process.env.SHELL,
    ...PIP_ENV,
  };
  return new Promise((resolve, reject) => {
    // detached: a session of its own (setsid), as sshd gives every command it runs. With the kernel's
    // autogroup scheduling, CPU is shared between sessions: sharing one with this process would give
    // the floor's pips less CPU than vdeploy's whenever something else loads the machine.
    const child = spawn(argv[0]!, argv.slice(1), { env, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) =>
      code === 0 ? resolve() : reject(new Error(`\`${argv.join(' ')}\` exited with ${code ?? signal}: ${stderr.trim().split('\n').slice(-5).join('\n')}`)),
    );
  });
}

/** The floor of a no-op: one `ssh host true` per host (the ssh binary), in parallel. */
export async function timeFloorNoop(fleet: Fleet, targets: readonly FleetTarget[]): Promise<number> {
  const limit = new Semaphore(VDEPLOY_CONCURRENCY);
  const started = performance.now();
  await Promise.all(targets.map(({ host }) => limit.run(() => fleet.exec(host, ['true']))));
  return performance.now() - started;
}

/** The requirements file vdeploy writes for a venv: every package pinned, with its sha256. */
export function pinnedRequirements(wheels: readonly BenchWheel[]): string {
  return wheels.map((w) => `${w.name}==${w.version} --hash=sha256:${w.sha256}\n`).join('');
}

/** `pip freeze` output → normalized name → version (editable and URL lines are not ours to judge). */
export function parseFreeze(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)\s*$/.exec(line.trim());
    if (m) out.set(normalizeName(m[1]!), m[2]!);
  }
  return out;
}

/** scp takes ssh's options but spells the port -P. */
export function scpOptions(fleet: Fleet, host: FleetHost): string[] {
  const args = fleet.sshArgs(host).slice(0, -1); // the last word is user@address
  const port = args.indexOf('-p');
  if (port >= 0) args[port] = '-P';
  return args;
}
