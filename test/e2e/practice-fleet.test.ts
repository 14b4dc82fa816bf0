// The README tour's practice fleet (test/helpers/practice-fleet.ts), run with tsx in a real terminal
// and stopped with Ctrl-C while a deploy against it is installing: every process it started (its
// sshds and the sessions they forked for the deploy) is gone, its whole directory (hosts, venvs, wheel
// caches, project) is removed, and it exits 130. Before, the sshds died and the sessions went on
// writing into the directory being removed, which was left behind with hundreds of MB in it.
import { expect } from 'chai';
import { existsSync, readFileSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTempDir, runInPty, runVdeploy } from '../helpers/cli.js';
import { descendantsOf } from '../helpers/fleet.js';
import { REPO_ROOT } from '../helpers/paths.js';

interface Ready {
  project: string;
  fleet: string;
  dir: string;
  sshdPids: number[];
}

/** A process by PID and start time (so a reused PID is not taken for it); undefined once gone. */
function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[0] === 'Z' ? undefined : fields[19];
  } catch {
    return undefined;
  }
}

async function waitFor<T>(what: string, check: () => Promise<T | undefined>, stop: Promise<unknown>, timeoutMs = 300_000): Promise<T> {
  let stopped = false;
  void stop.then(() => (stopped = true));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (stopped) throw new Error(`ended before ${what}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('the practice fleet of the README tour', function () {
  this.timeout(600_000);

  it('Ctrl-C while a deploy installs: stops its sshds and their sessions, removes its whole directory, exits 130', async () => {
    const work = await makeTempDir('vdeploy-practice-test-');
    const readyFile = join(work, 'ready.json');
    const ctrlCFile = join(work, 'press-ctrl-c');
    const practice = runInPty([join(REPO_ROOT, 'node_modules', '.bin', 'tsx'), 'test/helpers/practice-fleet.ts', '1', '1'], {
      cwd: REPO_ROOT,
      answers: ['\x03'],
      whenFile: ctrlCFile,
      // TMPDIR: should the test fail, what the fleet made is still under a directory this run removes.
      env: { PRACTICE_FLEET_JSON: readyFile, TMPDIR: work },
    });
    const ready = await waitFor<Ready>('the practice fleet to be ready', async () => (existsSync(readyFile) ? (JSON.parse(await readFile(readyFile, 'utf8')) as Ready) : undefined), practice);
    expect(ready.project.startsWith(`${ready.dir}/`) && ready.fleet.startsWith(`${ready.dir}/`)).to.equal(true);

    const deploy = runVdeploy(['deploy', '--yes'], { cwd: ready.project, timeoutMs: 300_000, env: { SSH_AUTH_SOCK: undefined } });
    const venv = join(ready.fleet, 'host1', 'srv', 'venv1');
    await waitFor(
      'pip to be installing Django into the venv',
      async () => {
        const lib = await readdir(join(venv, 'lib')).catch(() => []);
        return lib.some((py) => existsSync(join(venv, 'lib', py, 'site-packages', 'django'))) ? true : undefined;
      },
      deploy,
    );
    const sessions = ready.sshdPids.flatMap((pid) => descendantsOf(pid));
    expect(sessions, 'the deploy has sessions open on the fleet').to.not.be.empty;
    const started = new Map([...ready.sshdPids, ...sessions].map((pid) => [pid, startTime(pid)]));

    await writeFile(ctrlCFile, '');
    const result = await practice;
    expect(result.exitCode, result.output).to.equal(130);
    expect(result.output).to.include(`practice fleet stopped; removed ${ready.dir}`);
    expect(existsSync(ready.dir), `${ready.dir} is left behind`).to.equal(false);
    const survivors = [...started].filter(([pid, time]) => time !== undefined && startTime(pid) === time).map(([pid]) => pid);
    expect(survivors, 'sshd or session processes still running').to.deep.equal([]);

    // The deploy sees its host go away, as with a real host going down.
    const r = await deploy;
    expect(r.exitCode, `${r.stdout}\n${r.stderr}`).to.equal(1);
    // Nothing came back: no session was left to write into the removed directory.
    expect(existsSync(ready.dir)).to.equal(false);
  });
});
