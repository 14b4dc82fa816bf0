// Deploys that go wrong, through the built binary against a real sshd fleet: a host that is down,
// a lock held by another deploy, Ctrl-C during apply, pip and migrate failing, a damaged wheel cache,
// --fail-fast, and venv paths full of shell metacharacters.
import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import { buildWheel, writeZip } from '../helpers/build-wheel.js';
import { makeTempDir, runVdeployInPty, startVdeploy } from '../helpers/cli.js';
import { cacheDirOf, makeDeployProject, type DeployProject } from '../helpers/deploy-project.js';
import { startFleet, type Fleet } from '../helpers/fleet.js';
import { SHARED_WHEELS } from '../helpers/paths.js';
import { LocalConnection } from '../../src/remote/local-connection.js';
import { SECOND_INTERRUPT } from '../../src/cli/commands/deploy.js';

const local = new LocalConnection();

async function installedVersion(venv: string, name: string): Promise<string | undefined> {
  const r = await local.exec([join(venv, 'bin', 'python'), '-c', `import importlib.metadata as m\ntry: print(m.version(${JSON.stringify(name)}))\nexcept Exception: print("")`]);
  return r.stdout.trim() || undefined;
}

async function historyOf(venv: string): Promise<Array<{ outcome: string; failedStep: string | null; after: Record<string, string>; time: string }>> {
  const file = join(venv, '.vdeploy', 'history.jsonl');
  if (!existsSync(file)) return [];
  return (await readFile(file, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
}

/** Nobody holds the venv's flock (a dead or finished deploy leaves none behind). */
async function lockIsFree(venv: string): Promise<boolean> {
  const r = await local.exec(['flock', '-n', join(venv, '.vdeploy', 'lock'), 'true'], { nothrow: true });
  return r.exitCode === 0;
}

/** A reload that touches `marker`, then runs until `gate` exists (at most 2 minutes): a step the test ends. */
function gatedReload(marker: string, gate: string): string {
  return `touch ${JSON.stringify(marker)}; i=0; while [ ! -e ${JSON.stringify(gate)} ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done`;
}

async function waitFor(what: () => Promise<boolean> | boolean, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await what())) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('vdeploy deploy when things go wrong (real sshd fleet)', function () {
  this.timeout(300_000);
  let fleet: Fleet;
  let wheels: string;
  before(async () => {
    fleet = await startFleet({ hosts: 2, venvsPerHost: 2 });
    wheels = await makeTempDir('vdeploy-fault-wheels-');
  });
  after(async () => fleet?.stop());

  const tiny = (version: string) => buildWheel(wheels, { name: 'tinyapp', version });

  it('a host where nothing listens fails fast; the others still deploy; exit 1', async () => {
    const [h1, h2] = fleet.hosts as [Fleet['hosts'][number], Fleet['hosts'][number]];
    const project = await makeDeployProject(fleet, {
      venvs: [{ host: h1, path: h1.venvs[0]! }, { host: h2, path: h2.venvs[0]! }, { host: 'dead', path: '/srv/dead/venv' }],
      extraHosts: [{ name: 'dead', address: '127.0.0.1', port: 9, user: fleet.user }],
      requirements: 'tinyapp\n',
      wheels: [await tiny('1.0')],
    });
    const started = Date.now();
    const r = await project.run(['deploy', '--yes']);
    expect(r.exitCode, r.stderr + r.stdout).to.equal(1);
    expect(Date.now() - started).to.be.lessThan(60_000);
    expect(r.stdout + r.stderr).to.match(/dead.*(refused|connect)/i);
    expect(r.stdout).to.match(/@dead:\/srv\/dead\/venv\s+failed/);
    expect(await installedVersion(h1.venvs[0]!, 'tinyapp')).to.equal('1.0');
    expect(await installedVersion(h2.venvs[0]!, 'tinyapp')).to.equal('1.0');
  });

  it('a second deploy to a venv whose lock is held fails fast naming the holder; --lock-wait waits', async () => {
    const h1 = fleet.hosts[0]!;
    const venv = h1.venvs[1]!;
    const marker = join(h1.root, 'slow-reload-started');
    const gate = join(h1.root, 'slow-reload-may-end');
    // The first deploy's reload holds the venv until the test lets it end (however slow the machine).
    const project = await makeDeployProject(fleet, {
      venvs: [{ host: h1, path: venv, reload: gatedReload(marker, gate) }],
      requirements: 'tinyapp\n',
      wheels: [await tiny('1.0')],
    });
    const first = startVdeploy(['deploy', '--yes'], project.dir);
    await waitFor(() => existsSync(marker));
    // While the first deploy still holds the venv (its reload is running), a newer release appears.
    await project.addWheels([await tiny('1.1')]);
    const second = await project.run(['deploy', '--yes']);
    expect(second.exitCode, second.stderr + second.stdout).to.equal(1);
    expect(second.stdout).to.match(/another deploy holds the lock \(\S+@\S+, pid \d+, since \d{4}-/);
    expect(second.stdout).to.match(/--lock-wait/);
    await writeFile(gate, '');
    const firstResult = await first.done;
    expect(firstResult.exitCode, firstResult.stderr + firstResult.stdout).to.equal(0);
    expect(await lockIsFree(venv)).to.equal(true);
    expect(await installedVersion(venv, 'tinyapp')).to.equal('1.0');

    // With --lock-wait the later deploy waits for the lock, then applies its own plan.
    await rm(marker);
    await rm(gate);
    const third = startVdeploy(['deploy', '--yes'], project.dir);
    await waitFor(() => existsSync(marker));
    await project.addWheels([await tiny('1.2')]);
    const waiting = startVdeploy(['deploy', '--yes', '--lock-wait', '120'], project.dir);
    // Its wheel is pushed: its apply is next, and waits for the lock until the third's reload ends.
    await waitFor(() => waiting.stderr().includes('host1: pushed 1 wheel'));
    await writeFile(gate, '');
    const fourth = await waiting.done;
    const thirdResult = await third.done;
    expect(thirdResult.exitCode, thirdResult.stderr).to.equal(0);
    expect(fourth.exitCode, fourth.stderr + fourth.stdout).to.equal(0);
    expect(fourth.stdout).to.match(/tinyapp\s+1\.1 → 1\.2/);
    expect(await installedVersion(venv, 'tinyapp')).to.equal('1.2');
  });

  /** Two venvs on host2; the first one's reload touches `marker` and takes 3 s: time to press Ctrl-C. */
  const interruptProject = async (a: string, b: string, marker: string) =>
    makeDeployProject(fleet, {
      venvs: [
        { host: fleet.hosts[1]!, path: a, reload: `touch ${JSON.stringify(marker)}; sleep 3` },
        { host: fleet.hosts[1]!, path: b },
      ],
      requirements: 'tinyapp==2.0\n',
      wheels: [await tiny('2.0')],
    });

  it('Ctrl-C during apply: running steps finish and are recorded, nothing new starts, no lock is left, exit 130', async () => {
    const h2 = fleet.hosts[1]!;
    const [a, b] = h2.venvs as [string, string];
    const marker = join(h2.root, 'sigint-reload-started');
    const project = await interruptProject(a, b, marker);
    const historyBefore = (await historyOf(b)).length;
    const run = startVdeploy(['deploy', '--yes'], project.dir);
    await waitFor(() => existsSync(marker));
    run.child.kill('SIGINT');
    const r = await run.done;
    expect(r.exitCode, r.stderr + r.stdout).to.equal(130);
    expect(r.stderr).to.match(/Stopping/);
    const hist = await historyOf(a);
    expect(hist.at(-1)!.outcome).to.equal('deployed');
    expect(await installedVersion(a, 'tinyapp')).to.equal('2.0');
    // The second venv was never started: unchanged, and no history line for it.
    expect(await installedVersion(b, 'tinyapp')).not.to.equal('2.0');
    expect((await historyOf(b)).length).to.equal(historyBefore);
    expect(r.stdout).to.match(/skipped/);
    expect(await lockIsFree(a)).to.equal(true);
    const log = await readFile(join(project.repo, 'release_log'), 'utf8');
    expect(log).to.match(/^install: host2:.*: tinyapp-2\.0-py3-none-any\.whl at /m);
  });

  it('Ctrl-C during apply on a terminal (the live view): "Stopping…", the running venv finishes and is recorded, exit 130', async () => {
    const h2 = fleet.hosts[1]!;
    const a = join(h2.root, 'srv', 'tty-a');
    const b = join(h2.root, 'srv', 'tty-b');
    const marker = join(h2.root, 'tty-sigint-reload-started');
    const project = await interruptProject(a, b, marker);
    // Ctrl-C (the terminal's \x03: SIGINT to the foreground process group) once the first venv's reload runs.
    const r = await runVdeployInPty(['deploy', '--yes', '--deployfile', join(project.dir, 'deployfile.ts')], { answers: ['\x03'], whenFile: marker });
    expect(r.exitCode, r.output).to.equal(130);
    expect(r.output).to.match(/Stopping/);
    expect(r.output).to.match(/skipped/);
    expect((await historyOf(a)).at(-1)!.outcome).to.equal('deployed');
    expect(await installedVersion(a, 'tinyapp')).to.equal('2.0');
    expect(existsSync(join(b, 'pyvenv.cfg'))).to.equal(false);
    expect(await lockIsFree(a)).to.equal(true);
    const log = await readFile(join(project.repo, 'release_log'), 'utf8');
    expect(log).to.include(`install: host2:${a}: tinyapp-2.0-py3-none-any.whl at `);
  });

  it('a second Ctrl-C on a terminal exits at once with one line on what goes on and what is not recorded, cursor shown; the next plan records it', async () => {
    const h2 = fleet.hosts[1]!;
    const a = join(h2.root, 'srv', 'tty2-a');
    const marker = join(h2.root, 'tty2-reload-started');
    const gate = join(h2.root, 'tty2-reload-may-end');
    // The reload runs until the test lets it end: the second Ctrl-C must not wait for it.
    const project = await makeDeployProject(fleet, {
      venvs: [{ host: h2, path: a, reload: gatedReload(marker, gate) }, { host: h2, path: join(h2.root, 'srv', 'tty2-b') }],
      requirements: 'tinyapp==2.0\n',
      wheels: [await tiny('2.0')],
    });
    const r = await runVdeployInPty(['deploy', '--yes', '--deployfile', join(project.dir, 'deployfile.ts')], {
      answers: ['\x03', { after: 'Stopping', send: '\x03' }],
      whenFile: marker,
    });
    const historyAtExit = await historyOf(a);
    await writeFile(gate, '');
    expect(r.exitCode, r.output).to.equal(130);
    const lines = stripVTControlCharacters(r.output).split(/\r?\n/);
    expect(lines, r.output).to.include(SECOND_INTERRUPT);
    // The live view hid the cursor while drawing; it is shown again before the exit.
    expect(r.output.lastIndexOf('\x1b[?25h')).to.be.greaterThan(r.output.lastIndexOf('\x1b[?25l'));
    expect(historyAtExit).to.deep.equal([]);
    // The apply goes on to its end on the host; this run wrote nothing to release_log.
    await waitFor(async () => (await historyOf(a)).at(-1)?.outcome === 'deployed' && (await lockIsFree(a)));
    const logFile = join(project.repo, 'release_log');
    expect(await readFile(logFile, 'utf8')).not.to.include('install: ');
    const plan = await project.run(['plan']);
    expect(plan.exitCode, plan.stderr + plan.stdout).to.equal(0);
    expect(plan.stdout).to.match(new RegExp(`recovered into release_log: \\S+:${a} history #1 \\(deploy finished \\S+; the run that applied it never recorded it\\): tinyapp-2\\.0-py3-none-any\\.whl`));
    const started = (await historyOf(a))[0]!.time;
    expect(await readFile(logFile, 'utf8')).to.include(`install: host2:${a}: tinyapp-2.0-py3-none-any.whl at ${started} (recovered from history #1)\n`);
  });

  it('vdeploy killed mid-apply: a deploy meanwhile says that vdeploy is gone and its apply still runs; the next plan records the finished apply once', async () => {
    const h1 = fleet.hosts[0]!;
    const venv = join(h1.root, 'srv', 'killed');
    const marker = join(h1.root, 'killed-reload-started');
    const gate = join(h1.root, 'killed-reload-may-end');
    const project = await makeDeployProject(fleet, {
      venvs: [{ host: h1, path: venv, reload: gatedReload(marker, gate) }],
      requirements: 'tinyapp\n',
      wheels: [await tiny('4.0')],
    });
    const first = startVdeploy(['deploy', '--yes'], project.dir);
    await waitFor(() => existsSync(marker));
    first.child.kill('SIGKILL');
    await first.done;
    // A newer release, so the next deploy has something to do and meets the lock.
    await project.addWheels([await tiny('4.1')]);
    const second = await project.run(['deploy', '--yes']);
    expect(second.exitCode, second.stderr + second.stdout).to.equal(1);
    expect(second.stdout).to.match(new RegExp(`an apply started by a vdeploy that is no longer running \\(\\S+@\\S+, pid ${first.child.pid}, since \\d{4}-[^)]*\\) still holds the lock: that vdeploy was killed or lost its connection, and its apply goes on to the end on the host`));
    expect(second.stdout).to.match(/hint: wait for it \(--lock-wait SECONDS\); when it has finished, the next plan or deploy records what it did in release_log/);
    await writeFile(gate, '');

    await waitFor(async () => (await historyOf(venv)).at(-1)?.outcome === 'deployed' && (await lockIsFree(venv)));
    const logFile = join(project.repo, 'release_log');
    expect(await readFile(logFile, 'utf8')).not.to.match(/^install: /m);
    const plan = await project.run(['plan']);
    expect(plan.exitCode, plan.stderr + plan.stdout).to.equal(0);
    expect(plan.stdout).to.match(/recovered into release_log: \S+ history #1 \(deploy finished [^;]+; the run that applied it never recorded it\): tinyapp-4\.0-py3-none-any\.whl/);
    expect(plan.stdout).to.match(/tinyapp\s+4\.0 → 4\.1/);
    const log = await readFile(logFile, 'utf8');
    expect(log.match(/^install: .*$/gm)).to.deep.equal([`install: host1:${venv}: tinyapp-4.0-py3-none-any.whl at ${(await historyOf(venv))[0]!.time} (recovered from history #1)`]);
    // Recorded once: the next run finds nothing missing.
    const again = await project.run(['plan', '--json']);
    expect(JSON.parse(again.stdout).plan.recovered).to.deep.equal([]);
    expect(await readFile(logFile, 'utf8')).to.equal(log);
  });

  it('pip failing mid-install fails that venv at the install stage with pip\'s stderr, and the history says so', async () => {
    const h1 = fleet.hosts[0]!;
    const venv = join(h1.root, 'srv', 'pipfail');
    // A wheel add-wheel accepts but pip refuses to install: it claims a future wheel format.
    const bad = join(wheels, 'futurewheel-1.0-py3-none-any.whl');
    const wheelText = 'Wheel-Version: 9.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n';
    const meta = 'Metadata-Version: 2.1\nName: futurewheel\nVersion: 1.0\n\n';
    const init = 'x = 1\n';
    const { createHash } = await import('node:crypto');
    const h = (t: string) => `sha256=${createHash('sha256').update(t).digest('base64url')},${Buffer.byteLength(t)}`;
    const record = `futurewheel/__init__.py,${h(init)}\nfuturewheel-1.0.dist-info/METADATA,${h(meta)}\nfuturewheel-1.0.dist-info/WHEEL,${h(wheelText)}\nfuturewheel-1.0.dist-info/RECORD,,\n`;
    await writeZip(bad, [['futurewheel/__init__.py', init], ['futurewheel-1.0.dist-info/METADATA', meta], ['futurewheel-1.0.dist-info/WHEEL', wheelText], ['futurewheel-1.0.dist-info/RECORD', record]]);
    const project = await makeDeployProject(fleet, {
      venvs: [{ host: h1, path: venv, reload: `touch ${JSON.stringify(join(h1.root, 'pipfail-reloaded'))}` }],
      requirements: 'tinyapp\nfuturewheel\n',
      wheels: [await tiny('1.0'), bad],
    });
    const r = await project.run(['deploy', '--yes']);
    expect(r.exitCode, r.stderr + r.stdout).to.equal(1);
    expect(r.stdout).to.match(/@host1:.*pipfail: install failed \(exit \d+\): .*(Wheel-Version|wheel version|incompatible)/i);
    const hist = await historyOf(venv);
    expect(hist).to.have.length(1);
    expect(hist[0]!.outcome).to.equal('failed');
    expect(hist[0]!.failedStep).to.equal('install');
    expect(existsSync(join(h1.root, 'pipfail-reloaded'))).to.equal(false);
    const log = await readFile(join(project.repo, 'release_log'), 'utf8');
    expect(log).to.match(/^error: host1:.*pipfail: install: /m);
  });

  it('migrate failing fails the venv at migrate; its reload and the host reload do not run', async () => {
    const h2 = fleet.hosts[1]!;
    const venv = join(h2.root, 'srv', 'migfail');
    const reloaded = join(h2.root, 'migfail-reloaded');
    const hostReloaded = join(h2.root, 'migfail-host-reloaded');
    const files = await readdir(SHARED_WHEELS);
    const shared = ['django-', 'asgiref-', 'sqlparse-'].map((p) => join(SHARED_WHEELS, files.find((f) => f.startsWith(p))!));
    const project = await makeDeployProject(fleet, {
      venvs: [{ host: h2, path: venv, django: { settings: 'no_such_project.settings' }, reload: `touch ${JSON.stringify(reloaded)}` }],
      hostReload: { host2: `touch ${JSON.stringify(hostReloaded)}` },
      requirements: 'django\n',
      wheels: shared,
    });
    const r = await project.run(['deploy', '--yes']);
    expect(r.exitCode, r.stderr + r.stdout).to.equal(1);
    expect(r.stdout).to.match(/migfail: migrate failed \(exit 1\): .*no_such_project/);
    expect(existsSync(reloaded)).to.equal(false);
    expect(existsSync(hostReloaded)).to.equal(false);
    expect((await historyOf(venv))[0]!.failedStep).to.equal('migrate');
  });

  it('a damaged wheel in the host cache is found before pip, removed, and pushed again by the next run', async () => {
    const h1 = fleet.hosts[0]!;
    const venv = join(h1.root, 'srv', 'cachefix');
    const project = await makeDeployProject(fleet, { venvs: [{ host: h1, path: venv }], requirements: 'tinyapp==3.0\n', wheels: [await tiny('3.0')] });
    await writeFile(join(cacheDirOf(h1), 'tinyapp-3.0-py3-none-any.whl'), 'not the released bytes');
    const first = await project.run(['deploy', '--yes']);
    expect(first.exitCode, first.stderr + first.stdout).to.equal(1);
    expect(first.stdout).to.match(/damaged or missing and have been removed: tinyapp-3\.0-py3-none-any\.whl/);
    const second = await project.run(['deploy', '--yes']);
    expect(second.exitCode, second.stderr + second.stdout).to.equal(0);
    expect(second.stderr).to.match(/host1: pushed 1 wheel/);
    expect(await installedVersion(venv, 'tinyapp')).to.equal('3.0');
  });

  it('a wheel changed in the repository after its release is refused before the push, naming the file and its release line', async () => {
    const h1 = fleet.hosts[0]!;
    const venv = join(h1.root, 'srv', 'edited-wheel');
    const project = await makeDeployProject(fleet, { venvs: [{ host: h1, path: venv }], requirements: 'tinyapp==3.1\n', wheels: [await tiny('3.1')] });
    const file = join(project.repo, 'tinyapp-3.1-py3-none-any.whl');
    // Rebuilt in place (a valid wheel, other bytes), as a careless `cp` of a new build would do.
    const rebuilt = await buildWheel(await makeTempDir('vdeploy-rebuilt-'), { name: 'tinyapp', version: '3.1', files: { 'tinyapp/extra.py': 'X = 1\n' } });
    await writeFile(file, await readFile(rebuilt));
    const r = await project.run(['deploy', '--yes']);
    const out = r.stdout + r.stderr;
    expect(r.exitCode, out).to.equal(1);
    expect(out).to.include(`${file}: the repository's file no longer matches its release line in release_log`);
    expect(out).not.to.match(/arrived corrupted|check the network/);
    expect(existsSync(join(cacheDirOf(h1), 'tinyapp-3.1-py3-none-any.whl'))).to.equal(false);
    expect(await readdir(cacheDirOf(h1)).catch(() => [])).to.satisfy((names: string[]) => !names.some((n) => n.includes('tinyapp-3.1')));
  });

  it('--fail-fast starts no new venv after the first failure', async () => {
    const h1 = fleet.hosts[0]!;
    const broken = join(h1.root, 'srv', 'ff-broken');
    const fine = join(h1.root, 'srv', 'ff-fine');
    const project = await makeDeployProject(fleet, {
      venvs: [{ host: h1, path: broken, reload: 'exit 3' }, { host: h1, path: fine }],
      requirements: 'tinyapp\n',
      wheels: [await tiny('1.0')],
    });
    const r = await project.run(['deploy', '--yes', '--fail-fast']);
    expect(r.exitCode).to.equal(1);
    expect(r.stdout).to.match(/ff-broken: reload failed \(exit 3\)/);
    expect(r.stdout).to.match(/ff-fine\s+skipped/);
    expect(existsSync(fine)).to.equal(false);
  });

  it('a host that dies mid-upload leaves no partial wheel under its real name; the next run succeeds', async () => {
    const h2 = fleet.hosts[1]!;
    const venv = join(h2.root, 'srv', 'bigpush');
    // Random data does not compress: the upload takes long enough to be caught in the middle.
    const { randomBytes } = await import('node:crypto');
    const big = await buildWheel(wheels, {
      name: 'bigwheel',
      version: '1.0',
      files: { 'bigwheel/__init__.py': '', 'bigwheel/blob.txt': randomBytes(36 * 1024 * 1024).toString('base64') },
    });
    const project = await makeDeployProject(fleet, { venvs: [{ host: h2, path: venv }], requirements: 'bigwheel\n', wheels: [big] });
    const cache = cacheDirOf(h2);
    const run = startVdeploy(['deploy', '--yes'], project.dir);
    const { stat } = await import('node:fs/promises');
    await waitFor(async () => {
      const tmp = (existsSync(cache) ? await readdir(cache) : []).find((f) => f.startsWith('.bigwheel') && f.includes('.tmp-'));
      return tmp !== undefined && (await stat(join(cache, tmp)).catch(() => ({ size: 0 }))).size > 1024 * 1024;
    });
    await fleet.crashHost(h2);
    const r = await run.done;
    expect(r.exitCode, r.stderr + r.stdout).to.equal(1);
    expect(r.stdout + r.stderr).to.match(/host2/);
    expect(existsSync(join(cache, 'bigwheel-1.0-py3-none-any.whl'))).to.equal(false);

    await fleet.restartHost(h2);
    const again = await project.run(['deploy', '--yes']);
    expect(again.exitCode, again.stderr + again.stdout).to.equal(0);
    expect(again.stderr).to.match(/host2: pushed 1 wheel/);
    expect(await installedVersion(venv, 'bigwheel')).to.equal('1.0');
  });

  it('venv paths with spaces, quotes, $(...) and ; are quoted end to end', async () => {
    const h2 = fleet.hosts[1]!;
    const pwned = join(h2.root, 'PWNED');
    const venv = join(h2.root, 'srv', `we ird 'q" $(touch ${pwned}); echo x`);
    const project = await makeDeployProject(fleet, { venvs: [{ host: h2, path: venv }], requirements: 'tinyapp\n', wheels: [await tiny('1.0')] });
    const r = await project.run(['deploy', '--yes']);
    expect(r.exitCode, r.stderr + r.stdout).to.equal(0);
    expect(await installedVersion(venv, 'tinyapp')).to.equal('1.0');
    expect(existsSync(pwned)).to.equal(false);
  });
});
