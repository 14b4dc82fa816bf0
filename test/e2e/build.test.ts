// `vdeploy build` through the built binary: a git repository the test creates (a small setuptools app,
// two commits), each commit built into the project's repository with its commit in release_log, the
// same commit twice byte-identical (`present`), uncommitted changes kept out of a --ref build, the
// second commit deployed to a one-host sshd fleet where `status` and `history` show the commit, build
// isolation from a local find-links directory, and the errors (one line each, nothing added).
// pip never sees this machine's global configuration (isolatedPipEnv); everything is offline.
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { makeTempDir, runVdeploy, type CliResult } from '../helpers/cli.js';
import { makeDeployProject, type DeployProject } from '../helpers/deploy-project.js';
import { startFleet, type Fleet } from '../helpers/fleet.js';
import { BUILD_PYTHON, buildBackendWheels, isolatedPipEnv, makeGitApp, type GitApp } from '../helpers/git-app.js';

const execFileAsync = promisify(execFile);
const OFFLINE = ['--python', BUILD_PYTHON, '--no-build-isolation'];

describe('vdeploy build (git repository → wheel repository → fleet)', function () {
  this.timeout(600_000);
  let fleet: Fleet;
  let project: DeployProject;
  let app: GitApp;
  let c1: string;
  let c2: string;
  const build = (args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): Promise<CliResult> =>
    runVdeploy(['build', ...args], { cwd: opts.cwd ?? project.dir, env: isolatedPipEnv(opts.env), timeoutMs: 300_000 });
  const releaseLog = () => readFile(join(project.repo, 'release_log'), 'utf8');

  before(async () => {
    app = await makeGitApp('shipit');
    c1 = await app.commit('1.0');
    c2 = await app.commit('1.1');
    fleet = await startFleet({ hosts: 1, venvsPerHost: 1 });
    project = await makeDeployProject(fleet, { venvs: [{ host: fleet.hosts[0]!, path: fleet.hosts[0]!.venvs[0]! }], requirements: 'shipit\n', wheels: [] });
  });
  after(async () => fleet?.stop());

  it('builds each commit (--ref) into the repository, the release line naming its commit', async () => {
    const r1 = await build([app.dir, '--ref', 'HEAD~1', ...OFFLINE]);
    expect(r1.exitCode, r1.stderr).to.equal(0);
    expect(r1.stdout).to.match(/^added\s+shipit==1\.0\s+shipit-1\.0-py3-none-any\.whl/m);
    expect(r1.stdout).to.include(`built from commit ${c1}, without build isolation`);
    expect(r1.stderr).to.include(`checked out ${c1.slice(0, 12)} (HEAD~1) of ${app.dir}`);
    const r2 = await build([app.dir, '--ref', 'main', ...OFFLINE]);
    expect(r2.exitCode, r2.stderr).to.equal(0);
    expect(r2.stdout).to.match(/^added\s+shipit==1\.1/m);
    const lines = (await releaseLog()).trim().split('\n');
    expect(lines).to.have.length(2);
    expect(lines[0]).to.match(new RegExp(`^release: shipit==1\\.0 shipit-1\\.0-py3-none-any\\.whl at \\S+ sha256=[0-9a-f]{64} commit=${c1}$`));
    expect(lines[1]).to.match(new RegExp(`^release: shipit==1\\.1 shipit-1\\.1-py3-none-any\\.whl at \\S+ sha256=[0-9a-f]{64} commit=${c2}$`));
    const wheels = await project.run(['wheels', '--json']);
    const listing = JSON.parse(wheels.stdout) as { packages: Array<{ name: string; versions: Array<{ version: string; commit?: string }> }> };
    expect(listing.packages[0]!.versions.map((v) => [v.version, v.commit])).to.deep.equal([['1.1', c2], ['1.0', c1]]);
  });

  it('the same commit again (no DIR: the repository here, --json): byte-identical, `present`, nothing logged', async () => {
    const before = await readFile(join(project.repo, 'shipit-1.0-py3-none-any.whl'));
    const logBefore = await releaseLog();
    const r = await build(['--ref', 'HEAD~1', '--repo', project.repo, '--json', ...OFFLINE], { cwd: app.dir });
    expect(r.exitCode, r.stderr).to.equal(0);
    const result = JSON.parse(r.stdout) as { added: { status: string; sha256: string; commit: string }; source: { commit: string }; isolation: boolean; sourceDateEpoch: number };
    expect(result.added).to.include({ status: 'already-present', commit: c1 });
    expect(result.source.commit).to.equal(c1);
    expect(result.isolation).to.equal(false);
    expect(String(result.sourceDateEpoch)).to.equal((await app.git(['show', '-s', '--format=%ct', c1])).trim());
    expect(await readFile(join(project.repo, 'shipit-1.0-py3-none-any.whl'))).to.deep.equal(before);
    expect(await releaseLog()).to.equal(logBefore);
  });

  it('uncommitted changes are not in a --ref build; a DIR named without --ref builds them and says so', async () => {
    const init = join(app.dir, 'shipit', '__init__.py');
    await writeFile(init, '__version__ = "1.1"\nUNCOMMITTED = True\n');
    try {
      // The clean checkout of HEAD gives exactly the bytes already released for it.
      const clean = await build([app.dir, '--ref', 'HEAD', ...OFFLINE]);
      expect(clean.exitCode, clean.stderr).to.equal(0);
      expect(clean.stdout).to.match(/^present\s+shipit==1\.1/m);
      expect(clean.stderr).to.include(`note: ${app.dir} has uncommitted changes; they are not in this build`);
      // As it is, into another repository: the change is in the wheel, and no commit is recorded.
      const other = await makeTempDir('vdeploy-build-other-');
      const dirty = await build([app.dir, '--repo', other, ...OFFLINE]);
      expect(dirty.exitCode, dirty.stderr).to.equal(0);
      expect(dirty.stderr).to.include(`warning: ${app.dir} has uncommitted changes (HEAD is ${c2.slice(0, 12)}): they are in this wheel`);
      expect(dirty.stdout).to.include('built from uncommitted changes (no commit recorded)');
      expect(await readFile(join(other, 'release_log'), 'utf8')).not.to.include('commit=');
      expect(await wheelMember(join(other, 'shipit-1.1-py3-none-any.whl'), 'shipit/__init__.py')).to.include('UNCOMMITTED = True');
      expect(await wheelMember(join(project.repo, 'shipit-1.1-py3-none-any.whl'), 'shipit/__init__.py')).not.to.include('UNCOMMITTED');
    } finally {
      await app.git(['checkout', '--', '.']);
    }
  });

  it('deploys the second commit; status and history show the commit the venv runs', async () => {
    const deploy = await project.run(['deploy', '--yes']);
    expect(deploy.exitCode, deploy.stderr + deploy.stdout).to.equal(0);
    const json = await project.run(['status', '--json']);
    expect(json.exitCode, json.stderr).to.equal(0);
    const status = JSON.parse(json.stdout) as { venvs: Array<{ state: string; builtFrom?: Array<{ name: string; version: string; commit: string }> }> };
    expect(status.venvs[0]!.state).to.equal('in-sync');
    expect(status.venvs[0]!.builtFrom).to.deep.equal([{ name: 'shipit', version: '1.1', commit: c2, filename: 'shipit-1.1-py3-none-any.whl' }]);
    const table = await project.run(['status']);
    expect(table.stdout).to.match(/VENV\s+STATE\s+COMMIT\s+LAST DEPLOY/);
    expect(table.stdout).to.match(new RegExp(`in sync\\s+${c2.slice(0, 12)}\\s`));
    for (const line of table.stdout.split('\n')) expect(line.length, line).to.be.at.most(80);
    const history = await project.run(['history']);
    expect(history.exitCode, history.stderr).to.equal(0);
    expect(history.stdout).to.include(`runs shipit 1.1 from commit ${c2.slice(0, 12)}`);
    expect(history.stdout).to.match(new RegExp(`#1 .*deployed\\s+${c2.slice(0, 12)}\\s+\\+shipit 1\\.1`));
    const hjson = JSON.parse((await project.run(['history', '--json'])).stdout) as Array<{ builtFrom: Array<{ commit: string }>; entries: Array<{ builtFrom: Array<{ commit: string }> }> }>;
    expect(hjson[0]!.builtFrom[0]!.commit).to.equal(c2);
    expect(hjson[0]!.entries[0]!.builtFrom[0]!.commit).to.equal(c2);
  });

  it('builds with build isolation from a local find-links directory (the index a user configures)', async function () {
    const links = await buildBackendWheels();
    if (!links) this.skip();
    const other = await makeTempDir('vdeploy-build-isolated-');
    const r = await build([`file://${app.dir}`, '--repo', other, '--python', BUILD_PYTHON], { env: { PIP_NO_INDEX: '1', PIP_FIND_LINKS: links! } });
    expect(r.exitCode, r.stderr).to.equal(0);
    expect(r.stderr).to.include('with build isolation (the build backend is installed from your pip index)');
    expect(r.stdout).to.include(`built from commit ${c2}, with build isolation`);
    expect(await readFile(join(other, 'release_log'), 'utf8')).to.include(`commit=${c2}`);
  });

  describe('errors: one line, non-zero exit, nothing added', () => {
    let logBefore: string;
    beforeEach(async () => {
      logBefore = await releaseLog();
    });
    afterEach(async () => {
      expect(await releaseLog()).to.equal(logBefore);
    });
    const oneError = (r: CliResult, code: number, message: RegExp) => {
      expect(r.exitCode, r.stderr).to.equal(code);
      const errors = r.stderr.split('\n').filter((l) => l.startsWith('error:'));
      expect(errors, r.stderr).to.have.length(1);
      expect(errors[0]).to.match(message);
      expect(r.stderr).to.match(/^hint: /m);
      expect(r.stdout).to.equal('');
    };

    it('--ref on a directory that is not in a git repository', async () => {
      const plain = await makeTempDir('vdeploy-not-git-');
      oneError(await build([plain, '--ref', 'HEAD', ...OFFLINE]), 2, new RegExp(`^error: ${plain} is not in a git repository, so --ref cannot be used$`));
    });
    it('no DIR outside a git repository', async () => {
      oneError(await build(OFFLINE, { cwd: await makeTempDir('vdeploy-not-git-') }), 2, /^error: the current directory is not in a git repository/);
    });
    it('an unknown ref, locally and in a cloned URL', async () => {
      oneError(await build([app.dir, '--ref', 'no-such-branch', ...OFFLINE]), 2, /^error: unknown ref "no-such-branch" in /);
      oneError(await build([`file://${app.dir}`, '--ref', 'v9', ...OFFLINE]), 2, /^error: unknown ref "v9" in file:\/\//);
    });
    it("a build that fails: pip's last words", async () => {
      await app.git(['checkout', '--quiet', '-b', 'broken']);
      await app.commit('1.2', { files: { 'setup.py': 'raise SystemExit("boom: the build is broken")\n' } });
      await app.git(['checkout', '--quiet', 'main']);
      oneError(await build([app.dir, '--ref', 'broken', ...OFFLINE]), 1, /^error: building [0-9a-f]{12} \(broken\) of .* failed: .*boom: the build is broken/);
    });
    it('a wheel that fails validation', async () => {
      await app.git(['checkout', '--quiet', '-b', 'badwheel']);
      await app.commit('9.0', {
        files: {
          'pyproject.toml': '[build-system]\nrequires = []\nbuild-backend = "badbackend"\nbackend-path = ["."]\n',
          'badbackend.py': BAD_BACKEND,
        },
      });
      await app.git(['checkout', '--quiet', 'main']);
      oneError(await build([app.dir, '--ref', 'badwheel', ...OFFLINE]), 1, /^error: built a wheel from .*, but it was not added: shipit-9\.0-py3-none-any\.whl: RECORD/);
    });
    it('no python, and a python without pip', async () => {
      oneError(await build([app.dir, '--ref', 'HEAD', '--python', '/nonexistent/python3']), 2, /^error: --python \/nonexistent\/python3: not found; vdeploy build needs a local Python with pip$/);
      const venv = join(await makeTempDir('vdeploy-no-pip-'), 'venv');
      await execFileAsync(BUILD_PYTHON, ['-m', 'venv', '--without-pip', venv]);
      oneError(await build([app.dir, '--ref', 'HEAD', '--python', join(venv, 'bin', 'python')]), 2, /^error: --python .*\/bin\/python has no usable pip \(.*No module named pip.*\)/);
    });
  });
});

/** A PEP 517 backend whose wheel's RECORD has a wrong hash: pip builds it, vdeploy must refuse it. */
const BAD_BACKEND = `import os, zipfile

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    name = 'shipit-9.0-py3-none-any.whl'
    with zipfile.ZipFile(os.path.join(wheel_directory, name), 'w') as z:
        z.writestr('shipit/__init__.py', 'x = 1\\n')
        z.writestr('shipit-9.0.dist-info/METADATA', 'Metadata-Version: 2.1\\nName: shipit\\nVersion: 9.0\\n')
        z.writestr('shipit-9.0.dist-info/WHEEL', 'Wheel-Version: 1.0\\nGenerator: bad\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n')
        z.writestr('shipit-9.0.dist-info/RECORD', 'shipit/__init__.py,sha256=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA,6\\nshipit-9.0.dist-info/METADATA,,\\nshipit-9.0.dist-info/WHEEL,,\\nshipit-9.0.dist-info/RECORD,,\\n')
    return name
`;

/** One member of a wheel, read with Python's zipfile (independent of vdeploy's zip code). */
async function wheelMember(wheel: string, member: string): Promise<string> {
  const { stdout } = await execFileAsync(BUILD_PYTHON, ['-c', 'import sys, zipfile; sys.stdout.write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]).decode())', wheel, member]);
  return stdout;
}
