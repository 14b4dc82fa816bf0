// History, rollback (with and without unapplying Django migrations), fleet status, and health checks
// with automatic rollback, through the built binary against a real sshd fleet and a real gunicorn.
import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { freePort } from '../helpers/supervised-gunicorn.js';
import { join } from 'node:path';
import { makeTempDir } from '../helpers/cli.js';
import { cacheDirOf, makeDeployProject, type DeployProject } from '../helpers/deploy-project.js';
import { buildDjangoAppWheel, SHOPAPP_SETTINGS } from '../helpers/django-app.js';
import { startFleet, type Fleet } from '../helpers/fleet.js';
import { pipList, sharedWheels, sqliteTables } from '../helpers/venv-inspect.js';
import { LocalConnection } from '../../src/remote/local-connection.js';

const local = new LocalConnection();
const pipEnv = { PIP_CONFIG_FILE: '/dev/null' };

async function httpGet(url: string): Promise<{ status: number; body: string }> {
  const r = await fetch(url);
  return { status: r.status, body: await r.text() };
}

describe('history, rollback and status (real sshd fleet, real Django)', function () {
  this.timeout(600_000);
  let fleet: Fleet;
  let project: DeployProject;
  let wheelDir: string;
  const venv = (i: number) => fleet.hosts[i]!.venvs[0]!;
  const db = (i: number) => join(venv(i), 'db.sqlite3');

  before(async () => {
    fleet = await startFleet({ hosts: 2, venvsPerHost: 1 });
    wheelDir = await makeTempDir('vdeploy-rb-wheels-');
    project = await makeDeployProject(fleet, {
      venvs: fleet.hosts.map((h) => ({ host: h, path: h.venvs[0]!, django: { settings: SHOPAPP_SETTINGS, env: { SHOPAPP_DB: join(h.venvs[0]!, 'db.sqlite3') } } })),
      requirements: 'shopapp\n',
      wheels: [...(await sharedWheels(['django-', 'asgiref-', 'sqlparse-', 'gunicorn-', 'packaging-'])), await buildDjangoAppWheel(wheelDir, { version: '1.0' })],
    });
  });
  after(async () => fleet?.stop());

  it('status: drift before the first deploy, in sync after it', async () => {
    const before = await project.run(['status', '--json']);
    expect(before.exitCode, before.stderr).to.equal(0);
    const s0 = JSON.parse(before.stdout) as { venvs: Array<{ state: string; differing: number }> };
    expect(s0.venvs.map((v) => v.state)).to.deep.equal(['drift', 'drift']);
    const deploy = await project.run(['deploy', '--yes']);
    expect(deploy.exitCode, deploy.stderr + deploy.stdout).to.equal(0);
    const after = await project.run(['status']);
    expect(after.exitCode, after.stderr).to.equal(0);
    expect(after.stdout.match(/in sync/g)).to.have.length(2);
    expect(after.stdout).to.match(/Every venv has the same versions/);
  });

  it('deploy 1.1 (a new migration), drift by hand, status shows it in the matrix', async () => {
    await project.addWheels([await buildDjangoAppWheel(wheelDir, { version: '1.1', migrations: 2 })]);
    const deploy = await project.run(['deploy', '--yes']);
    expect(deploy.exitCode, deploy.stderr + deploy.stdout).to.equal(0);
    for (const i of [0, 1]) expect(await sqliteTables(db(i))).to.include('shopapp_extra2');
    // Drift on host1 only: a package installed by hand.
    const pkg = (await sharedWheels(['packaging-']))[0]!;
    await local.exec([join(venv(0), 'bin', 'python'), '-m', 'pip', 'install', '--isolated', '--no-index', '--no-deps', pkg], { env: pipEnv });
    const r = await project.run(['status', '--json']);
    const s = JSON.parse(r.stdout) as { venvs: Array<{ state: string; differing: number; last: { outcome: string; number: number } }>; matrix: Array<{ key: string; versions: Array<string | null>; differs: boolean }> };
    expect(s.venvs.map((v) => [v.state, v.differing])).to.deep.equal([['drift', 1], ['in-sync', 0]]);
    expect(s.venvs[0]!.last).to.include({ outcome: 'deployed', number: 2 });
    expect(s.matrix.find((m) => m.key === 'packaging')).to.deep.include({ versions: ['26.3', null], differs: true });
    expect(s.matrix.find((m) => m.key === 'shopapp')).to.deep.include({ versions: ['1.1', '1.1'], differs: false });
    const table = await project.run(['status']);
    expect(table.stdout).to.match(/drift \(1\)/);
    expect(table.stdout).to.match(/packaging\s+26\.3\s+-/);
    for (const line of table.stdout.split('\n')) expect(line.length, line).to.be.at.most(80);
  });

  it('rollback without --unapply-migrations: back to exactly the 1.0 set, schema left, with a warning', async () => {
    // Host2's wheel cache emptied first: the rollback must push what it needs again.
    await rm(cacheDirOf(fleet.hosts[1]!), { recursive: true, force: true });
    const r = await project.run(['rollback', 'host2', '--yes']);
    expect(r.exitCode, r.stderr + r.stdout).to.equal(0);
    expect(r.stdout).to.match(/warning: migrations applied since then stay applied \(shopapp: 0002_extra2\)/);
    expect(r.stdout).to.match(/↓\s+shopapp\s+1\.1 → 1\.0/);
    expect(r.stderr).to.match(/host2: pushed 1 wheel/);
    expect(await pipList(venv(1))).to.include({ shopapp: '1.0', django: '5.2.17' });
    expect(await sqliteTables(db(1))).to.include('shopapp_extra2');
    expect(await pipList(venv(0))).to.include({ shopapp: '1.1' });
  });

  it('rollback --unapply-migrations: migrations reversed with the newer code first, then exactly the 1.0 set', async () => {
    const r = await project.run(['rollback', 'host1', '--yes', '--unapply-migrations']);
    expect(r.exitCode, r.stderr + r.stdout).to.equal(0);
    expect(r.stdout).to.match(/unapplies migrations shopapp: 0002_extra2 \(migrate shopapp 0001_initial\)/);
    expect(r.stdout).to.match(/-\s+packaging/);
    const have = await pipList(venv(0));
    expect(have).to.include({ shopapp: '1.0', django: '5.2.17' });
    expect(have).not.to.have.property('packaging');
    expect(await sqliteTables(db(0))).not.to.include('shopapp_extra2');
    expect(await sqliteTables(db(0))).to.include('shopapp_item');
  });

  it('history shows three entries, newest first; --json has the documented shape', async () => {
    const r = await project.run(['history', 'host1']);
    expect(r.exitCode, r.stderr).to.equal(0);
    const lines = r.stdout.split('\n').filter((l) => /^\s+#\d/.test(l));
    expect(lines).to.have.length(3);
    expect(lines[0]).to.match(/#3 .* deployed\s+rollback of #2/);
    expect(lines[2]).to.match(/#1 .* deployed\s+\+asgiref 3\.12\.1, \+Django 5\.2\.17/);
    const json = await project.run(['history', 'host1', '--json']);
    const h = JSON.parse(json.stdout) as Array<{ id: string; ok: boolean; entries: Array<{ number: number; action: string; outcome: string; before: object; after: Record<string, string>; migrationsBefore?: object }> }>;
    expect(h).to.have.length(1);
    expect(h[0]!.entries.map((e) => [e.number, e.action, e.outcome])).to.deep.equal([[3, 'rollback', 'deployed'], [2, 'deploy', 'deployed'], [1, 'deploy', 'deployed']]);
    expect(h[0]!.entries[0]!.after.shopapp).to.equal('1.0');
    expect(h[0]!.entries[1]!.migrationsBefore).to.deep.include({ shopapp: ['0001_initial'] });
  });

  it('status after the rollbacks: drift (a deploy would bring 1.1 again), shown older than the newest release', async () => {
    const r = await project.run(['status', '--json']);
    const s = JSON.parse(r.stdout) as { venvs: Array<{ state: string; differing: number }>; matrix: Array<{ key: string; versions: string[]; newest: string }> };
    expect(s.venvs.map((v) => v.state)).to.deep.equal(['drift', 'drift']);
    expect(s.matrix.find((m) => m.key === 'shopapp')).to.deep.include({ versions: ['1.0', '1.0'], newest: '1.1' });
  });

  it('rollback --to N, and a clear error for an entry that does not exist', async () => {
    const bad = await project.run(['rollback', 'host1', '--yes', '--to', '9']);
    expect(bad.exitCode).to.equal(1);
    expect(bad.stdout).to.match(/no history entry #9 \(it has 3\)/);
    const r = await project.run(['rollback', 'host1', '--yes', '--to', '2']);
    expect(r.exitCode, r.stderr + r.stdout).to.equal(0);
    expect(await pipList(venv(0))).to.include({ shopapp: '1.1' });
  });
});

describe('health checks and automatic rollback (real gunicorn)', function () {
  this.timeout(600_000);
  let fleet: Fleet;
  let gunicornPid: number | undefined;

  before(async () => {
    fleet = await startFleet({ hosts: 1, venvsPerHost: 1 });
  });
  after(async () => {
    if (gunicornPid) {
      try {
        process.kill(gunicornPid, 'SIGTERM');
      } catch {
        /* already gone */
      }
    }
    await fleet?.stop();
  });

  it('reloaded with a plain kill -HUP, the check waits for the new version: a good one passes, one answering 500 is rolled back and gunicorn serves the old one again', async () => {
    const host = fleet.hosts[0]!;
    const venv = host.venvs[0]!;
    const pidFile = join(host.root, 'gunicorn.pid');
    const port = await freePort(host.address);
    const url = `http://${host.address}:${port}/health/`;
    const wheelDir = await makeTempDir('vdeploy-hc-wheels-');
    const env = { SHOPAPP_DB: join(venv, 'db.sqlite3') };
    const project = await makeDeployProject(fleet, {
      venvs: [
        {
          host,
          path: venv,
          django: { settings: SHOPAPP_SETTINGS, env },
          // A plain HUP, as people write it: gunicorn starts a new worker and stops the old one, which
          // may still answer for a moment. The health check must tell them apart (expectBody, below).
          reload: `if [ -f ${JSON.stringify(pidFile)} ]; then kill -HUP "$(cat ${JSON.stringify(pidFile)})"; fi`,
        },
      ],
      requirements: 'shopapp\n',
      wheels: [...(await sharedWheels(['django-', 'asgiref-', 'sqlparse-', 'gunicorn-'])), await buildDjangoAppWheel(wheelDir, { version: '1.0' })],
    });
    const first = await project.run(['deploy', '--yes']);
    expect(first.exitCode, first.stderr + first.stdout).to.equal(0);
    // The app server the deploys reload: a real gunicorn on the host's loopback address.
    await local.exec([join(venv, 'bin', 'gunicorn'), '--daemon', '--pid', pidFile, '--bind', `${host.address}:${port}`, '--workers', '1', '--chdir', host.root, 'shopapp.wsgi'], {
      env: { ...env, DJANGO_SETTINGS_MODULE: SHOPAPP_SETTINGS },
    });
    for (let i = 0; i < 100 && !existsSync(pidFile); i++) await new Promise((r) => setTimeout(r, 100));
    gunicornPid = Number((await readFile(pidFile, 'utf8')).trim());
    let ok = false;
    for (let i = 0; i < 50 && !ok; i++) {
      ok = await httpGet(url).then((r) => r.body === 'shopapp 1.0', () => false);
      if (!ok) await new Promise((r) => setTimeout(r, 200));
    }
    expect(ok, 'gunicorn serves 1.0').to.equal(true);

    // Now the deployfile gains a health check that the new code must pass: /health/ answers 200 with
    // the version just deployed. Right after the HUP the old worker still answers "shopapp 1.0": that
    // must not count (before expectBody, a check 14 ms after the reload passed on the old worker).
    const deployfile = join(project.dir, 'deployfile.ts');
    const text = await readFile(deployfile, 'utf8');
    const { writeFile } = await import('node:fs/promises');
    const healthcheck = { url, expectBody: 'shopapp {version:shopapp}', retries: 60, interval: 0.5, timeout: 5 };
    await writeFile(deployfile, text.replace('"reload":', `"healthcheck": ${JSON.stringify(healthcheck)},\n      "reload":`));
    await project.addWheels([await buildDjangoAppWheel(wheelDir, { version: '1.1' })]);
    const good = await project.run(['deploy', '--yes']);
    expect(good.exitCode, good.stderr + good.stdout).to.equal(0);
    // The check passed, so the new code answers now: no waiting here.
    expect(await httpGet(url)).to.deep.equal({ status: 200, body: 'shopapp 1.1' });

    // 1.2 answers 500 on /health/ (with its version in the body).
    await project.addWheels([await buildDjangoAppWheel(wheelDir, { version: '1.2', healthStatus: 500 })]);
    const bad = await project.run(['deploy', '--yes']);
    expect(bad.exitCode, bad.stderr + bad.stdout).to.equal(1);
    expect(bad.stdout).to.match(/restored/);
    expect(bad.stdout).to.match(/healthcheck failed .*answered 500 \(expected 200\)/);
    expect(bad.stdout).to.match(/rolled back to the previous set \(healthcheck failed\)/);
    expect(await pipList(venv)).to.include({ shopapp: '1.1' });
    let body = '';
    for (let i = 0; i < 50 && body !== 'shopapp 1.1'; i++) {
      body = await httpGet(url).then((r) => r.body, () => '');
      if (body !== 'shopapp 1.1') await new Promise((r) => setTimeout(r, 200));
    }
    expect(body).to.equal('shopapp 1.1');
    const history = (await readFile(join(venv, '.vdeploy', 'history.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { action: string; outcome: string; failedStep: string | null; reason?: string });
    expect(history.map((h) => [h.action, h.outcome, h.failedStep])).to.deep.equal([
      ['deploy', 'deployed', null],
      ['deploy', 'deployed', null],
      ['deploy', 'failed', 'healthcheck'],
      ['auto-rollback', 'deployed', null],
    ]);
    expect(history[3]!.reason).to.equal('healthcheck failed');

    // --no-rollback leaves the failed version in place.
    const left = await project.run(['deploy', '--yes', '--no-rollback']);
    expect(left.exitCode).to.equal(1);
    expect(await pipList(venv)).to.include({ shopapp: '1.2' });
  });
});
