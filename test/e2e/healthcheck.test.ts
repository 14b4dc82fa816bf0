// Health checks and the automatic rollback after a failed health check, migrate or reload, through
// the built binary against a real sshd fleet: what the summary, the exit code, the venv's history and
// the repository's release_log say afterwards. (The URL check against a real gunicorn is in
// rollback-status.test.ts.)
import { expect } from 'chai';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildWheel } from '../helpers/build-wheel.js';
import { makeTempDir } from '../helpers/cli.js';
import { makeDeployProject, type DeployProject, type ProjectVenv } from '../helpers/deploy-project.js';
import { buildDjangoAppWheel, SHOPAPP_SETTINGS } from '../helpers/django-app.js';
import { startFleet, type Fleet, type FleetHost } from '../helpers/fleet.js';
import { SHARED_WHEELS } from '../helpers/paths.js';
import { LocalConnection } from '../../src/remote/local-connection.js';

const local = new LocalConnection();

interface HistoryLine {
  action: string;
  outcome: string;
  failedStep: string | null;
  reason?: string;
  after: Record<string, string>;
  steps: Array<{ name: string; ok: boolean; stderrTail?: string }>;
}

async function historyOf(venv: string): Promise<HistoryLine[]> {
  return (await readFile(join(venv, '.vdeploy', 'history.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as HistoryLine);
}

async function releaseLogErrors(project: DeployProject): Promise<string[]> {
  return (await readFile(join(project.repo, 'release_log'), 'utf8')).split('\n').filter((l) => l.startsWith('error: '));
}

/** The app: `import hcapp` raises in a release built with `broken`. Each test releases its own versions:
 * the hosts' wheel cache is keyed by file name. */
function hcapp(dir: string, version: string, broken = false): Promise<string> {
  const init = `__version__ = "${version}"\n${broken ? `raise RuntimeError("hcapp ${version} is broken")\n` : ''}`;
  return buildWheel(dir, { name: 'hcapp', version, files: { 'hcapp/__init__.py': init } });
}

describe('health checks and automatic rollback (real sshd fleet)', function () {
  this.timeout(600_000);
  let fleet: Fleet;
  let host: FleetHost;
  let wheels: string;

  before(async () => {
    fleet = await startFleet({ hosts: 1 });
    host = fleet.hosts[0]!;
    wheels = await makeTempDir('vdeploy-hc-wheels-');
  });
  after(async () => fleet?.stop());

  /** A project with one venv (created by the first deploy of hcapp 1.0, which must pass). */
  async function deployedProject(name: string, venv: Omit<ProjectVenv, 'host' | 'path'>): Promise<{ project: DeployProject; path: string }> {
    const path = join(host.root, 'srv', name);
    const project = await makeDeployProject(fleet, { venvs: [{ host, path, ...venv }], requirements: 'hcapp\n', wheels: [await hcapp(wheels, '1.0')] });
    const first = await project.run(['deploy', '--yes']);
    expect(first.exitCode, first.stderr + first.stdout).to.equal(0);
    return { project, path };
  }

  it('a command health check that passes: deployed, its step recorded; one that fails: restored, exit 1', async () => {
    // Run in the venv directory after the reload: the new code must import.
    const { project, path } = await deployedProject('cmd-check', { healthcheck: { command: 'bin/python -c "import hcapp"', retries: 1, interval: 0.2 } });
    const h1 = await historyOf(path);
    expect(h1.map((h) => [h.action, h.outcome])).to.deep.equal([['deploy', 'deployed']]);
    expect(h1[0]!.steps.find((s) => s.name === 'healthcheck')).to.include({ ok: true });

    await project.addWheels([await hcapp(wheels, '1.1', true)]);
    const r = await project.run(['deploy', '--yes']);
    expect(r.exitCode, r.stderr + r.stdout).to.equal(1);
    expect(r.stdout, r.stdout).to.match(/cmd-check\s+restored/);
    expect(r.stdout, r.stdout).to.match(/healthcheck failed .*failed 2 times: exit 1: .*RuntimeError: hcapp 1\.1 is broken/);
    expect(r.stdout, r.stdout).to.match(/rolled back to the previous set \(healthcheck failed\)/);
    const h = await historyOf(path);
    expect(h.map((x) => [x.action, x.outcome, x.failedStep])).to.deep.equal([
      ['deploy', 'deployed', null],
      ['deploy', 'failed', 'healthcheck'],
      ['auto-rollback', 'deployed', null],
    ]);
    expect(h[1]!.after).to.include({ hcapp: '1.1' });
    expect(h[2]).to.deep.include({ reason: 'healthcheck failed' });
    expect(h[2]!.after).to.include({ hcapp: '1.0' });
    // The restore is not health-checked again (the old set passed before) and is not a new release.
    expect(h[2]!.steps.map((s) => s.name)).not.to.include('healthcheck');
    const errors = await releaseLogErrors(project);
    expect(errors).to.have.length(1);
    expect(errors[0], errors.join('\n')).to.match(/^error: host1:.*\/cmd-check: healthcheck: .*healthcheck failed \(exit 1\): failed 2 times/);
  });

  it('a failed reload restores and reloads the previous set; exit 1; history and release_log say so', async () => {
    // The reload records which version it saw, and fails for 1.2 only (as a server refusing the new code would).
    const log = join(host.root, 'reloads.log');
    const reload = `v=$(bin/python -c 'import hcapp; print(hcapp.__version__)'); echo "$v" >> ${JSON.stringify(log)}; [ "$v" != 1.2 ] || { echo "refusing $v" >&2; exit 3; }`;
    const { project, path } = await deployedProject('reload-fail', { reload });
    await project.addWheels([await hcapp(wheels, '1.2')]);
    const r = await project.run(['deploy', '--yes']);
    expect(r.exitCode, r.stderr + r.stdout).to.equal(1);
    expect(r.stdout, r.stdout).to.match(/reload-fail\s+restored/);
    expect(r.stdout, r.stdout).to.match(/reload failed \(exit 3\): refusing 1\.2/);
    expect(r.stdout, r.stdout).to.match(/rolled back to the previous set \(reload failed\)/);
    expect((await readFile(log, 'utf8')).split('\n').filter(Boolean)).to.deep.equal(['1.0', '1.2', '1.0']);
    const h = await historyOf(path);
    expect(h.map((x) => [x.action, x.outcome, x.failedStep, x.reason])).to.deep.equal([
      ['deploy', 'deployed', null, undefined],
      ['deploy', 'failed', 'reload', undefined],
      ['auto-rollback', 'deployed', null, 'reload failed'],
    ]);
    expect(h[2]!.after).to.include({ hcapp: '1.0' });
    const errors = await releaseLogErrors(project);
    expect(errors).to.have.length(1);
    expect(errors[0], errors.join('\n')).to.match(/^error: host1:.*\/reload-fail: reload: .*reload failed \(exit 3\): refusing 1\.2/);
    const status = await project.run(['status', '--json']);
    expect((JSON.parse(status.stdout) as { venvs: Array<{ last: { outcome: string; action: string } }> }).venvs[0]!.last).to.include({ action: 'auto-rollback', outcome: 'deployed' });
  });

  it('a failed migrate restores the previous code, leaving the schema as migrate left it', async () => {
    const files = await readdir(SHARED_WHEELS);
    const shared = ['django-', 'asgiref-', 'sqlparse-', 'gunicorn-'].map((p) => join(SHARED_WHEELS, files.find((f) => f.startsWith(p))!));
    const path = join(host.root, 'srv', 'migrate-fail');
    const db = join(host.root, 'migrate-fail.sqlite3');
    const project = await makeDeployProject(fleet, {
      venvs: [{ host, path, django: { settings: SHOPAPP_SETTINGS, env: { SHOPAPP_DB: db } }, reload: `echo reloaded >> ${JSON.stringify(join(host.root, 'migrate-fail.reloads'))}` }],
      requirements: 'shopapp\n',
      wheels: [...shared, await buildDjangoAppWheel(wheels, { version: '1.0' })],
    });
    const first = await project.run(['deploy', '--yes']);
    expect(first.exitCode, first.stderr + first.stdout).to.equal(0);
    // 1.1's migration 0002 creates shopapp_extra2; a table of that name made by hand makes it fail.
    await local.exec(['/usr/bin/python3', '-c', 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute("create table shopapp_extra2 (x int)"); c.commit()', db]);
    await project.addWheels([await buildDjangoAppWheel(wheels, { version: '1.1', migrations: 2 })]);
    const r = await project.run(['deploy', '--yes']);
    expect(r.exitCode, r.stderr + r.stdout).to.equal(1);
    expect(r.stdout, r.stdout).to.match(/migrate-fail\s+restored/);
    expect(r.stdout, r.stdout).to.match(/migrate failed \(exit 1\): .*shopapp_extra2.*already exists/);
    expect(r.stdout, r.stdout).to.match(/rolled back to the previous set \(migrate failed\)/);
    const h = await historyOf(path);
    expect(h.map((x) => [x.action, x.outcome, x.failedStep, x.reason])).to.deep.equal([
      ['deploy', 'deployed', null, undefined],
      ['deploy', 'failed', 'migrate', undefined],
      ['auto-rollback', 'deployed', null, 'migrate failed'],
    ]);
    expect(h[1]!.after).to.include({ shopapp: '1.1' });
    expect(h[2]!.after).to.include({ shopapp: '1.0' });
    // The failed deploy stopped before its reload; the restore reloaded the old code once.
    expect((await readFile(join(host.root, 'migrate-fail.reloads'), 'utf8')).split('\n').filter(Boolean)).to.have.length(2);
    const errors = await releaseLogErrors(project);
    expect(errors).to.have.length(1);
    expect(errors[0], errors.join('\n')).to.match(/^error: host1:.*\/migrate-fail: migrate: .*migrate failed/);
  });

  it('{version:NAME} naming a package the venv does not get is refused at plan time; nothing changes', async () => {
    const { project, path } = await deployedProject('bad-placeholder', {});
    const deployfile = join(project.dir, 'deployfile.ts');
    const text = await readFile(deployfile, 'utf8');
    const { writeFile } = await import('node:fs/promises');
    await writeFile(deployfile, text.replace('"python":', '"healthcheck": { "url": "http://127.0.0.1:9/", "expectBody": "{version:nosuchapp}" },\n      "python":'));
    await project.addWheels([await hcapp(wheels, '1.3')]);
    const r = await project.run(['deploy', '--yes']);
    expect(r.exitCode, r.stderr + r.stdout).to.equal(1);
    expect(r.stdout, r.stdout).to.match(/healthcheck\.expectBody names \{version:nosuchapp\}, but nosuchapp is not in the set being deployed/);
    expect((await historyOf(path)).map((x) => x.after.hcapp)).to.deep.equal(['1.0']);
  });
});
