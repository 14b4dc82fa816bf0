import { expect } from 'chai';
import { defineConfig } from '../../src/config/define-config.js';
import { parseConfig } from '../../src/config/load-deployfile.js';
import { ConfigError } from '../../src/errors.js';

const hosts = [
  { name: 'web1', roles: ['web'] },
  { name: 'web2', roles: ['web', 'edge'] },
  { name: 'db1' },
];

function parse(extra: Record<string, unknown>, hostList: unknown[] = hosts) {
  return parseConfig({ hosts: hostList, ...extra }, '/p/deployfile.ts');
}

function expectError(extra: Record<string, unknown>, pattern: RegExp, hostList: unknown[] = hosts) {
  expect(() => parse(extra, hostList)).to.throw(ConfigError, pattern);
}

describe('deployfile files, vars, sudo and stateDir (issue 17)', () => {
  it('defaults: no files, no vars, no sudo, no stateDir', () => {
    const c = parse({});
    expect(c.files).to.deep.equal([]);
    expect(c.vars).to.deep.equal({});
    expect(c.hosts[0]).to.include({ sudo: false });
    expect(c.hosts[0]!.files).to.deep.equal([]);
    expect(c.hosts[0]!.stateDir).to.equal(undefined);
  });

  it('resolves src against the deployfile directory, fills defaults, labels each entry', () => {
    const c = parse({
      vars: { workers: 4 },
      files: [{ src: './etc/', dest: '/etc/', roles: ['web'], owner: 'root', group: 'root', onChange: ['supervisorctl update'] }],
    }, [{ name: 'web1', roles: ['web'], sudo: true, stateDir: '/var/lib/x/', files: [{ src: '/abs/motd', dest: '/etc/motd', mode: '600', secret: true }] }]);
    expect(c.vars).to.deep.equal({ workers: 4 });
    expect(c.files[0]).to.deep.include({ src: '/p/etc', dest: '/etc/', roles: ['web'], owner: 'root', group: 'root', mode: '0644', vars: {}, onChange: ['supervisorctl update'], secret: false, sudo: false, entry: 'files[0]' });
    expect(c.files[0]!.template).to.equal(undefined);
    const host = c.hosts[0]!;
    expect(host).to.include({ sudo: true, stateDir: '/var/lib/x' });
    expect(host.files[0]).to.deep.include({ src: '/abs/motd', dest: '/etc/motd', mode: '600', secret: true, entry: 'hosts[0].files[0]' });
  });

  it('keeps a trailing slash on dest (a directory) and normalizes the rest', () => {
    const c = parse({ files: [{ src: 'a', dest: '/etc//nginx/' }, { src: 'b', dest: '/etc/./x.conf' }, { src: 'c', dest: '/' }] });
    expect(c.files.map((f) => f.dest)).to.deep.equal(['/etc/nginx/', '/etc/x.conf', '/']);
  });

  const bad: Array<[string, Record<string, unknown>, RegExp]> = [
    ['a relative dest', { files: [{ src: 'a', dest: 'etc/' }] }, /files\[0\]\.dest: must be an absolute path/],
    ['a dest with a newline', { files: [{ src: 'a', dest: '/etc/a\nb' }] }, /files\[0\]\.dest: must not contain control characters/],
    ['an empty src', { files: [{ src: '', dest: '/etc/' }] }, /files\[0\]\.src: must not be empty/],
    ['a missing dest', { files: [{ src: 'a' }] }, /files\[0\]\.dest: is required/],
    ['a decimal mode', { files: [{ src: 'a', dest: '/etc/', mode: 644 }] }, /files\[0\]\.mode: must be a quoted octal string like '0644'/],
    ['a mode with an 8', { files: [{ src: 'a', dest: '/etc/', mode: '0648' }] }, /files\[0\]\.mode: must be an octal mode string like '0644'/],
    ['validate without {path}', { files: [{ src: 'a', dest: '/etc/', validate: 'nginx -t' }] }, /files\[0\]\.validate: must contain \{path\}/],
    ['an empty handler', { files: [{ src: 'a', dest: '/etc/', onChange: [''] }] }, /files\[0\]\.onChange\[0\]: must not be empty/],
    ['onChange as a string', { files: [{ src: 'a', dest: '/etc/', onChange: 'reload' }] }, /files\[0\]\.onChange: expected array/],
    ['a misspelt entry field', { files: [{ src: 'a', dest: '/etc/', onchange: ['x'] }] }, /files\[0\]\.onchange: unknown field/],
    ['an unknown host in files[].hosts', { files: [{ src: 'a', dest: '/etc/', hosts: ['web1', 'web9'] }] }, /files\[0\]\.hosts\[1\]: unknown host "web9" \(hosts are: web1, web2, db1\)/],
    ['a role no host has', { files: [{ src: 'a', dest: '/etc/', roles: ['wbe'] }] }, /files\[0\]\.roles\[0\]: no host has role "wbe" \(roles are: web, edge\)/],
    ['an owner with a colon', { files: [{ src: 'a', dest: '/etc/', owner: 'root:root' }] }, /files\[0\]\.owner: owner must not contain spaces, colons/],
    ['template: "yes"', { files: [{ src: 'a', dest: '/etc/', template: 'yes' }] }, /files\[0\]\.template: expected boolean/],
    ['a var named host', { vars: { host: 'x' } }, /vars\.host: is reserved: templates get the host/],
    ['an entry var named venvs', { files: [{ src: 'a', dest: '/etc/', vars: { venvs: [] } }] }, /files\[0\]\.vars\.venvs: is reserved/],
    ['vars that are not an object', { vars: ['a'] }, /vars: must be an object of template variables/],
    ['hosts on a host entry', { hosts: [{ name: 'web1', files: [{ src: 'a', dest: '/etc/', hosts: ['web1'] }] }] }, /hosts\[0\]\.files\[0\]\.hosts: unknown field/],
    ['a relative stateDir', { hosts: [{ name: 'web1', stateDir: 'state' }] }, /hosts\[0\]\.stateDir: must be an absolute path/],
    ['sudo: "yes" on a host', { hosts: [{ name: 'web1', sudo: 'yes' }] }, /hosts\[0\]\.sudo: expected boolean/],
  ];
  for (const [what, extra, pattern] of bad) {
    it(`refuses ${what}, naming the field path`, () => {
      const { hosts: ownHosts, ...rest } = extra as { hosts?: unknown[] };
      expectError(rest, pattern, ownHosts ?? hosts);
    });
  }

  it('says so when no host has any role', () => {
    expectError({ files: [{ src: 'a', dest: '/etc/', roles: ['web'] }] }, /files\[0\]\.roles\[0\]: no host has role "web" \(no host has roles\)/, [{ name: 'h' }]);
  });

  it('defineConfig accepts the files fields (typed)', () => {
    const user = defineConfig({
      hosts: [{ name: 'web1', roles: ['web'], sudo: true, stateDir: '/var/lib/vd', files: [{ src: 'motd', dest: '/etc/motd', mode: '0600', secret: true }] }],
      vars: { workers: 4 },
      files: [{ src: './etc/', dest: '/etc/', roles: ['web'], template: true, vars: { port: 80 }, validate: 'check {path}', onChange: ['supervisorctl update'] }],
    });
    expect(parseConfig(user, '/p/deployfile.ts').files[0]!.vars).to.deep.equal({ port: 80 });
  });

  it('a deployfile with files and no venvs is valid', () => {
    expect(parse({ files: [{ src: 'etc', dest: '/etc/' }] }).venvs).to.deep.equal([]);
  });
});
