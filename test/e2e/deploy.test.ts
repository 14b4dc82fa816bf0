// `vdeploy plan` / `vdeploy deploy` through the built binary against a real sshd fleet: 3 hosts × 2
// venvs (one existing empty venv, one created by the deploy at a path with a space), real Django,
// gunicorn and a test Django app, real pip.
import { expect } from 'chai';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildWheel } from '../helpers/build-wheel.js';
import { makeTempDir, runVdeployInPty } from '../helpers/cli.js';
import { cacheDirOf, makeDeployProject, type DeployProject } from '../helpers/deploy-project.js';
import { buildDjangoAppWheel, SHOPAPP_SETTINGS } from '../helpers/django-app.js';
import { startFleet, type Fleet, type FleetHost } from '../helpers/fleet.js';
import { SHARED_WHEELS } from '../helpers/paths.js';
import { pipList, sqliteTables } from '../helpers/venv-inspect.js';
import { LocalConnection } from '../../src/remote/local-connection.js';

const local = new LocalConnection();
// packaging is released but only wanted by gunicorn's extras: it must not be installed.
const SHARED = ['django-5.2.17', 'asgiref-3.12.1', 'sqlparse-0.6.0', 'gunicorn-26.2.0', 'packaging-26.3'];

async function sharedWheels(prefixes: string[]): Promise<string[]> {
  const files = await readdir(SHARED_WHEELS);
  return prefixes.map((p) => join(SHARED_WHEELS, files.find((f) => f.startsWith(`${p}-`))!));
}

/** Every file under a directory with its size and mtime: to prove nothing changed. */
async function snapshot(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (!e.name.endsWith('.log') && !e.name.endsWith('.pid')) {
        const s = await stat(p).catch(() => undefined);
        if (s) out.push(`${p} ${s.size} ${s.mtimeMs}`);
      }
    }
  };
  await walk(dir);
  return out.sort();
}

