// The releases layout (issue 15) when things go wrong, through the built CLI against a real sshd
// fleet: `current` is switched atomically (a reader in another process never finds it missing or
// half-built during 20 deploys and rollbacks), and a build cut short — the remote apply SIGKILLed,
// Ctrl-C on a terminal, a full disk, a killed sshd — leaves `current` and the live app untouched;
// the next run removes the half-built release.
//
// The build is held at a known point by the app's wheel itself: it carries a .pth file (Python runs
// its `import` line at every start of the release's interpreter) that, while a pause file exists and
// only in the install step's pip (the one run with PIP_CONFIG_FILE=/dev/null), writes its PID and
// waits. The pip of the NEW release's build is the one that stops: the clone and relocate are done,
// the install has not begun.
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildWheel } from '../helpers/build-wheel.js';
import { makeTempDir, runVdeployInPty, startVdeploy, type CliResult } from '../helpers/cli.js';
import { makeDeployProject, type DeployProject } from '../helpers/deploy-project.js';
import { startFleet, type Fleet, type FleetHost } from '../helpers/fleet.js';
import { LocalConnection } from '../../src/remote/local-connection.js';
import { waitFor, pauser } from '../helpers/pause-pip.js';

const local = new LocalConnection();

/** The app: `relapp` VERSION, its .pth pauser, and optionally a blob of `blobBytes` random bytes. */
async function relapp(dir: string, version: string, pause: string, blobBytes = 0): Promise<string> {
  const { randomBytes } = await import('node:crypto');
  return buildWheel(dir, {
    name: 'relapp',
    version,
    files: {
      'relapp/__init__.py': `__version__ = "${version}"\n`,
      'relapp_pause.pth': pauser(pause),
      ...(blobBytes ? { 'relapp/blob.txt': randomBytes(blobBytes).toString('base64') } : {}),
    },
  });
}

interface Layout {
  live: string;
  releases: string[];
}

async function layout(root: string): Promise<Layout> {
  return { live: await readlink(join(root, 'current')), releases: (await readdir(join(root, 'releases'))).sort() };
}

/** relapp's version as the live app imports it, through <root>/current (as a service would). */
async function liveVersion(root: string): Promise<string> {
  const r = await local.exec([join(root, 'current', 'bin', 'python'), '-c', 'import relapp; print(relapp.__version__)'], { nothrow: true });
  return r.exitCode === 0 ? r.stdout.trim() : `import failed: ${r.stderr.trim().split('\n').at(-1)}`;
}

/** Nobody holds the app root's flock (a dead apply leaves none behind). */
async function lockIsFree(root: string): Promise<boolean> {
  const r = await local.exec(['flock', '-n', join(root, '.vdeploy', 'lock'), 'true'], { nothrow: true });
  return r.exitCode === 0;
}

function parentOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

function commandOf(pid: number): string {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
}

interface ReleaseReport {
  id: string | null;
  previous: string | null;
  live: string | null;
  removed: Array<{ id: string; bytes: number; why: string }>;
}

function releaseOf(r: CliResult): ReleaseReport {
  const json = JSON.parse(r.stdout) as { report: { venvs: Array<{ release?: ReleaseReport }> } };
  return json.report.venvs[0]!.release!;
}

/** The next deploy removes the half-built release `half` as unfinished and makes `version` live. */
async function nextDeployCleansUp(project: DeployProject, root: string, before: Layout, half: string, version: string): Promise<void> {
  const r = await project.run(['deploy', '--yes', '--json']);
  expect(r.exitCode, r.stderr + r.stdout).to.equal(0);
  const release = releaseOf(r);
  expect(release.removed.map((x) => [x.id, x.why])).to.deep.equal([[half, 'unfinished']]);
  expect(release.previous).to.equal(before.live.replace('releases/', ''));
  const after = await layout(root);
  expect(after.live).to.equal(`releases/${release.id}`);
  expect(after.releases).to.deep.equal([...before.releases, release.id].sort());
  expect(after.releases).not.to.include(half);
  expect(await liveVersion(root)).to.equal(version);
  // The host's history line of that deploy says what it removed, and why.
  const lines = (await readFile(join(root, '.vdeploy', 'history.jsonl'), 'utf8')).trim().split('\n');
  const last = JSON.parse(lines.at(-1)!) as { release: string; removedReleases?: Array<{ id: string; why: string }> };
  expect(last.release).to.equal(release.id);
  expect(last.removedReleases?.map((x) => [x.id, x.why])).to.deep.equal([[half, 'unfinished']]);
}

