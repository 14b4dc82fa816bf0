// Bad input to plan/deploy/rollback through the built binary: one line naming the problem, a hint,
// exit 2, and no connection attempted (the hosts here do not exist).
import { expect } from 'chai';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTempDir, runVdeploy } from '../helpers/cli.js';

async function project(requirements: string | undefined, venvs: unknown[] = [{ host: 'web1', path: '/srv/app/venv' }]): Promise<string> {
  const dir = await makeTempDir();
  const config = { hosts: [{ name: 'web1', address: '192.0.2.1' }], venvs };
  await writeFile(join(dir, 'deployfile.ts'), `export default ${JSON.stringify(config)};\n`);
  if (requirements !== undefined) await writeFile(join(dir, 'requirements.txt'), requirements);
  return dir;
}

function expectOneLineError(r: { exitCode: number | null; stderr: string }, pattern: RegExp): void {
  expect(r.exitCode, r.stderr).to.equal(2);
  const lines = r.stderr.trim().split('\n');
  expect(lines[0]).to.match(/^error: /);
  expect(lines[0]).to.match(pattern);
  expect(lines[1]).to.match(/^hint: /);
  expect(r.stderr).not.to.match(/\n\s+at /); // no stack trace
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

  it('bad flag values', async () => {
    const dir = await project('django\n');
    expectOneLineError(await runVdeploy(['deploy', '--yes', '--concurrency', '0'], { cwd: dir }), /--concurrency/);
    expectOneLineError(await runVdeploy(['deploy', '--yes', '--migrate', 'sometimes'], { cwd: dir }), /--migrate/);
    expectOneLineError(await runVdeploy(['rollback', '--yes', '--to', '0'], { cwd: dir }), /--to/);
  });
});
