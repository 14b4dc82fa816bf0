// A practice fleet for the README's tour and for trying things by hand (not a test): starts H real
// sshd hosts × V venvs on loopback (as the tests do), writes a deploy project wired to them with
// Django, gunicorn and a small Django app released, prints where, and runs until Ctrl-C.
//   npx tsx test/helpers/practice-fleet.ts [HOSTS=2] [VENVS=2]
// Everything it makes (hosts, venvs, wheel caches, the project: some 400 MB after a deploy) lives in
// one directory, which Ctrl-C, SIGTERM or the terminal closing removes, after stopping every process
// the fleet started: the sshds and their sessions (a deploy still running against the fleet, too).
// PRACTICE_FLEET_JSON=FILE: once ready, also writes {"project", "fleet", "dir", "sshdPids"} to FILE (for tests).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeDeployProject } from './deploy-project.js';
import { buildDjangoAppWheel, SHOPAPP_SETTINGS } from './django-app.js';
import { descendantsOf, startFleet } from './fleet.js';
import { SHARED_WHEELS } from './paths.js';

const RUNNER = 'VDEPLOY_PRACTICE_FLEET_RUNNER';
const EXIT_CODES = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 } as const;

if (process.env[RUNNER] === '1') await runFleet();
else runInForeground();

/**
 * A terminal's Ctrl-C goes to its whole foreground process group, sshds included: they would die at
 * once, and the sessions they had forked (a deploy's pip, an SFTP upload) would lose their parent and
 * go on writing into the directory being removed. So the fleet runs in a process group of its own,
 * and this process, in the terminal's, passes the signal on and exits with the fleet's code.
 */
function runInForeground(): void {
  const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    detached: true,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, [RUNNER]: '1' },
  });
  for (const signal of Object.keys(EXIT_CODES) as Array<keyof typeof EXIT_CODES>) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => process.exit(code ?? EXIT_CODES[signal as keyof typeof EXIT_CODES] ?? 1));
}

async function runFleet(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'vdeploy-practice-'));
  // The fleet, the app wheel's build and the project each make a temporary directory under
  // os.tmpdir() (which reads TMPDIR): all of them land in `dir`, and one removal takes them all.
  process.env.TMPDIR = dir;
  let stopping = false;
  // Synchronous, and registered before startFleet: it runs first and exits, so fleet.ts's emergency
  // cleanup (which would remove the directory while sessions still write) never races it.
  const stop = (code: number, why?: string) => {
    if (stopping) return;
    stopping = true;
    if (why) console.error(why);
    killEverythingStartedHere();
    rmSync(dir, { recursive: true, force: true, maxRetries: 5 });
    console.log(`\npractice fleet stopped; removed ${dir}`);
    process.exit(code);
  };
  for (const [signal, code] of Object.entries(EXIT_CODES)) process.on(signal, () => stop(code));
  // The foreground process is gone (killed outright): nobody is left to pass on a Ctrl-C.
  process.on('disconnect', () => stop(EXIT_CODES.SIGHUP));

  try {
    const hosts = Number(process.argv[2] ?? 2);
    const venvs = Number(process.argv[3] ?? 2);
    const fleet = await startFleet({ hosts, venvsPerHost: venvs });
    const files = await readdir(SHARED_WHEELS);
    const shared = ['django-', 'asgiref-', 'sqlparse-', 'gunicorn-'].map((p) => join(SHARED_WHEELS, files.find((f) => f.startsWith(p))!));
    const app = await buildDjangoAppWheel(join(fleet.dir, 'dist'), { version: '1.0' });
    const project = await makeDeployProject(fleet, {
      venvs: fleet.hosts.flatMap((h) => h.venvs.map((path) => ({ host: h, path, django: { settings: SHOPAPP_SETTINGS, env: { SHOPAPP_DB: join(path, 'db.sqlite3') } } }))),
      requirements: 'shopapp\n',
      wheels: [...shared, app],
    });
    const jsonFile = process.env.PRACTICE_FLEET_JSON;
    if (jsonFile) {
      // Whole or not at all: a test polls for this file.
      writeFileSync(`${jsonFile}.tmp`, JSON.stringify({ project: project.dir, fleet: fleet.dir, dir, sshdPids: fleet.hosts.map((h) => h.pid) }));
      renameSync(`${jsonFile}.tmp`, jsonFile);
    }
    console.log(`practice fleet: ${hosts} hosts × ${venvs} venvs. In another shell:\n  cd ${project.dir}\nthen try \`vdeploy plan\` and \`vdeploy deploy\`. Ctrl-C here stops the fleet and removes ${dir}.`);
  } catch (error) {
    stop(1, `practice fleet did not start: ${(error as Error).message}`);
  }
  setInterval(() => {}, 1 << 30);
}

/**
 * Every process below this one (sshds, their sessions and what those run, a venv being built): all
 * stopped first (SIGSTOP), so that none forks or writes any more while the tree is read, then killed,
 * then waited for. Only this process's own descendants, found by their parent links in /proc.
 */
function killEverythingStartedHere(): void {
  const victims = new Set<number>();
  for (let round = 0; round < 50; round++) {
    const fresh = descendantsOf(process.pid).filter((pid) => !victims.has(pid));
    if (fresh.length === 0) break;
    for (const pid of fresh) {
      signal(pid, 'SIGSTOP');
      victims.add(pid);
    }
  }
  for (const pid of victims) signal(pid, 'SIGKILL');
  const deadline = Date.now() + 5000;
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  while ([...victims].some(isRunning) && Date.now() < deadline) Atomics.wait(sleeper, 0, 0, 20);
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // gone already
  }
}

/** Still there and not a zombie (our own children stay zombies until reaped: they no longer write). */
function isRunning(pid: number): boolean {
  if (!existsSync(`/proc/${pid}`)) return false;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}