describe('releases layout when things go wrong (real sshd fleet)', function () {
  this.timeout(1_200_000);
  let fleet: Fleet;
  let host: FleetHost;
  let wheels: string;

  before(async () => {
    fleet = await startFleet({ hosts: 1 });
    host = fleet.hosts[0]!;
    wheels = await makeTempDir('vdeploy-relfault-wheels-');
  });
  after(async () => fleet?.stop());

  /** An app root deployed once with relapp 1.0 and its pause file path (not yet created). */
  async function deployedApp(name: string, extra: { keep?: number } = {}): Promise<{ project: DeployProject; root: string; pause: string }> {
    const root = join(host.root, 'srv', name);
    const pause = join(host.root, `${name}-pause`);
    const dir = join(wheels, name);
    const project = await makeDeployProject(fleet, {
      venvs: [{ host, path: root, releases: { keep: extra.keep ?? 5 }, healthcheck: { command: 'bin/python -c "import relapp"', retries: 0 } }],
      // Each app's relapp differs (its own pause file): its own wheel cache on the host.
      wheelCache: (h) => join(h.root, `wheel-cache-${name}`),
      requirements: 'relapp\n',
      wheels: [await relapp(dir, '1.0', pause)],
    });
    const first = await project.run(['deploy', '--yes']);
    expect(first.exitCode, first.stderr + first.stdout).to.equal(0);
    await project.addWheels([await relapp(dir, '1.1', pause)]);
    return { project, root, pause };
  }

  /** Starts the upgrade to 1.1 with the pause file in place; resolves once its pip waits (with the PIDs of pip and the apply). */
  async function pausedUpgrade(project: DeployProject, pause: string) {
    await writeFile(pause, '');
    const run = startVdeploy(['deploy', '--yes'], project.dir);
    await waitFor(() => existsSync(`${pause}.reached`) || run.child.exitCode !== null);
    expect(existsSync(`${pause}.reached`), 'the build reached its install').to.equal(true);
    const pip = Number(await readFile(`${pause}.reached`, 'utf8'));
    const apply = parentOf(pip);
    expect(commandOf(apply)).to.match(/python/);
    return { run, pip, apply };
  }

  it('the atomicity reader: another process reading current/bin/python in a tight loop during 20 deploys and rollbacks never finds it missing or half-built', async () => {
    const { project, root } = await deployedApp('atomic', { keep: 2 });
    const dir = join(wheels, 'atomic');
    const stop = join(host.root, 'atomic-reader-stop');
    const result = join(host.root, 'atomic-reader.json');
    // Each read: the link is there (readlink), and through it the interpreter (stat, open, its ELF
    // header) and the release's pyvenv.cfg; then the release it names is whole: its interpreter, the
    // app's module and its metadata. A release switched away from may be removed at once (keep: 2):
    // a check that fails while `current` has meanwhile moved is retried, not counted (a process that
    // resolved the old link a moment before the switch is in the same place, whatever the layout).
    const reader = `
import glob, json, os, sys
root, stop, out = sys.argv[1:4]
cur = os.path.join(root, 'current')
reads, moved, failures, seen = 0, 0, [], set()

def whole(release):
    site = glob.glob(os.path.join(release, 'lib', 'python3*', 'site-packages'))
    if len(site) != 1 or not os.path.isfile(os.path.join(site[0], 'relapp', '__init__.py')) \\
            or not glob.glob(os.path.join(site[0], 'relapp-*.dist-info', 'RECORD')) \\
            or not os.access(os.path.join(release, 'bin', 'python'), os.X_OK):
        raise ValueError('%s is not a whole release' % release)

while not os.path.exists(stop):
    target = None
    try:
        target = os.readlink(cur)
        os.stat(os.path.join(cur, 'bin', 'python'))
        with open(os.path.join(cur, 'bin', 'python'), 'rb') as f:
            if f.read(4) != b'\\x7fELF':
                raise ValueError('bin/python is not the interpreter')
        with open(os.path.join(cur, 'pyvenv.cfg')) as f:
            if 'home' not in f.read():
                raise ValueError('pyvenv.cfg without home')
        whole(os.path.join(root, target))
        seen.add(target)
        reads += 1
    except Exception as e:
        try:
            now = os.readlink(cur)
        except OSError as gone:
            now = repr(gone)
        if target is not None and now != target:
            moved += 1
        else:
            failures.append('%r (current -> %s)' % (e, now))
json.dump({'reads': reads, 'moved': moved, 'failures': failures[:20], 'failed': len(failures), 'seen': sorted(seen)}, open(out, 'w'))
`;
    // Niced: the loop takes what CPU the deploys leave (a tight loop at normal priority took one of two cores
    // from them and made the 20 deploys and rollbacks take 5 to 9 minutes).
    const child = spawn('nice', ['-n', '19', '/usr/bin/python3', '-c', reader, root, stop, result], { stdio: 'ignore' });
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    try {
      // 10 deploys of a new version, each followed by a rollback: 20 switches of `current`.
      for (let i = 1; i <= 10; i++) {
        if (i > 1) await project.addWheels([await relapp(dir, `1.${i}`, join(host.root, 'atomic-pause'))]);
        const d = await project.run(['deploy', '--yes']);
        expect(d.exitCode, d.stderr + d.stdout).to.equal(0);
        expect(await liveVersion(root)).to.equal(`1.${i}`);
        const r = await project.run(['rollback', '--yes']);
        expect(r.exitCode, r.stderr + r.stdout).to.equal(0);
        expect(await liveVersion(root)).to.equal('1.0');
      }
    } finally {
      await writeFile(stop, '');
      await exited;
    }
    const seen = JSON.parse(await readFile(result, 'utf8')) as { reads: number; moved: number; failures: string[]; failed: number; seen: string[] };
    console.log(`      reader: ${seen.reads} whole reads, ${seen.moved} retried across a switch, ${seen.failed} failures, ${seen.seen.length} releases seen live`);
    expect(seen.failed, seen.failures.join('\n')).to.equal(0);
    expect(seen.reads).to.be.greaterThan(2000);
    // It did read across the switches: many releases were live while it read.
    expect(seen.seen.length).to.be.greaterThan(10);
    // keep: 2 — the older releases were cleaned up meanwhile (beside the live one and the rollback target).
    expect((await layout(root)).releases.length).to.be.at.most(3);
  });

  it('the remote apply SIGKILLed during the build: current and the live app untouched, the half-built release left; the next deploy removes it as unfinished', async () => {
    const { project, root, pause } = await deployedApp('killed');
    const before = await layout(root);
    const { run, pip, apply } = await pausedUpgrade(project, pause);
    // The half-built release is beside the live one, cloned and relocated; current has not moved.
    const building = (await layout(root)).releases.filter((r) => !before.releases.includes(r));
    expect(building).to.have.length(1);
    process.kill(apply, 'SIGKILL');
    process.kill(pip, 'SIGKILL');
    const r = await run.done;
    await rm(pause);
    expect(r.exitCode, r.stderr + r.stdout).to.equal(1);
    expect(await layout(root)).to.deep.equal({ live: before.live, releases: [...before.releases, building[0]!].sort() });
    expect(await liveVersion(root)).to.equal('1.0');
    expect(await lockIsFree(root)).to.equal(true);
    await nextDeployCleansUp(project, root, before, building[0]!, '1.1');
  });

  it('a killed sshd during the build: current and the live app untouched; after the host is back, the next deploy removes the half-built release', async () => {
    const { project, root, pause } = await deployedApp('sshd-killed');
    const before = await layout(root);
    const { run } = await pausedUpgrade(project, pause);
    const building = (await layout(root)).releases.filter((r) => !before.releases.includes(r));
    expect(building).to.have.length(1);
    // The host dies: its sshd and every session process (the apply and its pip with them).
    await fleet.crashHost(host);
    const r = await run.done;
    await rm(pause);
    expect(r.exitCode, r.stderr + r.stdout).to.equal(1);
    expect(r.stdout + r.stderr).to.match(/host1/);
    expect((await layout(root)).live).to.equal(before.live);
    expect(await liveVersion(root)).to.equal('1.0');
    await fleet.restartHost(host);
    await waitFor(() => lockIsFree(root));
    await nextDeployCleansUp(project, root, before, building[0]!, '1.1');
  });

  it('Ctrl-C on a terminal during the build: current and the live app untouched, the new release removed; the next deploy makes it', async () => {
    const { project, root, pause } = await deployedApp('ctrl-c');
    const before = await layout(root);
    await writeFile(pause, '');
    const transcript = join(host.root, 'ctrl-c-transcript');
    const running = runVdeployInPty(['deploy', '--yes', '--deployfile', join(project.dir, 'deployfile.ts')], {
      answers: ['\x03'],
      whenFile: `${pause}.reached`,
      env: { PTY_DRIVE_TRANSCRIPT: transcript },
    });
    // Once the CLI says it is stopping, the build may go on: the stop has been sent to the host.
    await waitFor(async () => (await readFile(transcript, 'utf8').catch(() => '')).includes('Stopping')).catch(async (e) => {
      throw new Error(`${(e as Error).message}; reached: ${existsSync(`${pause}.reached`)}; transcript: ${await readFile(transcript, 'utf8').catch(() => '(none)')}`);
    });
    await rm(pause);
    const r = await running;
    expect(r.exitCode, r.output).to.equal(130);
    expect(r.output).to.match(/Stopping/);
    expect(await layout(root)).to.deep.equal(before);
    expect(await liveVersion(root)).to.equal('1.0');
    expect(await lockIsFree(root)).to.equal(true);
    // The apply stopped after the build's running step, before its switch, and removed what it built.
    const lines = (await readFile(join(root, '.vdeploy', 'history.jsonl'), 'utf8')).trim().split('\n');
    const last = JSON.parse(lines.at(-1)!) as { outcome: string; release: string; steps: Array<{ name: string }>; removedReleases?: Array<{ id: string; why: string }> };
    expect(last.outcome).to.equal('interrupted');
    expect(last.steps.map((s) => s.name)).not.to.include('switch');
    expect(last.removedReleases?.map((x) => [x.id, x.why])).to.deep.equal([[last.release, 'unfinished']]);
    const again = await project.run(['deploy', '--yes', '--json']);
    expect(again.exitCode, again.stderr + again.stdout).to.equal(0);
    expect(await liveVersion(root)).to.equal('1.1');
  });
});