describe('vdeploy deploy over real SSH (3 hosts × 2 venvs)', function () {
  this.timeout(600_000);
  let fleet: Fleet;
  let project: DeployProject;
  let wheelDir: string;
  const venvsOf = (h: FleetHost) => [h.venvs[0]!, join(h.root, 'srv', 'app venv')];
  const allVenvs = () => fleet.hosts.flatMap(venvsOf);
  const expected10 = { shopapp: '1.0', django: '5.2.17', asgiref: '3.12.1', sqlparse: '0.6.0', gunicorn: '26.2.0' };

  before(async () => {
    fleet = await startFleet({ hosts: 3, venvsPerHost: 1 });
    wheelDir = await makeTempDir('vdeploy-wheels-');
    const app10 = await buildDjangoAppWheel(wheelDir, { version: '1.0' });
    project = await makeDeployProject(fleet, {
      venvs: fleet.hosts.flatMap((h) =>
        venvsOf(h).map((path) => ({
          host: h,
          path,
          django: { settings: SHOPAPP_SETTINGS, cwd: h.root, env: { SHOPAPP_DB: join(path, 'db.sqlite3') } },
          reload: `echo "$PWD" >> ${JSON.stringify(join(h.root, 'venv-reloads.log'))}`,
        })),
      ),
      hostReload: Object.fromEntries(fleet.hosts.map((h) => [h.name, `echo reload >> ${JSON.stringify(join(h.root, 'host-reloads.log'))}`])),
      requirements: 'shopapp\n',
      wheels: [...(await sharedWheels(SHARED)), app10],
    });
  });
  after(async () => fleet?.stop());

  it('plan changes nothing on any host and shows create/install', async () => {
    const before = await Promise.all(fleet.hosts.map((h) => snapshot(h.root)));
    const r = await project.run(['plan']);
    expect(r.exitCode, r.stderr + r.stdout).to.equal(0);
    expect(r.stdout).to.include('create with /usr/bin/python3');
    expect(r.stdout).to.match(/\+\s+shopapp\s+1\.0/);
    const json = await project.run(['plan', '--json']);
    const plan = JSON.parse(json.stdout) as { plan: { venvs: Array<{ status: string; create: string | null }> } };
    expect(plan.plan.venvs).to.have.length(6);
    expect(plan.plan.venvs.filter((v) => v.create !== null)).to.have.length(3);
    const after = await Promise.all(fleet.hosts.map((h) => snapshot(h.root)));
    expect(after).to.deep.equal(before);
  });

  it('refuses to deploy without a terminal and without --yes, changing nothing', async () => {
    const before = await Promise.all(fleet.hosts.map((h) => snapshot(h.root)));
    const r = await project.run(['deploy']);
    expect(r.exitCode).to.equal(2);
    expect(r.stderr).to.match(/standard input is not a terminal/);
    expect(r.stderr).to.match(/--yes/);
    expect(await Promise.all(fleet.hosts.map((h) => snapshot(h.root)))).to.deep.equal(before);
  });

  it('a fresh deploy installs exactly the plan everywhere, from the pushed wheels, migrates, reloads once per host', async () => {
    const r = await project.run(['deploy', '--yes']);
    expect(r.exitCode, r.stderr + r.stdout).to.equal(0);
    for (const venv of allVenvs()) {
      const have = await pipList(venv);
      for (const [name, version] of Object.entries(expected10)) expect(have[name], `${venv} ${name}`).to.equal(version);
      expect(have).not.to.have.property('packaging');
      expect(await sqliteTables(join(venv, 'db.sqlite3'))).to.include.members(['shopapp_item', 'auth_user', 'django_migrations']);
      // pip's own report: every wheel came from this host's vdeploy cache, none from the machine's mirror.
      const report = JSON.parse(await readFile(join(venv, '.vdeploy', 'pip-report.json'), 'utf8')) as { install: Array<{ download_info: { url: string } }> };
      const host = fleet.hosts.find((h) => venv.startsWith(h.root))!;
      expect(report.install.length).to.equal(Object.keys(expected10).length);
      for (const i of report.install) expect(i.download_info.url).to.match(new RegExp(`^file://${cacheDirOf(host)}/`));
      const history = (await readFile(join(venv, '.vdeploy', 'history.jsonl'), 'utf8')).trim().split('\n');
      expect(history).to.have.length(1);
      const h = JSON.parse(history[0]!) as { outcome: string; localUser: string; packages: Array<{ sha256: string }>; before: object; after: Record<string, string> };
      expect(h.outcome).to.equal('deployed');
      expect(h.after.shopapp).to.equal('1.0');
      expect(h.packages.every((p) => /^[0-9a-f]{64}$/.test(p.sha256))).to.equal(true);
      const out = await local.exec([join(venv, 'bin', 'shopapp-version')]);
      expect(out.stdout.trim()).to.equal('shopapp 1.0');
    }
    for (const h of fleet.hosts) {
      expect((await readFile(join(h.root, 'host-reloads.log'), 'utf8')).trim().split('\n')).to.deep.equal(['reload']);
      expect((await readFile(join(h.root, 'venv-reloads.log'), 'utf8')).trim().split('\n').sort()).to.deep.equal(venvsOf(h).sort());
      // Each wheel pushed once per host, not once per venv.
      expect((await readdir(cacheDirOf(h))).sort()).to.have.length(5);
      expect(r.stderr.match(new RegExp(`${h.name}: pushed 5 wheels`, 'g'))).to.have.length(1);
    }
    const log = await readFile(join(project.repo, 'release_log'), 'utf8');
    expect(log.split('\n').filter((l) => l.startsWith('install: '))).to.have.length(30);
    expect(log).to.match(/^install: host1:\/.*\/srv\/venv1: shopapp-1\.0-py3-none-any\.whl at \S+$/m);
  });

  it('a second deploy is a no-op: no uploads, no pip, no migrate, exit 0', async () => {
    const before = await Promise.all(fleet.hosts.map((h) => snapshot(h.root)));
    const r = await project.run(['deploy', '--yes']);
    expect(r.exitCode, r.stderr + r.stdout).to.equal(0);
    expect(r.stdout).to.include('Nothing to deploy.');
    expect(r.stderr).not.to.match(/push|install|migrate/);
    expect(await Promise.all(fleet.hosts.map((h) => snapshot(h.root)))).to.deep.equal(before);
  });

  it('an upgrade moves only the changed wheel; a downgrade to an older release works', async () => {
    await project.addWheels([await buildDjangoAppWheel(wheelDir, { version: '1.1' })]);
    const up = await project.run(['deploy', '--yes']);
    expect(up.exitCode, up.stderr + up.stdout).to.equal(0);
    for (const h of fleet.hosts) expect(up.stderr).to.include(`${h.name}: pushed 1 wheel,`);
    expect(up.stdout).to.match(/↑\s+shopapp\s+1\.0 → 1\.1/);
    for (const venv of allVenvs()) expect((await pipList(venv)).shopapp).to.equal('1.1');

    await project.setRequirements('shopapp==1.0\n');
    const down = await project.run(['deploy', '--yes']);
    expect(down.exitCode, down.stderr + down.stdout).to.equal(0);
    expect(down.stderr).not.to.match(/pushed/);
    expect(down.stdout).to.match(/↓\s+shopapp\s+1\.1 → 1\.0/);
    for (const venv of allVenvs()) expect(await pipList(venv)).to.include({ shopapp: '1.0', django: '5.2.17' });
    for (const h of fleet.hosts) expect((await readFile(join(h.root, 'host-reloads.log'), 'utf8')).trim().split('\n')).to.have.length(3);
  });

  it('asks per venv on a terminal: y, n, then q — only the accepted venv changes', async () => {
    await project.setRequirements('shopapp==1.1\n');
    const result = await runVdeployInPty(['deploy', '--deployfile', join(project.dir, 'deployfile.ts')], { prompt: 'Deploy to', answers: ['y', 'n', 'q'] });
    expect(result.exitCode, result.output).to.equal(0);
    expect(result.output.match(/Deploy to/g)?.length).to.be.greaterThanOrEqual(3);
    const versions = await Promise.all(allVenvs().map(async (v) => (await pipList(v)).shopapp));
    expect(versions).to.deep.equal(['1.1', '1.0', '1.0', '1.0', '1.0', '1.0']);
  }).timeout(300_000);

  it('Ctrl-C at the prompt applies nothing and exits 130', async () => {
    const before = await Promise.all(fleet.hosts.map((h) => snapshot(h.root)));
    const result = await runVdeployInPty(['deploy', '--deployfile', join(project.dir, 'deployfile.ts')], { prompt: 'Deploy to', answers: ['y', '\x03'] });
    expect(result.exitCode, result.output).to.equal(130);
    expect(await Promise.all(fleet.hosts.map((h) => snapshot(h.root)))).to.deep.equal(before);
  });

  it('a venv with no compatible released wheel is reported and skipped while the rest deploy (exit 1)', async () => {
    const odd = await buildWheel(wheelDir, { name: 'winonly', version: '1.0', tag: 'cp311-cp311-win_amd64' });
    await project.addWheels([odd]);
    const special = join(project.dir, 'requirements-win.txt');
    await writeFile(special, 'shopapp==1.1\nwinonly\n');
    // host3's second venv asks for a wheel that exists only for Windows.
    const deployfile = join(project.dir, 'deployfile.ts');
    const text = await readFile(deployfile, 'utf8');
    const h3 = fleet.hosts[2]!;
    const target = JSON.stringify(venvsOf(h3)[1]);
    await writeFile(deployfile, text.replace(`"path": ${target},`, `"path": ${target},\n      "requirements": ${JSON.stringify(special)},`));
    const r = await project.run(['deploy', '--yes']);
    expect(r.exitCode, r.stderr + r.stdout).to.equal(1);
    expect(r.stdout).to.match(/winonly/);
    expect(r.stdout).to.match(/win_amd64|no released wheel/);
    const versions = await Promise.all(allVenvs().map(async (v) => (await pipList(v)).shopapp));
    expect(versions).to.deep.equal(['1.1', '1.1', '1.1', '1.1', '1.1', '1.0']);
    await writeFile(deployfile, text);
  });
});
