// Hosts that leave a venv damaged, through the built binary against a real sshd host: a disk that
// fills up while vdeploy creates a venv (a real small filesystem: the host's sshd runs in its own
// mount namespace with a tmpfs on its srv directory), and the `~name` stash folders a crash in the
// middle of pip leaves in site-packages.
import { expect } from 'chai';
import { join } from 'node:path';
import { buildWheel } from '../helpers/build-wheel.js';
import { makeTempDir } from '../helpers/cli.js';
import { makeDeployProject } from '../helpers/deploy-project.js';
import { startFleet, type Fleet, type FleetHost } from '../helpers/fleet.js';

/** Fills the host's srv filesystem until `leaveKiB` are left, with one file; returns its path. */
async function fillDisk(fleet: Fleet, host: FleetHost, leaveKiB: number): Promise<string> {
  const filler = join(host.root, 'srv', 'filler');
  const df = await fleet.exec(host, ['df', '--output=avail', '-k', join(host.root, 'srv')]);
  const availKiB = Number(df.stdout.trim().split('\n').at(-1));
  await fleet.exec(host, ['fallocate', '-l', `${(availKiB - leaveKiB) * 1024}`, filler]);
  return filler;
}

describe('vdeploy on a host that damages venvs (real sshd host)', function () {
  this.timeout(300_000);
  let fleet: Fleet;
  let wheels: string;
  before(async () => {
    fleet = await startFleet({ hosts: 1, srvMegabytes: 96 });
    wheels = await makeTempDir('vdeploy-hostile-wheels-');
  });
  after(async () => fleet?.stop());

  it('a disk that fills while creating the venv: "disk full", exit 1; once freed, the next deploy creates it anew', async () => {
    const host = fleet.hosts[0]!;
    const venv = join(host.root, 'srv', 'full', 'venv');
    const project = await makeDeployProject(fleet, {
      venvs: [{ host, path: venv }],
      requirements: 'tinyapp\n',
      wheels: [await buildWheel(wheels, { name: 'tinyapp', version: '1.0' })],
    });
    const filler = await fillDisk(fleet, host, 6 * 1024);
    const first = await project.run(['deploy', '--yes']);

    expect(first.exitCode, first.stdout + first.stderr).to.equal(1);
    expect(first.stdout + first.stderr).to.match(/disk full on host1 \(Errno 28/);
    expect(first.stdout + first.stderr).not.to.match(/on the host's PATH/);

    // The half-made venv is gone (its .vdeploy with the history stays), and status says so.
    expect((await fleet.exec(host, ['ls', '-A', venv])).stdout.trim()).to.equal('.vdeploy');
    const status = await project.run(['status']);
    expect(status.stdout, status.stderr).to.match(/drift \(2\)/);
    expect(status.stdout).to.match(/half-made by a deploy that failed or died: the next deploy creates it anew/);

    await fleet.exec(host, ['rm', filler]);
    const second = await project.run(['deploy', '--yes']);
    expect(second.exitCode, second.stdout + second.stderr).to.equal(0);
    const version = await fleet.exec(host, [join(venv, 'bin', 'python'), '-c', 'import importlib.metadata as m; print(m.version("tinyapp"))']);
    expect(version.stdout.trim()).to.equal('1.0');
  });

  it("pip's ~name stash folders in site-packages: status reports drift, the next deploy removes them", async () => {
    const host = fleet.hosts[0]!;
    const venv = join(host.root, 'srv', 'stash', 'venv');
    const project = await makeDeployProject(fleet, {
      venvs: [{ host, path: venv }],
      requirements: 'tinyapp\n',
      wheels: [await buildWheel(wheels, { name: 'tinyapp', version: '2.0' })],
    });
    const first = await project.run(['deploy', '--yes']);
    expect(first.exitCode, first.stdout + first.stderr).to.equal(0);
    // What pip leaves when the host dies while it upgrades Django: the old files moved aside, not yet deleted.
    const site = (await fleet.exec(host, [join(venv, 'bin', 'python'), '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'])).stdout.trim();
    await fleet.exec(host, ['mkdir', '-p', join(site, '~jango', 'db'), join(site, '~jango-5.0.dist-info')]);
    await fleet.exec(host, ['sh', '-c', 'printf "Name: Django\\nVersion: 5.0\\n\\n" > "$0"', join(site, '~jango-5.0.dist-info', 'METADATA')]);

    const status = await project.run(['status']);
    expect(status.stdout, status.stderr).to.match(/drift \(2\)/);
    expect(status.stdout).to.match(/pip left stash folders \(~jango, ~jango-5\.0\.dist-info\) in site-packages: the next deploy removes them/);
    expect(status.stdout, "a stash is no installed Django").not.to.match(/Django/);

    const second = await project.run(['deploy', '--yes']);
    expect(second.exitCode, second.stdout + second.stderr).to.equal(0);
    expect(second.stdout).to.match(/removes pip's leftover stash folders \(a pip that died mid-way\): ~jango, ~jango-5\.0\.dist-info/);
    expect((await fleet.exec(host, ['ls', '-A', site])).stdout).not.to.match(/~/);
    const after = await project.run(['status', '--json']);
    expect(JSON.parse(after.stdout).venvs[0]).to.deep.include({ state: 'in-sync', differing: 0 });
  });
});
