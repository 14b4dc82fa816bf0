// `vdeploy fetch` through the built CLI: a fleet whose two hosts run CPython 3.8 and 3.12 (pyenv),
// an index the way users have one (a PEP 503 simple directory over ../shared/wheels, served as file://,
// plus a --find-links directory of small wheels built for cp38/cp312 manylinux), given to pip through
// its own PIP_* variables with this machine's pip configuration switched off. fetch learns the hosts'
// Pythons from what `plan` cached, fills the repository with each one's wheels, and `deploy` then
// installs them on both hosts (no network there: only the pushed wheels).
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'chai';
import { buildWheel } from '../helpers/build-wheel.js';
import { makeTempDir, startVdeploy } from '../helpers/cli.js';
import { waitFor } from '../helpers/pause-pip.js';
import { makeDeployProject, type DeployProject } from '../helpers/deploy-project.js';
import { isolatedPipEnv, makeFetchIndex, type FetchIndex } from '../helpers/fetch-index.js';
import { startFleet, type Fleet } from '../helpers/fleet.js';

const PYENV = '/root/.pyenv/versions';
const PY38 = join(PYENV, '3.8.18', 'bin', 'python3.8');
const PY312 = join(PYENV, '3.12.1', 'bin', 'python3.12');
/** Its pip is 22.0.4: too old for --dry-run. */
const PY37 = join(PYENV, '3.7.16', 'bin', 'python3.7');
const missing = [PY38, PY312, PY37].filter((p) => !existsSync(p));
const sha256 = async (path: string) => createHash('sha256').update(await readFile(path)).digest('hex');

