// Venvs owned by another user than the SSH login user, for real: the fleet host is logged into as
// `vdeploy-deployer` (not root), which may `sudo -n -u vdeploy-app` and nobody else (test-users.ts).
// Deploy, rollback and relocate through the built CLI; the files must belong to vdeploy-app
// afterwards; the wheel cache belongs to the login user, so the owner's access to it (reading it,
// and removing a damaged wheel from it) is tested too, and so is the error when sudo refuses.
import { expect } from 'chai';
import { lstat, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildWheel } from '../helpers/build-wheel.js';
import { makeTempDir } from '../helpers/cli.js';
import { makeDeployProject, type DeployProject } from '../helpers/deploy-project.js';
import { startFleet, type Fleet, type FleetHost } from '../helpers/fleet.js';
import type { TestUser } from '../helpers/test-users.js';
import { LocalConnection } from '../../src/remote/local-connection.js';

const local = new LocalConnection();

/** Every path under dir (itself included) not owned by uid, as `path uid`. */
async function notOwnedBy(dir: string, uid: number): Promise<string[]> {
  const found: string[] = [];
  const walk = async (p: string): Promise<void> => {
    const st = await lstat(p);
    if (st.uid !== uid) found.push(`${p} ${st.uid}`);
    if (st.isDirectory()) for (const name of await readdir(p)) await walk(join(p, name));
  };
  await walk(dir);
  return found;
}

/** The app's version as the venv's own Python, run as its owner, sees it. */
async function appVersion(venv: string, owner: string): Promise<string> {
  const r = await local.exec(['sudo', '-n', '-u', owner, join(venv, 'bin', 'python'), '-c', 'import sudoapp; print(sudoapp.__version__)']);
  return r.stdout.trim();
}

