// A real gunicorn, run under supervisord from <root>/current/bin/gunicorn, through vdeploy deploys and
// rollbacks of a releases venv (issue 15): after each, HTTP answers with the release `current` was
// switched to, because the reload restarts gunicorn (docs/deployfile.md, "Reloading gunicorn after a
// release switch"); a health check that fails after the switch switches back and the old version
// serves again.
import { expect } from 'chai';
import { readdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildWheel } from '../helpers/build-wheel.js';
import { makeTempDir } from '../helpers/cli.js';
import { makeDeployProject, type DeployProject } from '../helpers/deploy-project.js';
import { startFleet, type Fleet, type FleetHost } from '../helpers/fleet.js';
import { SHARED_WHEELS } from '../helpers/paths.js';
import { startSupervisedGunicorn, type SupervisedGunicorn } from '../helpers/supervised-gunicorn.js';

// `/` names the version the worker imported; `broken` releases answer without it (a health check with
// expectBody then fails after the switch).
const appSource = (version: string, broken: boolean) => `VERSION = ${JSON.stringify(version)}
def application(environ, start_response):
    body = 'wrong page' if ${broken ? 'True' : 'False'} else 'verapp ' + VERSION
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body.encode()]
`;

interface HistoryLine {
  action: string;
  outcome: string;
  failedStep?: string | null;
  release?: string;
  previousRelease?: string | null;
  switchedBack?: boolean;
  removedReleases?: Array<{ id: string; why: string }>;
  steps: Array<{ name: string; ok: boolean }>;
}

async function historyOf(root: string): Promise<HistoryLine[]> {
  return (await readFile(join(root, '.vdeploy', 'history.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as HistoryLine);
}

/** The deployfile's JSON (makeDeployProject writes `export default {…};`), changed by `edit`. */
async function editDeployfile(project: DeployProject, edit: (config: { venvs: Array<Record<string, unknown>> }) => void): Promise<void> {
  const file = join(project.dir, 'deployfile.ts');
  const text = await readFile(file, 'utf8');
  const config = JSON.parse(text.replace(/^export default /, '').replace(/;\s*$/, '')) as { venvs: Array<Record<string, unknown>> };
  edit(config);
  await writeFile(file, `export default ${JSON.stringify(config, null, 2)};\n`);
}

describe('releases with a real gunicorn under supervisord (real sshd fleet)', function () {
  this.timeout(600_000);
  let fleet: Fleet;
  let host: FleetHost;
  let app: SupervisedGunicorn | undefined;

  before(async () => {
    fleet = await startFleet({ hosts: 1 });
    host = fleet.hosts[0]!;
  });
  after(async () => {
    await app?.stop();
    await fleet?.stop();
  });

  it('each deploy and each rollback is served over HTTP once the reload returns; a failed health check switches back and the old version serves', async () => {
    const wheels = await makeTempDir('vdeploy-relgun-wheels-');
    const verapp = (version: string, broken = false) => buildWheel(wheels, { name: 'verapp', version, files: { 'verapp/__init__.py': appSource(version, broken) } });
    const gunicorn = join(SHARED_WHEELS, (await readdir(SHARED_WHEELS)).find((f) => f.startsWith('gunicorn-'))!);
    const root = join(host.root, 'srv', 'shop');
    const project = await makeDeployProject(fleet, {
      venvs: [{ host, path: root, releases: { keep: 3 } }],
      requirements: 'verapp\ngunicorn\n',
      wheels: [gunicorn, await verapp('1.0')],
    });
    const first = await project.run(['deploy', '--yes']);
    expect(first.exitCode, first.stderr + first.stdout).to.equal(0);

    // The service, set up after the first release exists (as a user would), then the reload and check.
    app = await startSupervisedGunicorn({ dir: await makeTempDir('vdeploy-relgun-sv-'), root, address: host.address, module: 'verapp:application' });
    await app.waitForBody('verapp 1.0');
    const url = app.url;
    const reload = app.reloadCommand;
    await editDeployfile(project, (c) => {
      c.venvs[0]!.reload = reload;
      c.venvs[0]!.healthcheck = { url: `${url}/`, expectBody: 'verapp {version:verapp}', retries: 20, interval: 0.5 };
    });

    const served = async () => (await app!.get('/')) ?? 'no answer';
    for (const version of ['1.1', '1.2']) {
      await project.addWheels([await verapp(version)]);
      const pid = await app.masterPid();
      const r = await project.run(['deploy', '--yes']);
      expect(r.exitCode, r.stderr + r.stdout).to.equal(0);
      expect(await served(), `after the deploy of ${version}`).to.equal(`verapp ${version}`);
      expect(await app.masterPid(), 'the reload restarted gunicorn').to.not.equal(pid);
    }
    for (const version of ['1.1', '1.0']) {
      const r = await project.run(['rollback', '--yes']);
      expect(r.exitCode, r.stderr + r.stdout).to.equal(0);
      expect(await served(), `after the rollback to ${version}`).to.equal(`verapp ${version}`);
      const last = (await historyOf(root)).at(-1)!;
      expect(last.action).to.equal('rollback');
      expect(last.steps.map((s) => s.name), 'a rollback by switch runs no pip').to.deep.equal(['switch', 'reload', 'healthcheck']);
    }

    const live = await readlink(join(root, 'current'));
    await project.addWheels([await verapp('1.3', true)]);
    const bad = await project.run(['deploy', '--yes']);
    expect(bad.exitCode, bad.stderr + bad.stdout).to.equal(1);
    expect(bad.stdout, bad.stdout).to.match(/shop\s+restored/);
    const liveId = live.replace('releases/', '');
    expect(bad.stdout).to.include(`↩ switched current back to ${liveId} (healthcheck failed)`);
    expect(bad.stdout).to.match(/removed 1 release: \S+ \(failed, /);
    expect(bad.stdout).not.to.include('rolled back to the previous set');
    expect(await readlink(join(root, 'current')), 'switched back').to.equal(live);
    expect(await served(), 'the old version serves again').to.equal('verapp 1.0');
    const last = (await historyOf(root)).at(-1)!;
    expect(last).to.deep.include({ outcome: 'failed', failedStep: 'healthcheck', previousRelease: liveId, switchedBack: true });
    const steps = last.steps.map((s) => `${s.name}:${s.ok}`);
    expect(steps.slice(steps.indexOf('switch:true'))).to.deep.equal(['switch:true', 'reload:true', 'healthcheck:false', 'switch-back:true', 'reload:true']);
    expect(last.removedReleases?.map((g) => [g.id, g.why])).to.deep.equal([[last.release, 'failed']]);
    expect(await readdir(join(root, 'releases')), 'the failed release is removed').to.not.include(last.release);
  });
});