(missing.length > 0 ? describe.skip : describe)('vdeploy fetch (real sshd fleet on CPython 3.8 and 3.12, real pip, the test\'s own index)', function () {
  this.timeout(600_000);
  let fleet: Fleet;
  let project: DeployProject;
  let index: FetchIndex;
  let env: Record<string, string | undefined>;
  const venv38 = () => join(fleet.hosts[0]!.root, 'srv', 'app38');
  const venv312 = () => join(fleet.hosts[1]!.root, 'srv', 'app312');
  const releaseLog = () => readFile(join(project.repo, 'release_log'), 'utf8');
  const fetch = (args: string[]) => project.run(['fetch', ...args], { env });

  before(async () => {
    fleet = await startFleet({ hosts: 2 });
    index = await makeFetchIndex(await makeTempDir('vdeploy-fetch-index-'));
    // The user's way: pip's own environment variables name the index; the machine's pip.conf is off.
    env = isolatedPipEnv({ PIP_INDEX_URL: index.simpleUrl, PIP_FIND_LINKS: index.findLinks });
    project = await makeDeployProject(fleet, {
      venvs: [
        { host: fleet.hosts[0]!, path: venv38(), python: PY38 },
        { host: fleet.hosts[1]!, path: venv312(), python: PY312 },
      ],
      // The app itself is in no index: only in the repository (as `vdeploy build` or add-wheel put it there).
      requirements: 'myapp\ncertifi\n',
      wheels: [await buildWheel(await makeTempDir('vdeploy-fetch-app-'), { name: 'myapp', version: '1.0', requiresDist: ['markerapp>=1.0'] })],
    });
  });
  after(async () => fleet?.stop());

  it('before any plan, it knows no host\'s Python: exit 2 naming the hosts, with the hint to plan first or name a target', async () => {
    const r = await fetch([]);
    expect(r.exitCode, r.stderr).to.equal(2);
    expect(r.stderr).to.match(/^error: vdeploy does not know the Python of 2 venvs \(on host1, host2\) yet: fetch never connects to hosts/m);
    expect(r.stderr).to.match(/^hint: run `vdeploy plan host1 host2` first, or name the target: --python-version/m);
    expect(r.stderr.trim().split('\n')).to.have.length(2);
  });

  it('after `vdeploy plan`, --dry-run lists what each Python would get and leaves the repository alone', async () => {
    // The plan itself fails (the repository is empty) but has probed both hosts.
    const plan = await project.run(['plan']);
    expect(plan.exitCode, plan.stderr + plan.stdout).to.not.equal(0);
    const logBefore = await releaseLog();
    const r = await fetch(['--dry-run']);
    expect(r.exitCode, r.stderr + r.stdout).to.equal(0);
    const header = r.stdout.split('\n')[0]!;
    expect(header).to.match(/^package\s+version\s+cp38-cp38-manylinux_\S+\s+cp312-cp312-manylinux_\S+$/);
    expect(r.stdout).to.match(/^fastlib\s+1\.0\s+would add\s+-$/m);
    expect(r.stdout).to.match(/^fastlib\s+2\.0\s+-\s+would add$/m);
    expect(r.stdout).to.match(/^backportlib\s+1\.0\s+would add\s+-$/m);
    expect(r.stdout).to.match(/^markerapp\s+1\.0\s+would add\s+would add$/m);
    expect(r.stdout).to.match(/^certifi\s+\S+\s+would add\s+would add$/m);
    expect(r.stdout).to.match(/^myapp\s+1\.0\s+present\s+present$/m);
    expect(r.stdout).to.include('2 targets: 7 would be added, 2 already present (dry run: nothing downloaded, the repository is unchanged)');
    expect(r.stderr).to.match(/^using pip \d+\.\d+/m);
    expect(r.stderr).to.match(/^cp38-cp38-manylinux_\S+ for 1 venv, 1 project held at the repository's versions$/m);
    expect(await releaseLog()).to.equal(logBefore);
    expect((await readdir(project.repo)).sort()).to.deep.equal(['myapp-1.0-py3-none-any.whl', 'release_log']);
  });

  it('fetch downloads each Python\'s own wheels from the test\'s index into the repository, with release lines', async () => {
    const r = await fetch([]);
    expect(r.exitCode, r.stderr + r.stdout).to.equal(0);
    expect(r.stdout).to.match(/^fastlib\s+1\.0\s+added\s+-$/m);
    expect(r.stdout).to.match(/^fastlib\s+2\.0\s+-\s+added$/m);
    expect(r.stdout).to.match(/^markerapp\s+1\.0\s+added\s+present$/m);
    expect(r.stdout).to.match(/^myapp\s+1\.0\s+present\s+present$/m);
    expect(r.stdout).to.include('2 targets: 5 added, 4 already present');
    // Progress per package as it happens.
    expect(r.stderr).to.match(/cp312-cp312-\S+: got fastlib-2\.0-cp312-cp312-manylinux_2_17_x86_64\.whl/);
    const log = await releaseLog();
    for (const file of ['fastlib-1.0-cp38-cp38-manylinux_2_17_x86_64.whl', 'fastlib-2.0-cp312-cp312-manylinux_2_17_x86_64.whl', 'backportlib-1.0-py3-none-any.whl']) {
      expect(log).to.include(`sha256=${await sha256(index.built.get(file)!)}`);
    }
    // certifi came from the simple index over ../shared/wheels: the same bytes.
    const certifi = (await readdir(project.repo)).find((f) => f.startsWith('certifi-'))!;
    const shared = new URL(`${index.simpleUrl}certifi/${certifi}`);
    expect(await sha256(join(project.repo, certifi))).to.equal(await sha256(shared.pathname));
    expect(log).to.not.include('win_amd64');
  });

  it('deploy then installs on both hosts the wheels of their own Python', async () => {
    const r = await project.run(['deploy', '--yes']);
    expect(r.exitCode, r.stderr + r.stdout).to.equal(0);
    const check = 'import sys, myapp, fastlib, markerapp, certifi\ntry:\n    import backportlib; b = "backport"\nexcept ImportError:\n    b = "-"\nprint("%d.%d" % sys.version_info[:2], fastlib.__version__, fastlib.TAG, b)';
    const on38 = await fleet.exec(fleet.hosts[0]!, [join(venv38(), 'bin', 'python'), '-c', check]);
    const on312 = await fleet.exec(fleet.hosts[1]!, [join(venv312(), 'bin', 'python'), '-c', check]);
    expect(on38.stdout.trim()).to.equal('3.8 1.0 cp38-cp38-manylinux_2_17_x86_64 backport');
    expect(on312.stdout.trim()).to.equal('3.12 2.0 cp312-cp312-manylinux_2_17_x86_64 -');
  });

  it('--json: a second fetch finds everything present, as JSON on stdout', async () => {
    const r = await fetch(['--json']);
    expect(r.exitCode, r.stderr).to.equal(0);
    const json = JSON.parse(r.stdout) as {
      repo: string;
      dryRun: boolean;
      failed: boolean;
      targets: Array<{ target: string; venvs: string[]; wheels: Array<{ status: string }> }>;
      packages: Array<{ name: string; version: string; targets: Record<string, string> }>;
    };
    expect(json.repo).to.equal(project.repo);
    expect(json.failed).to.equal(false);
    expect(json.targets.map((t) => t.venvs.length)).to.deep.equal([1, 1]);
    expect(json.targets.flatMap((t) => t.wheels.map((w) => w.status))).to.deep.equal(Array(9).fill('already-present'));
    expect(json.packages.find((p) => p.name === 'fastlib' && p.version === '2.0')?.targets).to.deep.equal({ [json.targets[1]!.target]: 'already-present' });
  });

  it('holds the repository\'s versions; --upgrade takes the newest the index offers, and the next plan shows the upgrade', async () => {
    await buildWheel(index.findLinks, { name: 'fastlib', version: '2.1', tag: 'cp312-cp312-manylinux_2_17_x86_64', files: { 'fastlib/__init__.py': '__version__ = "2.1"\n' } });
    const held = await fetch(['--select', 'host2']);
    expect(held.exitCode, held.stderr + held.stdout).to.equal(0);
    expect(held.stdout).to.include('1 target: 0 added, 4 already present');
    const up = await fetch(['--upgrade', '--select', 'host2']);
    expect(up.exitCode, up.stderr + up.stdout).to.equal(0);
    expect(up.stdout).to.match(/^fastlib\s+2\.1\s+added$/m);
    const plan = await project.run(['plan']);
    expect(plan.exitCode, plan.stderr + plan.stdout).to.equal(0);
    expect(plan.stdout).to.match(/fastlib\s+2\.0\s*(->|→)\s*2\.1/);
  });

  it('a package with only an sdist is missing for each Python, with the hint to build it; exit 1, and what did download was added', async () => {
    const r = await fetch(['onlysdist', 'tzdata', '--select', 'host1']);
    expect(r.exitCode, r.stderr + r.stdout).to.equal(1);
    expect(r.stderr).to.match(/^missing: cp38-cp38-\S+: onlysdist$/m);
    expect(r.stderr).to.match(/hint: no wheel of onlysdist for cp38-cp38-\S+: build one with `vdeploy build` from its source, or pin a version that has wheels for this Python/);
    expect(r.stdout).to.match(/^tzdata\s+\S+\s+added$/m);
    expect(await releaseLog()).to.match(/^release: tzdata==\S+ tzdata-\S+\.whl /m);
    expect(r.stdout).to.include('1 missing (the wheels that did download were added)');
  });

  it('without a local Python with pip: one clear error line with the hint, exit 2', async () => {
    const dir = await makeTempDir('vdeploy-nopip-');
    const venv = join(dir, 'venv');
    await fleet.exec(fleet.hosts[0]!, [PY312, '-m', 'venv', '--without-pip', venv]);
    const noPip = await fetch(['--python', join(venv, 'bin', 'python')]);
    expect(noPip.exitCode).to.equal(2);
    expect(noPip.stderr).to.match(/^error: \S+\/venv\/bin\/python \(Python 3\.12\.1\) has no pip; vdeploy fetch needs a Python with pip on this machine/m);
    expect(noPip.stderr).to.match(/^hint: install it \(`\S+ -m ensurepip --upgrade`/m);
    const noPython = await project.run(['fetch'], { env: { ...env, PATH: dir } });
    expect(noPython.exitCode).to.equal(2);
    expect(noPython.stderr).to.match(/^error: no `python3` on PATH; vdeploy fetch needs a Python with pip/m);
    expect(noPython.stderr).to.match(/^hint: install Python 3 with pip, or pass --python/m);
    const oldPip = await fetch(['--dry-run', '--python', PY37]);
    expect(oldPip.exitCode).to.equal(2);
    expect(oldPip.stderr).to.match(/^error: --dry-run needs pip 22\.2 or newer \(pip install --dry-run --report\); \S+python3\.7 has pip 22\.0\.4$/m);
    expect(await releaseLog()).to.not.include('onlysdist');
  });

  it('fetches for a Python named by flags, without the venvs\' facts; flags that describe no target are usage errors', async () => {
    // The index named by flags this time, not by PIP_* variables.
    const flags = ['--index-url', index.simpleUrl, '--find-links', index.findLinks];
    const r = await project.run(['fetch', '--dry-run', '--python-version', '3.8', '--platform', 'manylinux_2_17_x86_64', ...flags, 'fastlib', 'tzdata'], { env: isolatedPipEnv() });
    expect(r.exitCode, r.stderr + r.stdout).to.equal(0);
    expect(r.stdout.split('\n')[0]).to.match(/^package\s+version\s+cp38-cp38-manylinux_2_17_x86_64$/);
    expect(r.stdout).to.match(/^fastlib\s+1\.0\s+present$/m);
    expect(r.stdout).to.match(/^tzdata\s+\S+\s+present$/m);
    const none = await project.run(['fetch', '--dry-run', '--python-version', '3.8', '--platform', 'manylinux_2_17_x86_64', '--no-index', 'tzdata'], { env: isolatedPipEnv() });
    expect(none.exitCode, none.stderr + none.stdout).to.equal(0);
    // With no index, only the repository is searched (the app's wheels are there): it has tzdata.
    expect(none.stdout).to.match(/^tzdata\s+\S+\s+present$/m);
    const bad = await fetch(['--platform', 'manylinux_2_17_x86_64']);
    expect(bad.exitCode).to.equal(2);
    expect(bad.stderr).to.match(/^error: --platform, --abi and --implementation describe a target only with --python-version$/m);
    const both = await fetch(['--python-version', '3.8', '--platform', 'linux_x86_64', '--select', 'host1']);
    expect(both.exitCode).to.equal(2);
    expect(both.stderr).to.match(/^error: --python-version names the target itself/m);
  });
});

describe('vdeploy fetch: Ctrl-C', function () {
  this.timeout(120_000);

  it('stops pip, removes its temporary directory, leaves the repository alone and exits 130', async () => {
    const dir = await makeTempDir('vdeploy-fetch-int-');
    const started = join(dir, 'pip-started');
    // A Python whose pip answers the version question, then hangs in the download (exec: killing it kills the sleep).
    const fake = join(dir, 'python');
    await writeFile(
      fake,
      `#!/bin/sh\ncase "$2" in *"import pip"*) echo '{"python": "3.12.1", "pip": "24.0"}'; exit 0;; esac\necho "Collecting slowpkg"\necho "$@" > ${JSON.stringify(started)}\nexec sleep 60\n`,
    );
    await chmod(fake, 0o755);
    const run = startVdeploy(['fetch', '--python', fake, '--python-version', '3.12', '--platform', 'linux_x86_64', 'slowpkg'], dir);
    await waitFor(() => existsSync(started));
    run.child.kill('SIGINT');
    const r = await run.done;
    expect(r.exitCode, r.stderr).to.equal(130);
    expect(r.stderr).to.match(/^error: interrupted: pip was stopped; wheels of the targets done before are in the repository/m);
    expect(r.stderr).to.not.include('import json');
    const args = (await readFile(started, 'utf8')).trim().split(' ');
    const downloads = args[args.indexOf('-d') + 1]!;
    expect(downloads).to.match(/vdeploy-fetch-[^/]+\/wheels$/);
    expect(existsSync(join(downloads, '..'))).to.equal(false);
    expect(existsSync(join(dir, 'wheels'))).to.equal(false);
  });
});