describe('venvs owned by another user: sudo -n -u, for real', function () {
  this.timeout(600_000);
  let fleet: Fleet;
  let host: FleetHost;
  let deployer: TestUser;
  let app: TestUser;
  let project: DeployProject;
  let wheels: string;
  let venv: string;
  let cacheParent: string;
  const cacheOf = (h: FleetHost) => join(h.root, 'deployer', 'wheels');

  before(async () => {
    fleet = await startFleet({ hosts: 1, sudoUsers: true });
    host = fleet.hosts[0]!;
    ({ deployer, app } = fleet.sudoUsers!);
    // The owner's directory for its venvs, and the login user's for its wheel cache (the fleet's
    // hosts share this machine's disk, so each host keeps its own).
    venv = join(host.root, 'srv', 'app', 'venv');
    cacheParent = join(host.root, 'deployer');
    await local.exec(['install', '-d', '-m', '755', '-o', app.name, '-g', app.name, join(host.root, 'srv', 'app')]);
    await local.exec(['install', '-d', '-m', '755', '-o', deployer.name, '-g', deployer.name, cacheParent]);
    wheels = await makeTempDir('vdeploy-sudo-wheels-');
    project = await makeDeployProject(fleet, {
      loginUser: deployer.name,
      wheelCache: cacheOf,
      venvs: [{ host, path: venv, user: app.name }],
      requirements: 'sudoapp\n',
      wheels: [await buildWheel(wheels, { name: 'sudoapp', version: '1.0' })],
    });
  });
  after(async () => fleet?.stop());

  it('deploys a new venv as its owner: every file belongs to the owner, the cache to the login user', async () => {
    const r = await project.run(['deploy', '--yes']);
    expect(r.exitCode, r.stderr + r.stdout).to.equal(0);
    expect(await appVersion(venv, app.name)).to.equal('1.0');
    expect(await notOwnedBy(venv, app.uid)).to.deep.equal([]);
    expect(await notOwnedBy(cacheOf(host), deployer.uid)).to.deep.equal([]);
    const status = await project.run(['status', '--json']);
    const s = JSON.parse(status.stdout) as { venvs: Array<{ id: string; state: string }> };
    expect(s.venvs.map((v) => [v.id, v.state])).to.deep.equal([[`${app.name}@${host.name}:${venv}`, 'in-sync']]);
  });

  it('upgrades and rolls back as the owner', async () => {
    await project.addWheels([await buildWheel(wheels, { name: 'sudoapp', version: '1.1' })]);
    const up = await project.run(['deploy', '--yes']);
    expect(up.exitCode, up.stderr + up.stdout).to.equal(0);
    expect(await appVersion(venv, app.name)).to.equal('1.1');
    const back = await project.run(['rollback', host.name, '--yes']);
    expect(back.exitCode, back.stderr + back.stdout).to.equal(0);
    expect(await appVersion(venv, app.name)).to.equal('1.0');
    expect(await notOwnedBy(venv, app.uid)).to.deep.equal([]);
  });

  it('a releases venv owned by another user: built, switched, cleaned up and rolled back as the owner (issue 15)', async () => {
    const root = join(host.root, 'srv', 'app', 'releases-root');
    const rel = await makeDeployProject(fleet, {
      loginUser: deployer.name,
      wheelCache: cacheOf,
      venvs: [{ host, path: root, user: app.name, releases: { keep: 1 } }],
      requirements: 'sudoapp\n',
      wheels: [await buildWheel(wheels, { name: 'sudoapp', version: '1.0' })],
    });
    await rel.addWheels([await buildWheel(wheels, { name: 'sudoapp', version: '1.1' })]);
    await rel.setRequirements('sudoapp==1.0\n');
    const first = await rel.run(['deploy', '--yes']);
    expect(first.exitCode, first.stderr + first.stdout).to.equal(0);
    await rel.setRequirements('sudoapp\n');
    const up = await rel.run(['deploy', '--yes']);
    expect(up.exitCode, up.stderr + up.stdout).to.equal(0);
    const current = join(root, 'current');
    expect(await appVersion(current, app.name)).to.equal('1.1');
    expect(await readdir(join(root, 'releases'))).to.have.length(2);
    expect(await notOwnedBy(root, app.uid)).to.deep.equal([]);
    const back = await rel.run(['rollback', host.name, '--yes']);
    expect(back.exitCode, back.stderr + back.stdout).to.equal(0);
    expect(await appVersion(current, app.name)).to.equal('1.0');
    expect(await notOwnedBy(root, app.uid)).to.deep.equal([]);
  });

  it('a damaged wheel in the login user\'s cache is removed by the deploy that finds it, and pushed again by the next', async () => {
    const damaged = join(cacheOf(host), 'sudoapp-1.1-py3-none-any.whl');
    await writeFile(damaged, 'not the wheel any more'); // as root: the file keeps its owner, the login user
    const r = await project.run(['deploy', '--yes']);
    expect(r.exitCode).to.equal(1);
    expect(r.stdout + r.stderr, r.stdout + r.stderr).to.match(/wheel cache entries were damaged or missing and have been removed: sudoapp-1\.1-py3-none-any\.whl/);
    expect(await lstat(damaged).catch(() => null)).to.equal(null);
    expect(await appVersion(venv, app.name)).to.equal('1.0');
    const again = await project.run(['deploy', '--yes']);
    expect(again.exitCode, again.stderr + again.stdout).to.equal(0);
    expect(again.stderr).to.match(/pushed 1 wheel/);
    expect(await appVersion(venv, app.name)).to.equal('1.1');
    expect(await notOwnedBy(cacheOf(host), deployer.uid)).to.deep.equal([]);
  });

  it('a wheel cache the owner cannot read: a clear error naming both and the fix, the venv unchanged; readable, it deploys', async () => {
    await project.addWheels([await buildWheel(wheels, { name: 'sudoapp', version: '1.2' })]);
    await local.exec(['chmod', '700', cacheParent]);
    try {
      const r = await project.run(['deploy', '--yes']);
      expect(r.exitCode).to.equal(1);
      const out = r.stdout + r.stderr;
      expect(out, out).to.include(`${app.name} cannot read the wheel cache ${cacheOf(host)}`);
      expect(out, out).to.include(`${cacheParent} is not searchable by ${app.name}`);
      expect(out, out).to.match(/wheelCache/);
      expect(out, out).not.to.match(/Traceback/);
      expect(await appVersion(venv, app.name)).to.equal('1.1');
    } finally {
      await local.exec(['chmod', '755', cacheParent]);
    }
    const r = await project.run(['deploy', '--yes']);
    expect(r.exitCode, r.stderr + r.stdout).to.equal(0);
    expect(await appVersion(venv, app.name)).to.equal('1.2');
  });

  it('relocates it as the owner (--update-path NEW): rewritten files stay the owner\'s, the venv works after the move', async () => {
    const target = join(host.root, 'srv', 'app', 'release 2', 'venv');
    const r = await project.run(['relocate', host.name, '--update-path', target]);
    expect(r.exitCode, r.stderr + r.stdout).to.equal(0);
    expect(r.stdout).to.include(`it works once moved to ${target}`);
    expect(await notOwnedBy(venv, app.uid)).to.deep.equal([]);
    await local.exec(['sudo', '-n', '-u', app.name, 'sh', '-c', 'mkdir -p "$(dirname "$2")" && mv "$1" "$2"', 'sh', venv, target]);
    const prefix = await local.exec(['sudo', '-n', '-u', app.name, join(target, 'bin', 'python'), '-c', 'import sys, sudoapp; print(sys.prefix, sudoapp.__version__)']);
    expect(prefix.stdout).to.equal(`${target} 1.2\n`);
  });

  describe('a venv owner the login user may not sudo to', () => {
    let refused: DeployProject;
    let nobodyVenv: string;

    before(async () => {
      nobodyVenv = join(host.root, 'srv', 'nobody', 'venv');
      refused = await makeDeployProject(fleet, {
        loginUser: deployer.name,
        wheelCache: cacheOf,
        venvs: [{ host, path: nobodyVenv, user: 'nobody' }],
        requirements: 'sudoapp\n',
        wheels: [await buildWheel(wheels, { name: 'sudoapp', version: '1.0' })],
      });
    });

    it('deploy: names the host, the login user, the owner and the sudoers rule to add; nothing created', async () => {
      const r = await refused.run(['deploy', '--yes']);
      expect(r.exitCode).to.equal(1);
      const out = r.stdout + r.stderr;
      expect(out, out).to.include(`nobody@${host.name}:${nobodyVenv}: sudo refused to run the apply script as nobody for ${deployer.name} on ${host.name}: sudo: a password is required`);
      expect(out, out).to.include(`hint: on ${host.name}, let ${deployer.name} run commands as nobody without a password: add \`${deployer.name} ALL=(nobody) NOPASSWD: ALL\``);
      expect(out, out).to.match(/nobody@\S+ +failed +1 /); // not "created": the apply never started
      expect(await lstat(nobodyVenv).catch(() => null)).to.equal(null);
    });

    it('relocate: the same explanation', async () => {
      const r = await refused.run(['relocate', host.name, '--update-path', 'auto']);
      expect(r.exitCode).to.equal(1);
      const out = r.stdout + r.stderr;
      expect(out, out).to.include(`${nobodyVenv}: sudo refused to run the relocate script as nobody for ${deployer.name} on ${host.name}: sudo: a password is required`);
      expect(out, out).to.include(`hint: on ${host.name}, let ${deployer.name} run commands as nobody without a password: add \`${deployer.name} ALL=(nobody) NOPASSWD: ALL\``);
    });
  });
});
