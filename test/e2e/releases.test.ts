// The releases layout (issue 15) through the built CLI against a real sshd fleet.
import { expect } from 'chai';
import { readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { buildWheel } from '../helpers/build-wheel.js';
import { makeTempDir } from '../helpers/cli.js';
import { makeDeployProject } from '../helpers/deploy-project.js';
import { startFleet, type Fleet, type FleetHost } from '../helpers/fleet.js';

function relapp(dir: string, version: string, broken = false): Promise<string> {
  const init = `__version__ = "${version}"\n${broken ? `raise RuntimeError("relapp ${version} is broken")\n` : ''}`;
  return buildWheel(dir, { name: 'relapp', version, files: { 'relapp/__init__.py': init } });
}

describe('releases layout (real sshd fleet)', function () {
  this.timeout(600_000);
  let fleet: Fleet;
  let host: FleetHost;
  let wheels: string;

  before(async () => {
    fleet = await startFleet({ hosts: 1 });
    host = fleet.hosts[0]!;
    wheels = await makeTempDir('vdeploy-rel-wheels-');
  });
  after(async () => fleet?.stop());

  it('smoke: fresh, upgrade, no-op', async () => {
    const root = join(host.root, 'srv', 'smoke');
    const project = await makeDeployProject(fleet, { venvs: [{ host, path: root, releases: { keep: 2 }, healthcheck: { command: 'bin/python -c "import relapp"', retries: 0 } }], requirements: 'relapp\n', wheels: [await relapp(wheels, '1.0')] });
    const r1 = await project.run(['deploy', '--yes']);
    console.log(r1.stdout, r1.stderr);
    console.log(await readlink(join(root, 'current')), await readdir(join(root, 'releases')));
    await project.addWheels([await relapp(wheels, '1.1')]);
    const r2 = await project.run(['deploy', '--yes']);
    console.log(r2.stdout, r2.stderr);
    console.log(await readlink(join(root, 'current')), await readdir(join(root, 'releases')));
    const r3 = await project.run(['deploy', '--yes']);
    console.log(r3.stdout, r3.stderr);
    const r4 = await project.run(['rollback', '--yes']);
    console.log(r4.stdout, r4.stderr);
    console.log(await readlink(join(root, 'current')), await readdir(join(root, 'releases')));
    console.log(await readFile(join(root, '.vdeploy', 'history.jsonl'), 'utf8'));
  });
});
