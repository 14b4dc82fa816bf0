// Hosts with every Python vdeploy supports: deploy, no-op, upgrade and rollback through the built CLI
// against a real sshd fleet, with venvs created by the deploy from pyenv's CPython 3.6, 3.8, 3.12 and
// 3.13. The wheels declare Requires-Python, so the 3.6 venv gets another version of a library than the
// others; every result is checked by importing the packages on the host, over ssh.
import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildWheel } from '../helpers/build-wheel.js';
import { makeTempDir } from '../helpers/cli.js';
import { makeDeployProject, type DeployProject } from '../helpers/deploy-project.js';
import { startFleet, type Fleet, type FleetHost } from '../helpers/fleet.js';

const PYENV = '/root/.pyenv/versions';
const PYTHONS = ['3.6.15', '3.8.18', '3.12.1', '3.13.0'];
const pythonOf = (version: string) => join(PYENV, version, 'bin', `python${version.split('.').slice(0, 2).join('.')}`);
const missing = PYTHONS.filter((v) => !existsSync(pythonOf(v)));

/** polylib 2.0 needs Python 3.8: the 3.6 venv must get 1.0. */
async function buildWheels(dir: string, app: string): Promise<string[]> {
  const lib = (version: string, requiresPython: string) =>
    buildWheel(dir, { name: 'polylib', version, requiresPython, files: { 'polylib/__init__.py': `__version__ = "${version}"\n` } });
  return [
    await lib('1.0', '>=3.6'),
    await lib('2.0', '>=3.8'),
    await buildWheel(dir, {
      name: 'polyapp',
      version: app,
      requiresPython: '>=3.6',
      requiresDist: ['polylib>=1.0'],
      files: { 'polyapp/__init__.py': `__version__ = "${app}"\n` },
    }),
  ];
}

(missing.length > 0 ? describe.skip : describe)(`deploys to venvs of CPython ${PYTHONS.join(', ')} (real sshd, real pip)`, function () {
  this.timeout(900_000);
  let fleet: Fleet;
  let project: DeployProject;
  let wheelDir: string;
  // Two hosts, two venvs each, made by the deploy with the Python in their name.
  const venvs = () =>
    PYTHONS.map((version, i) => ({ host: fleet.hosts[i % 2]!, version, path: join(fleet.hosts[i % 2]!.root, 'srv', `py${version}`) }));

  /** What each venv imports, asked on its host over ssh: "python polyapp polylib". */
  async function imported(): Promise<string[]> {
    return Promise.all(
      venvs().map(async (v) => {
        const r = await fleet.exec(v.host, [join(v.path, 'bin', 'python'), '-c', 'import sys, polyapp, polylib; print("%d.%d" % sys.version_info[:2], polyapp.__version__, polylib.__version__)']);
        return r.stdout.trim();
      }),
    );
  }

  before(async () => {
    fleet = await startFleet({ hosts: 2 });
    wheelDir = await makeTempDir('vdeploy-pythons-');
    project = await makeDeployProject(fleet, {
      venvs: venvs().map((v) => ({ host: v.host, path: v.path, python: pythonOf(v.version) })),
      requirements: 'polyapp\n',
      wheels: await buildWheels(wheelDir, '1.0'),
    });
  });
  after(async () => fleet?.stop());

  it('a fresh deploy creates each venv with its Python and installs what that Python may have', async () => {
    const r = await project.run(['deploy', '--yes']);
    expect(r.exitCode, r.stderr + r.stdout).to.equal(0);
    expect(await imported()).to.deep.equal(['3.6 1.0 1.0', '3.8 1.0 2.0', '3.12 1.0 2.0', '3.13 1.0 2.0']);
    // The 3.6 venv's pip (18.1) has no --report: its install rests on pinned hashes, and says so.
    const history = JSON.parse((await readFile(join(venvs()[0]!.path, '.vdeploy', 'history.jsonl'), 'utf8')).trim()) as {
      outcome: string;
      after: Record<string, string>;
    };
    expect(history.outcome).to.equal('deployed');
    expect(history.after).to.include({ polyapp: '1.0', polylib: '1.0' });
  });

  it('a second deploy changes nothing and runs no pip', async () => {
    const r = await project.run(['deploy', '--yes']);
    expect(r.exitCode, r.stderr + r.stdout).to.equal(0);
    expect(r.stdout).to.include('Nothing to deploy.');
    expect(r.stderr).not.to.match(/push|install/);
    for (const v of venvs()) {
      const lines = (await readFile(join(v.path, '.vdeploy', 'history.jsonl'), 'utf8')).trim().split('\n');
      expect(lines, v.path).to.have.length(1);
    }
  });

  it('an upgrade of the app reaches every venv', async () => {
    await project.addWheels([(await buildWheels(join(wheelDir, 'next'), '1.1'))[2]!]);
    const r = await project.run(['deploy', '--yes']);
    expect(r.exitCode, r.stderr + r.stdout).to.equal(0);
    expect(await imported()).to.deep.equal(['3.6 1.1 1.0', '3.8 1.1 2.0', '3.12 1.1 2.0', '3.13 1.1 2.0']);
  });

  it('rollback puts the previous set back everywhere', async () => {
    const r = await project.run(['rollback', '--yes']);
    expect(r.exitCode, r.stderr + r.stdout).to.equal(0);
    expect(await imported()).to.deep.equal(['3.6 1.0 1.0', '3.8 1.0 2.0', '3.12 1.0 2.0', '3.13 1.0 2.0']);
  });

  it('a venv whose pip is too old for a hash-pinned install is refused with the pip version and what to do', async () => {
    // A 3.6 venv whose pip says it is 7.1.2 (older than --require-hashes): made by hand, then deployed to.
    const host: FleetHost = fleet.hosts[0]!;
    const old = join(host.root, 'srv', 'oldpip');
    await fleet.exec(host, [pythonOf('3.6.15'), '-m', 'venv', old]);
    const site = join(old, 'lib', 'python3.6', 'site-packages');
    const pipInfo = (await readdir(site)).find((n) => /^pip-.*\.dist-info$/.test(n))!;
    const metadata = join(site, pipInfo, 'METADATA');
    await writeFile(metadata, (await readFile(metadata, 'utf8')).replace(/^Version: .*$/m, 'Version: 7.1.2'));
    const dir = await makeTempDir('vdeploy-oldpip-');
    const oldProject = await makeDeployProject(fleet, {
      venvs: [{ host, path: old, python: pythonOf('3.6.15') }],
      requirements: 'polyapp\n',
      wheels: await buildWheels(dir, '1.0'),
    });
    const r = await oldProject.run(['deploy', '--yes']);
    expect(r.exitCode, r.stderr + r.stdout).to.equal(1);
    expect(r.stdout).to.match(/pip 7\.1\.2/);
    expect(r.stdout).to.match(/older than 8\.0/);
    expect(existsSync(join(site, 'polyapp'))).to.equal(false);
  });
});
