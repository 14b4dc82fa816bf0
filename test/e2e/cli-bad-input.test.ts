// Bad input to plan/deploy/rollback through the built binary: one line naming the problem, a hint,
// exit 2, and no connection attempted (the hosts here do not exist).
import { expect } from 'chai';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTempDir, runVdeploy, expectOneLineError } from '../helpers/cli.js';

async function project(requirements: string | undefined, venvs: unknown[] = [{ host: 'web1', path: '/srv/app/venv' }]): Promise<string> {
  const dir = await makeTempDir();
  const config = { hosts: [{ name: 'web1', address: '192.0.2.1' }], venvs };
  await writeFile(join(dir, 'deployfile.ts'), `export default ${JSON.stringify(config)};\n`);
  if (requirements !== undefined) await writeFile(join(dir, 'requirements.txt'), requirements);
  return dir;
}

describe('plan/deploy refuse bad input before touching any host', () => {
  it('a missing requirements file is named', async () => {
    const dir = await project(undefined);
    expectOneLineError(await runVdeploy(['plan'], { cwd: dir }), /requirements\.txt/);
  });

  it('an unsupported requirement names file:line', async () => {
    const dir = await project('django>=5\n-e git+https://example.com/x.git#egg=x\n');
    expectOneLineError(await runVdeploy(['deploy', '--yes'], { cwd: dir }), /requirements\.txt:2/);
  });

  it('a URL requirement names file:line', async () => {
    const dir = await project('app @ https://example.com/app-1.0-py3-none-any.whl\n');
    expectOneLineError(await runVdeploy(['plan'], { cwd: dir }), /requirements\.txt:1/);
  });

  it('a malformed selector and an unknown one', async () => {
    const dir = await project('django\n');
    expectOneLineError(await runVdeploy(['deploy', '--yes', '@web1'], { cwd: dir }), /selector/);
    expectOneLineError(await runVdeploy(['rollback', '--yes', 'web9'], { cwd: dir }), /web9.*matches no venv/);
  });

  it('a venv path that is relative, or has a newline, is refused by field path', async () => {
    const rel = await project('django\n', [{ host: 'web1', path: '-rf' }]);
    expectOneLineError(await runVdeploy(['plan'], { cwd: rel }), /venvs\[0\]\.path/);
    const nl = await project('django\n', [{ host: 'web1', path: '/srv/a\nb' }]);
    expectOneLineError(await runVdeploy(['plan'], { cwd: nl }), /venvs\[0\]\.path/);
  });

  it('an unknown host reference and duplicate venvs are refused by field path', async () => {
    const unknown = await project('django\n', [{ host: 'web2', path: '/srv/a' }]);
    expectOneLineError(await runVdeploy(['plan'], { cwd: unknown }), /venvs\[0\]\.host.*web2/);
    const dup = await project('django\n', [{ host: 'web1', path: '/srv/a' }, { host: 'web1', path: '/srv/a/' }]);
    expectOneLineError(await runVdeploy(['plan'], { cwd: dup }), /venvs\[1\].*duplicate/);
  });

  it('shipping: --builder or ship.builder naming no host of the deployfile; --no-ship and --builder are flags of plan and deploy', async () => {
    const dir = await project('django\n', [{ host: 'web1', path: '/srv/app', releases: true }]);
    expectOneLineError(await runVdeploy(['plan', '--builder', 'web2'], { cwd: dir }), /^error: builder "web2" is not a host of the deployfile$/);
    expectOneLineError(await runVdeploy(['deploy', '--yes', '--builder', 'wbe1'], { cwd: dir }), /builder "wbe1"/);
    const bad = await makeTempDir();
    await writeFile(join(bad, 'deployfile.ts'), `export default ${JSON.stringify({ hosts: [{ name: 'web1' }], ship: { builder: 'web9' } })};\n`);
    expectOneLineError(await runVdeploy(['plan'], { cwd: bad }), /ship\.builder: unknown host "web9"/);
    // Accepted: the run goes on to the next problem (no requirements file), named as ever.
    const noReqs = await project(undefined, [{ host: 'web1', path: '/srv/app', releases: true }]);
    expectOneLineError(await runVdeploy(['plan', '--no-ship', '--builder', 'web1'], { cwd: noReqs }), /requirements\.txt/);
    // Rollbacks never ship: the flags are not theirs.
    expectOneLineError(await runVdeploy(['rollback', '--yes', '--no-ship'], { cwd: dir }), /--no-ship|ship/);
  });

  it('bad flag values', async () => {
    const dir = await project('django\n');
    expectOneLineError(await runVdeploy(['deploy', '--yes', '--concurrency', '0'], { cwd: dir }), /--concurrency/);
    expectOneLineError(await runVdeploy(['deploy', '--yes', '--migrate', 'sometimes'], { cwd: dir }), /--migrate/);
    expectOneLineError(await runVdeploy(['rollback', '--yes', '--to', '0'], { cwd: dir }), /--to/);
  });
});

