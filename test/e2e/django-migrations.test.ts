// Django migrations around deploy and rollback (issue 14), through the built binary against a real
// sshd fleet and a real Django: a rollback of a venv's first deploy (with and without unapplying the
// migrations), which migrations ran (summary and --json), --migrate always on an up-to-date venv, and
// what the plan says when a deploy would bring back a version that was rolled back (and how to hold it).
import { expect } from 'chai';
import { join } from 'node:path';
import { makeTempDir, runVdeployInPty } from '../helpers/cli.js';
import { makeDeployProject, type DeployProject } from '../helpers/deploy-project.js';
import { buildDjangoAppWheel, SHOPAPP_SETTINGS } from '../helpers/django-app.js';
import { startFleet, type Fleet } from '../helpers/fleet.js';
import { pipList, sharedWheels, sqliteTables } from '../helpers/venv-inspect.js';
import { LocalConnection } from '../../src/remote/local-connection.js';

const local = new LocalConnection();

interface JsonReport {
  report: { venvs: Array<{ id: string; outcome: string; migrations?: { applied: string[]; unapplied: string[] }; steps: Array<{ name: string; pending?: string[] }> }> };
}

describe('Django migrations: rollback order, what ran, --migrate always, holding a version (real sshd, real Django)', function () {
  this.timeout(600_000);
  let fleet: Fleet;
  let project: DeployProject;
  let wheelDir: string;
  const venv = (i: number) => fleet.hosts[0]!.venvs[i]!;
  const db = (i: number) => join(venv(i), 'db.sqlite3');
  const sel = (i: number) => `host1:${venv(i)}`;

  before(async () => {
    fleet = await startFleet({ hosts: 1, venvsPerHost: 2 });
    wheelDir = await makeTempDir('vdeploy-dj-wheels-');
    project = await makeDeployProject(fleet, {
      venvs: fleet.hosts[0]!.venvs.map((path) => ({ host: fleet.hosts[0]!, path, django: { settings: SHOPAPP_SETTINGS, env: { SHOPAPP_DB: join(path, 'db.sqlite3') } } })),
      requirements: 'shopapp\n',
      wheels: [...(await sharedWheels(['django-', 'asgiref-', 'sqlparse-', 'gunicorn-'])), await buildDjangoAppWheel(wheelDir, { version: '1.0' })],
    });
  });
  after(async () => fleet?.stop());

  it('rollback of a first deploy removes the packages without running migrate with the removed code; outcome "rolled back"', async () => {
    const deploy = await project.run(['deploy', sel(0), '--yes']);
    expect(deploy.exitCode, deploy.stderr + deploy.stdout).to.equal(0);
    expect(await sqliteTables(db(0))).to.include('shopapp_item');

    const r = await project.run(['rollback', sel(0), '--yes']);
    expect(r.exitCode, r.stderr + r.stdout).to.equal(0);
    const have = await pipList(venv(0));
    expect(have).not.to.have.property('django');
    expect(have).not.to.have.property('shopapp');
    expect(r.stdout).to.match(/no Django migrate: Django is not in the planned set/);
    expect(r.stdout).to.match(/\brolled back\b/);
    expect(r.stdout).not.to.match(/\bdeployed\b/);
    expect(r.stderr).to.match(/: rolled back \(/);
    // The deploy's plan said migrate follows; its summary named the migrations migrate applied.
    expect(deploy.stdout).to.match(/then Django migrate \(the migrations it applies are listed when done\)/);
    expect(deploy.stdout).to.match(/applied \d+ migrations: .*contenttypes\.0001_initial.*shopapp\.0001_initial/);
    // Without --unapply-migrations the schema stays (the plan warned).
    expect(await sqliteTables(db(0))).to.include('shopapp_item');
  });

  it('rollback --unapply-migrations of a first deploy unapplies with the code still there, then removes it; --json lists both', async () => {
    const deploy = await project.run(['deploy', sel(1), '--yes', '--json']);
    expect(deploy.exitCode, deploy.stderr + deploy.stdout).to.equal(0);
    const r = await project.run(['rollback', sel(1), '--yes', '--unapply-migrations', '--json']);
    expect(r.exitCode, r.stderr + r.stdout).to.equal(0);
    const have = await pipList(venv(1));
    expect(have).not.to.have.property('django');
    expect(have).not.to.have.property('shopapp');
    const left = await sqliteTables(db(1));
    expect(left).not.to.include('shopapp_item');
    expect(left).not.to.include('auth_user');
    const v = (JSON.parse(r.stdout) as JsonReport).report.venvs[0]!;
    expect(v.outcome).to.equal('rolled back');
    expect(v.migrations!.unapplied).to.include.members(['shopapp.0001_initial', 'auth.0001_initial', 'contenttypes.0001_initial']);
    expect(v.migrations!.applied).to.deep.equal([]);
    expect(v.steps.map((s) => s.name)).not.to.include('migrate');

    const d = (JSON.parse(deploy.stdout) as JsonReport).report.venvs[0]!;
    expect(d.outcome).to.equal('deployed');
    expect(d.migrations!.applied).to.include.members(['contenttypes.0001_initial', 'auth.0001_initial', 'shopapp.0001_initial']);
    expect(d.migrations!.unapplied).to.deep.equal([]);
    // What migrate was about to apply, read with the new code before it applied anything.
    expect(d.steps.find((s) => s.name === 'showmigrations')!.pending).to.deep.equal(d.migrations!.applied);
  });

  it('--migrate always migrates an up-to-date venv; auto leaves it', async () => {
    const deploy = await project.run(['deploy', sel(0), '--yes']);
    expect(deploy.exitCode, deploy.stderr + deploy.stdout).to.equal(0);
    // Unapply shopapp's migration by hand: the packages are up to date, the schema is not.
    const env = { SHOPAPP_DB: db(0), DJANGO_SETTINGS_MODULE: SHOPAPP_SETTINGS };
    const by = await local.exec([join(venv(0), 'bin', 'django-admin'), 'migrate', 'shopapp', 'zero', '--noinput'], { env });
    expect(by.exitCode, by.stderr).to.equal(0);
    expect(await sqliteTables(db(0))).not.to.include('shopapp_item');

    const auto = await project.run(['deploy', sel(0), '--yes']);
    expect(auto.exitCode, auto.stderr + auto.stdout).to.equal(0);
    expect(auto.stdout).to.match(/Nothing to deploy/);
    expect(await sqliteTables(db(0))).not.to.include('shopapp_item');

    const always = await project.run(['deploy', sel(0), '--yes', '--migrate', 'always']);
    expect(always.exitCode, always.stderr + always.stdout).to.equal(0);
    expect(await sqliteTables(db(0))).to.include('shopapp_item');
    expect(always.stdout).to.match(/up to date \(\d+ packages\); Django migrate \(--migrate always\)/);
    expect(always.stdout).to.match(/\bmigrated\b/);
    expect(always.stdout).to.match(/applied 1 migration: shopapp\.0001_initial/);
    expect(await pipList(venv(0))).to.include({ shopapp: '1.0' });
  });

  it('after a rollback the plan says a deploy reinstalls the rolled-back version; pinning holds it', async () => {
    await project.addWheels([await buildDjangoAppWheel(wheelDir, { version: '1.1', migrations: 2 })]);
    const up = await project.run(['deploy', sel(0), '--yes']);
    expect(up.exitCode, up.stderr + up.stdout).to.equal(0);
    // At a terminal, as a person would: confirm at the prompt, the live view shows the venv rolled back.
    const back = await runVdeployInPty(['rollback', sel(0), '--unapply-migrations', '--deployfile', join(project.dir, 'deployfile.ts')], { prompt: 'Roll back', answers: ['y\r'] });
    expect(back.exitCode, back.output).to.equal(0);
    expect(await pipList(venv(0))).to.include({ shopapp: '1.0' });
    expect(up.stdout).to.match(/applied 1 migration: shopapp\.0002_extra2/);
    const shown = back.output.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
    expect(shown).to.match(/unapplied 1 migration: shopapp\.0002_extra2/);
    expect(shown).to.match(/venv1 +rolled back +\d/);
    // The live view settles the venv's row as done, not failed (listr2 marks a failed row ✖).
    expect(shown).not.to.match(/✖/);

    const plan = await project.run(['plan', sel(0)]);
    expect(plan.exitCode, plan.stderr + plan.stdout).to.equal(0);
    expect(plan.stdout).to.match(/reinstalls shopapp 1\.1, which rollback #\d+ took off \(a deploy takes the newest release\); to hold back, pin shopapp==1\.0 in the requirements file/);

    await project.setRequirements('shopapp==1.0\n');
    try {
      const held = await project.run(['deploy', sel(0), '--yes']);
      expect(held.exitCode, held.stderr + held.stdout).to.equal(0);
      expect(held.stdout).to.match(/Nothing to deploy/);
      expect(held.stdout).not.to.match(/reinstalls/);
      expect(await pipList(venv(0))).to.include({ shopapp: '1.0' });
    } finally {
      await project.setRequirements('shopapp\n');
    }
  });
});
