import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, mkdir, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { parseConfig } from '../../src/config/load-deployfile.js';
import type { ResolvedConfig } from '../../src/config/resolve-config.js';
import { ConfigError } from '../../src/errors.js';
import { desiredFiles, desiredFilesForHosts } from '../../src/files/desired-files.js';
import type { HostFiles } from '../../src/files/types.js';
import { makeTempDir } from '../helpers/cli.js';

/** Writes `files` (path -> text, or [text, mode]) under a new project directory. */
async function project(files: Record<string, string | [string | Buffer, number]>): Promise<string> {
  const dir = await makeTempDir('vdeploy-files-');
  for (const [path, spec] of Object.entries(files)) {
    const [content, mode] = typeof spec === 'string' ? [spec, 0o644] : spec;
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), content);
    await chmod(join(dir, path), mode);
  }
  return dir;
}

const HOSTS = [
  { name: 'web1', address: '10.0.0.1', user: 'deploy', roles: ['web'] },
  { name: 'web2', address: '10.0.0.2', user: 'root', roles: ['web'] },
  { name: 'db1', user: 'deploy' },
];

function config(dir: string, extra: Record<string, unknown>, hosts: unknown[] = HOSTS): ResolvedConfig {
  return parseConfig({ hosts, ...extra }, join(dir, 'deployfile.ts'));
}

function host(c: ResolvedConfig, name: string) {
  return c.hosts.find((h) => h.name === name)!;
}

async function failure(p: Promise<unknown>): Promise<ConfigError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, 'expected a ConfigError').to.be.instanceOf(ConfigError);
  return err as ConfigError;
}

const sha = (text: string) => createHash('sha256').update(text).digest('hex');
const byDest = (hf: HostFiles) => new Map(hf.files.map((f) => [f.dest, f]));