describe("yargs' own complaints read like the rest of the CLI: one line, a hint, exit 2", () => {
  it('an unknown command names it and suggests the nearest one', async () => {
    const r = await runVdeploy(['deplyo']);
    expectOneLineError(r, /^error: unknown command "deplyo"$/);
    expect(r.stderr.split('\n')[1]).to.match(/^hint: did you mean `vdeploy deploy`\? \(commands: init, /);
    const none = await runVdeploy([]);
    expectOneLineError(none, /^error: no command given$/);
  });

  it('an unknown option names it (with its dashes) and suggests the nearest one; --color / --no-color are known', async () => {
    const dir = await project('django\n');
    const r = await runVdeploy(['deploy', '--yes', '--dry-runn'], { cwd: dir });
    expectOneLineError(r, /^error: unknown option --dry-runn for vdeploy deploy$/);
    expect(r.stderr.split('\n')[1]).to.match(/^hint: did you mean --dry-run\? usage: vdeploy deploy \[selectors\.\.\]/);
    for (const flag of ['--no-color', '--color']) {
      const ok = await runVdeploy(['venvs', flag], { cwd: dir });
      expect(ok.exitCode, ok.stderr).to.equal(0);
    }
  });

  it('a missing argument, a missing option value and a bad choice say what is missing', async () => {
    const dir = await project('django\n');
    expectOneLineError(await runVdeploy(['add-wheel'], { cwd: dir }), /^error: vdeploy add-wheel needs one or more FILES$/);
    expectOneLineError(await runVdeploy(['relocate'], { cwd: dir }), /^error: vdeploy relocate needs a TARGET$/);
    expectOneLineError(await runVdeploy(['relocate', './a', './b', '--update-path', 'auto'], { cwd: dir }), /^error: unexpected argument "\.\/b" for vdeploy relocate$/);
    expectOneLineError(await runVdeploy(['plan', '--known-hosts'], { cwd: dir }), /^error: --known-hosts needs a value$/);
    expectOneLineError(
      await runVdeploy(['plan', '--strict-host-key-checking', 'maybe'], { cwd: dir }),
      /^error: --strict-host-key-checking must be one of yes, accept-new, no; got "maybe"$/,
    );
  });

  it('a selector that matches nothing suggests the nearest host, not every venv id', async () => {
    const dir = await project('django\n', [
      { host: 'web1', path: '/srv/app/venv' },
      { host: 'web1', path: '/srv/tools/venv' },
    ]);
    const r = await runVdeploy(['plan', 'wbe1'], { cwd: dir });
    expectOneLineError(r, /^error: selector "wbe1" matches no venv$/);
    expect(r.stderr.split('\n')[1]).to.equal('hint: did you mean "web1"? (`vdeploy venvs` lists every venv)');
  });
});

describe('history and deploy against a host that cannot be reached (no key, nothing listening)', () => {
  async function deadHostProject(): Promise<string> {
    const dir = await makeTempDir();
    const config = { hosts: [{ name: 'web1', address: '127.0.0.1', port: 9 }], venvs: [{ host: 'web1', path: '/srv/app/venv' }] };
    await writeFile(join(dir, 'deployfile.ts'), `export default ${JSON.stringify(config)};\n`);
    await writeFile(join(dir, 'requirements.txt'), 'django\n');
    return dir;
  }

  it('history with no selector means every venv, like the other commands', async () => {
    const r = await runVdeploy(['history'], { cwd: await deadHostProject(), env: { SSH_AUTH_SOCK: '' } });
    expect(r.exitCode, r.stderr).to.equal(1);
    expect(r.stdout).to.match(/^\S+@web1:\/srv\/app\/venv\n {2}unreachable: /);
  });

  it('a deploy whose only venv failed to plan does not say "Nothing to deploy."', async () => {
    const r = await runVdeploy(['deploy', '--yes'], { cwd: await deadHostProject(), env: { SSH_AUTH_SOCK: '' } });
    expect(r.exitCode, r.stderr).to.equal(1);
    expect(r.stdout).not.to.include('Nothing to deploy');
    expect(r.stdout).to.match(/@web1:\/srv\/app\/venv\s+error \(connect\)/);
    expect(r.stdout).to.match(/@web1:\/srv\/app\/venv\s+failed/);
  });
});
