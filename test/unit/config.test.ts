import { expect } from 'chai';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { findDeployfile, formatPath, loadDeployfile, parseConfig } from '../../src/config/load-deployfile.js';
import { ConfigError } from '../../src/errors.js';
import { makeTempDir } from '../helpers/cli.js';

const base = {
  hosts: [{ name: 'web1', address: '10.0.0.1', user: 'deploy', roles: ['web'] }, { name: 'db1' }],
  venvs: [{ host: 'web1', path: '/srv/app/venv' }],
};

function expectConfigError(value: unknown, pattern: RegExp) {
  expect(() => parseConfig(value, '/p/deployfile.ts')).to.throw(ConfigError, pattern);
}

describe('config schema and resolution', () => {
  it('applies defaults and resolves paths against the deployfile directory', () => {
    const c = parseConfig(base, '/p/deployfile.ts');
    expect(c.wheels).to.equal('/p/wheels');
    expect(c.requirements).to.equal('/p/requirements.txt');
    expect(c.ssh.strictHostKeyChecking).to.equal('yes');
    expect(c.ssh.concurrency).to.equal(16);
    expect(c.hosts[1]).to.include({ name: 'db1', address: 'db1', port: 22 });
    const venv = c.venvs[0]!;
    expect(venv.id).to.equal('deploy@web1:/srv/app/venv');
    expect(venv.user).to.equal('deploy');
    expect(venv.python).to.equal('python3');
    expect(venv.requirements).to.equal('/p/requirements.txt');
    // Issue 17: no config files unless declared.
    expect(c.files).to.deep.equal([]);
    expect(c.vars).to.deep.equal({});
    expect(c.hosts[0]).to.deep.include({ files: [], sudo: false });
  });

  it('keeps a venv own user and requirements file and normalizes its path', () => {
    const c = parseConfig(
      { ...base, venvs: [{ host: 'web1', user: 'app', path: '/srv/app//venv/', requirements: 'reqs/web.txt' }] },
      '/p/deployfile.ts',
    );
    expect(c.venvs[0]).to.include({ id: 'app@web1:/srv/app/venv', user: 'app', path: '/srv/app/venv', requirements: '/p/reqs/web.txt' });
  });

  const bad: Array<[string, unknown, RegExp]> = [
    ['relative venv path', { ...base, venvs: [{ host: 'web1', path: 'srv/venv' }] }, /venvs\[0\]\.path: must be an absolute path/],
    ['newline in a path', { ...base, venvs: [{ host: 'web1', path: '/srv/a\nb' }] }, /venvs\[0\]\.path: must not contain control characters/],
    ['unknown host reference', { ...base, venvs: [{ host: 'web9', path: '/srv/v' }] }, /venvs\[0\]\.host: unknown host "web9" \(hosts are: web1, db1\)/],
    ['duplicate venv', { ...base, venvs: [{ host: 'web1', path: '/a' }, { host: 'web1', path: '/a/' }] }, /venvs\[1\]: duplicate venv web1:\/a \(also venvs\[0\]\)/],
    ['duplicate host', { hosts: [{ name: 'a' }, { name: 'a' }] }, /hosts\[1\]\.name: duplicate host "a"/],
    ['no hosts', { hosts: [] }, /hosts: declare at least one host/],
    ['missing hosts', {}, /hosts: is required/],
    ['unknown field', { ...base, hsots: [] }, /hsots: unknown field/],
    ['unknown nested field', { ...base, ssh: { knownhosts: 'x' } }, /ssh\.knownhosts: unknown field/],
    ['bad strict mode', { ...base, ssh: { strictHostKeyChecking: 'maybe' } }, /ssh\.strictHostKeyChecking: must be one of "yes", "accept-new", "no"/],
    ['port out of range', { hosts: [{ name: 'a', port: 70000 }] }, /hosts\[0\]\.port/],
    ['host name with @', { hosts: [{ name: 'a@b' }] }, /hosts\[0\]\.name: host name must not contain/],
    ['wrong type', { ...base, venvs: 'x' }, /venvs: expected array/],
    ['django without settings', { ...base, venvs: [{ host: 'web1', path: '/v', django: {} }] }, /venvs\[0\]\.django\.settings: is required/],
    ['a health check with neither command nor url', { ...base, venvs: [{ host: 'web1', path: '/v', healthcheck: { expectStatus: 200 } }] }, /venvs\[0\]\.healthcheck: needs a command or a url/],
    ['expectBody without a url', { ...base, venvs: [{ host: 'web1', path: '/v', healthcheck: { command: 'true', expectBody: 'ok' } }] }, /venvs\[0\]\.healthcheck\.expectBody: needs a url/],
    ['{version} without a package', { ...base, hosts: [{ name: 'web1', healthcheck: { url: 'http://127.0.0.1/', expectBody: 'app {version}' } }] }, /hosts\[0\]\.healthcheck\.expectBody: \{version\}: write \{version:PACKAGE\}/],
    ['releases that keep none', { ...base, venvs: [{ host: 'web1', path: '/v', releases: { keep: 0 } }] }, /venvs\[0\]\.releases\.keep: must be at least 1/],
    ['releases: "yes"', { ...base, venvs: [{ host: 'web1', path: '/v', releases: 'yes' }] }, /venvs\[0\]\.releases: must be true, false or \{ keep: N \}/],
    ['a misspelt releases option', { ...base, venvs: [{ host: 'web1', path: '/v', releases: { kept: 3 } }] }, /venvs\[0\]\.releases\.kept: unknown field/],
    ['a ship builder that is not a host', { ...base, ship: { builder: 'web9' } }, /ship\.builder: unknown host "web9" \(hosts are: web1, db1\)/],
    ['a ship cache of 0 MB', { ...base, ship: { cacheMegabytes: 0 } }, /ship\.cacheMegabytes: must be at least 1/],
    ['a fractional ship cache', { ...base, ship: { cacheMegabytes: 1.5 } }, /ship\.cacheMegabytes: must be a whole number of megabytes/],
    ['ship.enabled: "no"', { ...base, ship: { enabled: 'no' } }, /ship\.enabled: expected boolean/],
    ['a misspelt ship option', { ...base, ship: { bulider: 'web1' } }, /ship\.bulider: unknown field/],
    ['a negative settle', { ...base, venvs: [{ host: 'web1', path: '/v', healthcheck: { url: 'http://127.0.0.1/', settle: -1 } }] }, /venvs\[0\]\.healthcheck\.settle: must be 0 or more seconds/],
  ];
  for (const [what, value, pattern] of bad) {
    it(`refuses ${what} naming the field path`, () => expectConfigError(value, pattern));
  }

  it('releases: true keeps 5, an object its own number, false or absent is the in-place layout', () => {
    const venvs = [true, { keep: 2 }, {}, false, undefined].map((releases, i) => ({ host: 'web1', path: `/v${i}`, ...(releases === undefined ? {} : { releases }) }));
    const c = parseConfig({ ...base, venvs }, '/p/deployfile.ts');
    expect(c.venvs.map((v) => v.releases)).to.deep.equal([{ keep: 5 }, { keep: 2 }, { keep: 5 }, undefined, undefined]);
  });

  it('ship: on by default with a 2048 MiB artifact cache; a builder that is a host', () => {
    expect(parseConfig(base, '/p/deployfile.ts').ship).to.deep.equal({ enabled: true, cacheMegabytes: 2048 });
    expect(parseConfig({ ...base, ship: { enabled: false, builder: 'db1', cacheMegabytes: 100 } }, '/p/deployfile.ts').ship).to.deep.equal({ enabled: false, builder: 'db1', cacheMegabytes: 100 });
  });

  it('formats field paths', () => {
    expect(formatPath(['venvs', 2, 'path'])).to.equal('venvs[2].path');
    expect(formatPath([])).to.equal('');
  });
});