describe('desiredFiles (issue 17)', () => {
  it('walks a tree: every regular file, .j2 rendered and stripped, modes with the exec bit kept, sha256', async () => {
    const dir = await project({
      'etc/motd': 'hello\n',
      'etc/supervisor/conf.d/app.conf.j2': '[program:app]\ncommand={{ venvs[0].current }}/bin/gunicorn -w {{ workers }} app.wsgi\n# {{ host.name }} {{ host.address }} {{ host.roles | join(",") }}\n',
      'etc/cron.daily/cleanup': ['#!/bin/sh\ntrue\n', 0o755],
    });
    const c = config(dir, {
      vars: { workers: 2 },
      files: [{ src: './etc/', dest: '/etc/', owner: 'root', group: 'root', onChange: ['supervisorctl update'] }],
      venvs: [{ host: 'web1', path: '/srv/app', releases: true }],
    });
    const hf = await desiredFiles(c, host(c, 'web1'));
    expect(hf.files.map((f) => f.dest)).to.deep.equal(['/etc/cron.daily/cleanup', '/etc/motd', '/etc/supervisor/conf.d/app.conf']);
    const files = byDest(hf);
    const conf = files.get('/etc/supervisor/conf.d/app.conf')!;
    const text = '[program:app]\ncommand=/srv/app/current/bin/gunicorn -w 2 app.wsgi\n# web1 10.0.0.1 web\n';
    expect(conf.content.toString()).to.equal(text);
    expect(conf).to.deep.include({ source: 'etc/supervisor/conf.d/app.conf.j2', entry: 'files[0]', sha256: sha(text), mode: 0o644, owner: 'root', group: 'root', onChange: ['supervisorctl update'], secret: false });
    expect(files.get('/etc/cron.daily/cleanup')!.mode).to.equal(0o755);
    expect(files.get('/etc/motd')).to.deep.include({ sha256: sha('hello\n'), mode: 0o644 });
    expect(hf).to.include({ host: 'web1', sudo: false });
  });

  it('template: true renders every file (keeping names without .j2); false copies .j2 files as they are', async () => {
    const dir = await project({ 'a/x.conf': 'n={{ n }}\n', 'a/y.conf.j2': 'm={{ n }}\n' });
    const on = config(dir, { files: [{ src: 'a', dest: '/etc/a', template: true, vars: { n: 1 } }] });
    const onFiles = byDest(await desiredFiles(on, host(on, 'db1')));
    expect(onFiles.get('/etc/a/x.conf')!.content.toString()).to.equal('n=1\n');
    expect(onFiles.get('/etc/a/y.conf')!.content.toString()).to.equal('m=1\n');
    const off = config(dir, { files: [{ src: 'a', dest: '/etc/a', template: false }] });
    const offFiles = byDest(await desiredFiles(off, host(off, 'db1')));
    expect([...offFiles.keys()]).to.deep.equal(['/etc/a/x.conf', '/etc/a/y.conf.j2']);
    expect(offFiles.get('/etc/a/y.conf.j2')!.content.toString()).to.equal('m={{ n }}\n');
  });

  it('one file: dest is its path, or a directory when it ends with /; mode 0640 of an executable is 0750', async () => {
    const dir = await project({ 'files/app.ini.j2': 'x={{ x }}\n', 'files/run.sh': ['#!/bin/sh\n', 0o700] });
    const c = config(dir, {
      vars: { x: 'top' },
      files: [
        { src: 'files/app.ini.j2', dest: '/etc/app/' },
        { src: 'files/app.ini.j2', dest: '/etc/other.ini', vars: { x: 'entry' } },
        { src: 'files/run.sh', dest: '/usr/local/bin/run', mode: '0640' },
      ],
    });
    const files = byDest(await desiredFiles(c, host(c, 'db1')));
    expect(files.get('/etc/app/app.ini')!.content.toString()).to.equal('x=top\n');
    expect(files.get('/etc/other.ini')!.content.toString()).to.equal('x=entry\n');
    expect(files.get('/usr/local/bin/run')!.mode).to.equal(0o750);
  });

  it('top-level entries go to the hosts and roles they name (every host when neither), then the host own entries', async () => {
    const dir = await project({ a: 'a', b: 'b', c: 'c', d: 'd' });
    const c = config(dir, { files: [{ src: 'a', dest: '/x/a' }, { src: 'b', dest: '/x/b', roles: ['web'] }, { src: 'c', dest: '/x/c', hosts: ['db1'] }] }, [
      ...HOSTS.slice(0, 2),
      { name: 'db1', user: 'deploy', files: [{ src: 'd', dest: '/x/d' }] },
    ]);
    const all = await desiredFilesForHosts(c, c.hosts);
    expect([...all.keys()]).to.deep.equal(['web1', 'web2', 'db1']);
    expect(all.get('web1')!.files.map((f) => f.dest)).to.deep.equal(['/x/a', '/x/b']);
    expect(all.get('db1')!.files.map((f) => [f.dest, f.entry])).to.deep.equal([['/x/a', 'files[0]'], ['/x/c', 'files[2]'], ['/x/d', 'hosts[2].files[0]']]);
  });

  it('renders per host; the venvs on the host are in the context (current = path without releases)', async () => {
    const dir = await project({ 't.j2': '{% for v in venvs %}{{ v.user }}:{{ v.current }} {% endfor %}on {{ host.name }}' });
    const c = config(dir, { files: [{ src: 't.j2', dest: '/etc/t' }], venvs: [{ host: 'web1', path: '/srv/a' }, { host: 'web1', user: 'app', path: '/srv/b', releases: true }, { host: 'web2', path: '/srv/c' }] });
    const all = await desiredFilesForHosts(c, c.hosts);
    expect(all.get('web1')!.files[0]!.content.toString()).to.equal('deploy:/srv/a app:/srv/b/current on web1');
    expect(all.get('web2')!.files[0]!.content.toString()).to.equal('root:/srv/c on web2');
    expect(all.get('db1')!.files[0]!.content.toString()).to.equal('on db1');
  });

  it('sudo: when the host or an entry of it asks, and the login user is not root; stateDir passes through', async () => {
    const dir = await project({ a: 'a' });
    const c = config(dir, { files: [{ src: 'a', dest: '/x/a', roles: ['web'], sudo: true }] }, [
      ...HOSTS,
      { name: 'db2', user: 'deploy', sudo: true, stateDir: '/var/lib/vd' },
    ]);
    const all = await desiredFilesForHosts(c, c.hosts);
    expect(['web1', 'web2', 'db1', 'db2'].map((h) => all.get(h)!.sudo)).to.deep.equal([true, false, false, true]);
    expect(all.get('db2')!.stateDir).to.equal('/var/lib/vd');
    expect(all.get('db1')).to.not.have.property('stateDir');
  });

  describe('errors (ConfigError, before any connection)', () => {
    it('a missing src names the entry and the path', async () => {
      const dir = await project({});
      const c = config(dir, { files: [{ src: './etc', dest: '/etc/' }] });
      const err = await failure(desiredFiles(c, host(c, 'web1')));
      expect(err.message).to.equal('files[0].src: etc does not exist');
      expect(err.hint).to.include(dir);
    });

    it('a template with an undefined variable: entry, file, line and the variable', async () => {
      const dir = await project({ 'etc/app.conf.j2': 'a\nb\nworkers = {{ wokers }}\n' });
      const c = config(dir, { vars: { workers: 2 }, files: [{ src: 'etc', dest: '/etc/' }] });
      const err = await failure(desiredFiles(c, host(c, 'web1')));
      expect(err.message).to.equal('files[0]: etc/app.conf.j2 line 3: undefined variable `wokers`');
      expect(err.message).to.not.include('\n');
      expect(err.hint).to.match(/templates see: host, venvs, workers/);
    });

    it('a syntax error: the line and nunjucks message, on one line', async () => {
      const dir = await project({ 'etc/a.j2': 'ok\n{% if %}\n' });
      const c = config(dir, { files: [{ src: 'etc', dest: '/etc/' }] }, [{ name: 'h', files: [{ src: 'etc/a.j2', dest: '/etc/a' }] }]);
      const err = await failure(desiredFiles(c, host(c, 'h')));
      expect(err.message).to.match(/^files\[0\]: etc\/a\.j2 line 2: unexpected token: %\}$/);
      const own = config(dir, {}, [{ name: 'h', files: [{ src: 'etc/a.j2', dest: '/etc/a' }] }]);
      expect((await failure(desiredFiles(own, host(own, 'h')))).message).to.match(/^hosts\[0\]\.files\[0\]: etc\/a\.j2 line 2: /);
    });

    it('includes: a file under src works, one outside src or through a symlink is refused, an error inside names the included file', async () => {
      const dir = await project({ 'etc/main.j2': '{% include "parts/a.inc" %}', 'etc/parts/a.inc': 'A={{ a }}', 'etc/bad.j2': 'x\n{% include "parts/b.inc" %}', 'etc/parts/b.inc': '\n\n{{ nope }}', 'secret.txt': 's' });
      const ok = config(dir, { vars: { a: 1 }, files: [{ src: 'etc/main.j2', dest: '/etc/main' }] });
      expect((await desiredFiles(ok, host(ok, 'db1'))).files[0]!.content.toString()).to.equal('A=1');
      const bad = config(dir, { files: [{ src: 'etc/bad.j2', dest: '/etc/bad' }] });
      expect((await failure(desiredFiles(bad, host(bad, 'db1')))).message).to.equal('files[0]: etc/parts/b.inc line 3: undefined variable `nope` (included from etc/bad.j2)');
      await writeFile(join(dir, 'etc', 'escape.j2'), '{% include "../secret.txt" %}');
      const esc = config(dir, { files: [{ src: 'etc/escape.j2', dest: '/etc/e' }] });
      expect((await failure(desiredFiles(esc, host(esc, 'db1')))).message).to.match(/^files\[0\]: etc\/escape\.j2: cannot include secret\.txt: only regular files under etc can be included$/);
      const tree = config(dir, { files: [{ src: 'etc', dest: '/etc/', template: false }] });
      await symlink(join(dir, 'secret.txt'), join(dir, 'link.txt'));
      await writeFile(join(dir, 'etc', 'link.j2'), '{% include "../link.txt" %}');
      const viaLink = config(dir, { files: [{ src: 'etc/link.j2', dest: '/etc/l' }] });
      expect((await failure(desiredFiles(viaLink, host(viaLink, 'db1')))).message).to.match(/cannot include/);
      expect((await desiredFiles(tree, host(tree, 'db1'))).files.length).to.equal(6);
    });

    it('a symlink or a FIFO in a tree is named', async () => {
      const dir = await project({ 'etc/a': 'a' });
      await symlink('/etc/passwd', join(dir, 'etc', 'passwd'));
      const c = config(dir, { files: [{ src: 'etc', dest: '/etc/' }] });
      const err = await failure(desiredFiles(c, host(c, 'db1')));
      expect(err.message).to.equal('files[0]: etc/passwd is a symlink; vdeploy copies regular files only');
      const dir2 = await project({ 'etc/a': 'a' });
      execFileSync('mkfifo', [join(dir2, 'etc', 'pipe')]);
      const c2 = config(dir2, { files: [{ src: 'etc', dest: '/etc/' }] });
      expect((await failure(desiredFiles(c2, host(c2, 'db1')))).message).to.match(/^files\[0\]: etc\/pipe is not a regular file/);
    });

    it('two entries writing one path on a host name both', async () => {
      const dir = await project({ 'etc/motd': 'a', 'motd': 'b' });
      const c = config(dir, { files: [{ src: 'etc', dest: '/etc/' }] }, [{ name: 'h', files: [{ src: 'motd', dest: '/etc/motd' }] }]);
      const err = await failure(desiredFiles(c, host(c, 'h')));
      expect(err.message).to.equal('files[0] (etc/motd) and hosts[0].files[0] (motd) both write /etc/motd on h');
      const twice = await project({ 'etc/a.conf': 'a', 'etc/a.conf.j2': 'b' });
      const c2 = config(twice, { files: [{ src: 'etc', dest: '/etc/' }] });
      const err2 = await failure(desiredFiles(c2, host(c2, 'db1')));
      expect(err2.message).to.equal('files[0] (etc/a.conf) and files[0] (etc/a.conf.j2) both write /etc/a.conf on db1');
      expect(err2.hint).to.match(/loses its \.j2/);
    });

    it('a template that is not UTF-8 text', async () => {
      const dir = await project({ 'bin.j2': [Buffer.from([0xff, 0xfe, 0x00]), 0o644] });
      const c = config(dir, { files: [{ src: 'bin.j2', dest: '/x' }] });
      expect((await failure(desiredFiles(c, host(c, 'db1')))).message).to.equal('files[0]: bin.j2: is not UTF-8 text, so it cannot be a template');
    });
  });
});