describe('releases layout on a disk that fills during the build (real sshd host)', function () {
  this.timeout(600_000);
  let fleet: Fleet;
  let wheels: string;
  before(async () => {
    fleet = await startFleet({ hosts: 1, srvMegabytes: 96 });
    wheels = await makeTempDir('vdeploy-relfull-wheels-');
  });
  after(async () => fleet?.stop());

  it('a full disk during the build: "disk full", exit 1, current and the live app untouched, the failed release removed; once freed, the next deploy succeeds', async () => {
    const host = fleet.hosts[0]!;
    const root = join(host.root, 'srv', 'full');
    const pause = join(host.root, 'full-pause');
    const project = await makeDeployProject(fleet, {
      venvs: [{ host, path: root, releases: true, healthcheck: { command: 'bin/python -c "import relapp"', retries: 0 } }],
      requirements: 'relapp\n',
      wheels: [await relapp(wheels, '1.0', pause)],
    });
    const first = await project.run(['deploy', '--yes']);
    expect(first.exitCode, first.stderr + first.stdout).to.equal(0);
    const before = await fleet.exec(host, ['sh', '-c', 'readlink "$0/current"; ls "$0/releases"', root]);
    // 1.1 carries 8 MB of text (random bytes, base64): more than the room left on the host's srv disk.
    await project.addWheels([await relapp(wheels, '1.1', pause, 6 * 1024 * 1024)]);
    const srv = join(host.root, 'srv');
    const df = await fleet.exec(host, ['df', '--output=avail', '-k', srv]);
    const availKiB = Number(df.stdout.trim().split('\n').at(-1));
    // Room for the clone and its relocation (the wheel cache is elsewhere), not for the install's 8 MB.
    const filler = join(srv, 'filler');
    await fleet.exec(host, ['fallocate', '-l', `${(availKiB - 4 * 1024) * 1024}`, filler]);

    const r = await project.run(['deploy', '--yes']);
    expect(r.exitCode, r.stdout + r.stderr).to.equal(1);
    expect(r.stdout + r.stderr).to.match(/disk full on host1 \(.*Errno 28/);
    const after = await fleet.exec(host, ['sh', '-c', 'readlink "$0/current"; ls "$0/releases"', root]);
    expect(after.stdout).to.equal(before.stdout);
    const version = await fleet.exec(host, [join(root, 'current', 'bin', 'python'), '-c', 'import relapp; print(relapp.__version__)']);
    expect(version.stdout.trim()).to.equal('1.0');

    await fleet.exec(host, ['rm', filler]);
    const again = await project.run(['deploy', '--yes']);
    expect(again.exitCode, again.stdout + again.stderr).to.equal(0);
    const upgraded = await fleet.exec(host, [join(root, 'current', 'bin', 'python'), '-c', 'import relapp; print(relapp.__version__)']);
    expect(upgraded.stdout.trim()).to.equal('1.1');
  });
});