describe('loadDeployfile', () => {
  it('finds deployfile.ts upward from a subdirectory and loads it with jiti', async () => {
    const dir = await makeTempDir();
    await writeFile(
      join(dir, 'deployfile.ts'),
      `import { defineConfig } from 'vdeploy';\nconst port: number = 2222;\nexport default defineConfig({ hosts: [{ name: 'h', port }] });\n`,
    );
    await mkdir(join(dir, 'a', 'b'), { recursive: true });
    expect(findDeployfile(join(dir, 'a', 'b'))).to.equal(join(dir, 'deployfile.ts'));
    const config = await loadDeployfile({ cwd: join(dir, 'a', 'b') });
    expect(config.file).to.equal(join(dir, 'deployfile.ts'));
    expect(config.hosts[0]!.port).to.equal(2222);
  });

  it('loads .mjs deployfiles', async () => {
    const dir = await makeTempDir();
    await writeFile(join(dir, 'deployfile.mjs'), `export default { hosts: [{ name: 'h' }] };\n`);
    expect((await loadDeployfile({ cwd: dir })).hosts[0]!.name).to.equal('h');
  });

  it('reports a syntax error with file:line:col', async () => {
    const dir = await makeTempDir();
    await writeFile(join(dir, 'deployfile.ts'), `export default {\n  hosts: [,\n  venvs: ]\n};\n`);
    const error = await loadDeployfile({ cwd: dir }).catch((e: unknown) => e);
    expect(error).to.be.instanceOf(ConfigError);
    expect((error as Error).message).to.match(new RegExp(`${join(dir, 'deployfile.ts')}:\\d+:\\d+`));
  });

  it('reports a missing deployfile with a hint to run init', async () => {
    const dir = await makeTempDir();
    const error = (await loadDeployfile({ cwd: dir }).catch((e: unknown) => e)) as ConfigError;
    expect(error).to.be.instanceOf(ConfigError);
    expect(error.hint).to.match(/vdeploy init/);
  });
});
