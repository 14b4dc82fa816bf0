import { expect } from 'chai';
import { parseConfig } from '../../src/config/load-deployfile.js';
import { ConfigError } from '../../src/errors.js';
import { packageArchitecture, pythonDepends, serviceScripts, tagMachine } from '../../src/package/package-meta.js';
import { checkVersion, selectPackages } from '../../src/package/package.js';

const base = { hosts: [{ name: 'web1' }], venvs: [{ host: 'web1', path: '/srv/app' }] };
const pkg = { name: 'myshop', venv: 'web1:/srv/app', prefix: '/opt/myshop', interpreter: 'system' };

function parse(packages: unknown[]) {
  return parseConfig({ ...base, packages }, '/p/deployfile.ts');
}

describe('deployfile packages (issue 19)', () => {
  it('defaults: no packages; an entry resolves its venv and local paths', () => {
    expect(parseConfig(base, '/p/deployfile.ts').packages).to.deep.equal([]);
    const c = parse([{ ...pkg, prefix: '/opt/myshop/', files: ['./etc/'], service: { unit: './etc/systemd/system/myshop.service' }, depends: ['libpq5', 'libssl3 (>= 3.0)'] }]);
    const p = c.packages[0]!;
    expect(p).to.deep.include({ name: 'myshop', prefix: '/opt/myshop', interpreter: 'system', files: ['/p/etc'], service: { unit: '/p/etc/systemd/system/myshop.service' }, depends: ['libpq5', 'libssl3 (>= 3.0)'] });
    expect(p.source.id).to.equal('root@web1:/srv/app'.replace('root', p.source.user));
    expect(parse([{ ...pkg, venv: 'web1:/srv/app/', interpreter: { path: '/opt/python3.12' } }]).packages[0]!.interpreter).to.deep.equal({ path: '/opt/python3.12' });
  });

  const bad: Array<[string, Record<string, unknown>, RegExp]> = [
    ['a bad name', { name: 'My_Shop' }, /packages\[0\]\.name.*package name/],
    ['a venv not in the deployfile', { venv: 'web1:/srv/other' }, /packages\[0\]\.venv.*not a venv of the deployfile.*web1:\/srv\/app/],
    ['a venv without host', { venv: '/srv/app' }, /packages\[0\]\.venv.*HOST:\/PATH/],
    ['a relative prefix', { prefix: 'opt/x' }, /packages\[0\]\.prefix.*absolute/],
    ['prefix /', { prefix: '/' }, /packages\[0\]\.prefix.*must not be \//],
    ['an unknown interpreter', { interpreter: 'python3' }, /packages\[0\]\.interpreter.*'system' or \{ path/],
    ['a relative interpreter path', { interpreter: { path: 'x' } }, /packages\[0\]\.interpreter/],
    ['two dependencies in one entry', { depends: ['a, b'] }, /packages\[0\]\.depends\[0\].*one dependency per entry/],
    ['a unit that is not a unit', { service: { unit: './x.conf' } }, /packages\[0\]\.service\.unit.*systemd unit/],
    ['an unknown buildOn host', { buildOn: 'web9' }, /packages\[0\]\.buildOn.*unknown host "web9"/],
    ['an unknown field', { prefixx: '/x' }, /packages\[0\].*prefixx/],
  ];
  for (const [what, change, pattern] of bad) {
    it(`refuses ${what}, naming the field`, () => {
      expect(() => parse([{ ...pkg, ...change }])).to.throw(ConfigError, pattern);
    });
  }

  it('refuses duplicate names', () => {
    expect(() => parse([pkg, pkg])).to.throw(ConfigError, /packages\[1\]\.name.*duplicate package "myshop"/);
  });

  it('selects packages by name; unknown names and no packages are clear errors', () => {
    const c = parse([pkg, { ...pkg, name: 'other' }]);
    expect(selectPackages(c, []).map((p) => p.name)).to.deep.equal(['myshop', 'other']);
    expect(selectPackages(c, ['other']).map((p) => p.name)).to.deep.equal(['other']);
    expect(() => selectPackages(c, ['nope'])).to.throw(ConfigError, /no package named nope.*/);
    expect(() => selectPackages(parseConfig(base, '/p/deployfile.ts'), [])).to.throw(ConfigError, /declares no packages/);
  });

  it('checks --version and --iteration', () => {
    checkVersion('1.4.2', 1);
    checkVersion('2.0~rc1+git5', 3);
    expect(() => checkVersion('1.0-1', 1)).to.throw(ConfigError, /not a package version/);
    expect(() => checkVersion('v1', 1)).to.throw(ConfigError, /not a package version/);
    expect(() => checkVersion('1.0', 0)).to.throw(ConfigError, /--iteration 0/);
  });
});

describe('package metadata (issue 19)', () => {
  it('architecture: all for pure wheels, else from the platform tags', () => {
    expect(tagMachine('any')).to.equal(undefined);
    expect(tagMachine('manylinux_2_17_x86_64')).to.equal('x86_64');
    expect(tagMachine('manylinux2014_aarch64')).to.equal('aarch64');
    expect(tagMachine('musllinux_1_1_x86_64')).to.equal('x86_64');
    expect(tagMachine('linux_x86_64')).to.equal('x86_64');
    const pure = ['django-5.2.17-py3-none-any.whl', 'tzdata-2026.4-py2.py3-none-any.whl'];
    expect(packageArchitecture(pure)).to.equal('all');
    expect(packageArchitecture([...pure, 'markupsafe-3.0.3-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.manylinux_2_28_x86_64.whl'])).to.equal('amd64');
    expect(packageArchitecture(['x-1-cp311-cp311-manylinux_2_17_aarch64.whl'])).to.equal('arm64');
    expect(packageArchitecture(pure, 'x86_64')).to.equal('amd64');
    expect(() => packageArchitecture(['x-1-cp311-cp311-manylinux_2_17_aarch64.whl'], 'x86_64')).to.throw(ConfigError, /mix architectures: amd64 \(the shipped interpreter\), arm64/);
  });

  it('depends on the system python X.Y (none for a shipped one)', () => {
    expect(pythonDepends('3.11')).to.deep.equal({ depends: ['python3.11', 'python3 (>= 3.11)', 'python3 (<< 3.12)'], requires: ['python3.11'] });
    expect(pythonDepends(undefined)).to.deep.equal({ depends: [], requires: [] });
  });

  it('service scripts: enable + restart where systemd runs; stop (and disable on removal) before', () => {
    expect(serviceScripts(undefined)).to.deep.equal({});
    const s = serviceScripts('myshop.service');
    expect(s.postinst).to.equal('if [ -d /run/systemd/system ]; then\n  systemctl daemon-reload\n  systemctl enable myshop.service\n  systemctl restart myshop.service\nfi\n');
    expect(s.prerm).to.contain('systemctl stop myshop.service || true').and.contain('case "$1" in remove|0) systemctl disable myshop.service');
    expect(s.postrm).to.contain('systemctl daemon-reload');
  });
});
