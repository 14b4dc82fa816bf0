// writeRpm() checked by the real rpm (Debian's `rpm` package) as the oracle: query, digests, scriptlets,
// conffiles, file attributes, an install into a scratch root whose files equal the tree, and
// reproducibility. Installing into a root needs chroot(2), hence root; that test skips otherwise.
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFile, lstat, mkdir, readFile, readlink, readdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { rpmFileName, writeRpm } from '../../src/package/rpm.js';
import type { PackageTree } from '../../src/package/tree.js';
import { makeTempDir } from '../helpers/cli.js';

const run = promisify(execFile);
const rpm = async (...args: string[]) => (await run('rpm', args, { maxBuffer: 1 << 24 })).stdout;

function sampleTree(): PackageTree {
  const file = (path: string, mode: number, text: string) => ({ kind: 'file' as const, path, mode, content: Buffer.from(text) });
  return {
    meta: {
      name: 'vdeploy-rpmtest', version: '1.4.2', iteration: 3, architecture: 'all', maintainer: 'Ops <ops@example.com>',
      summary: 'an app in a venv', description: 'The long text.\n\nSecond paragraph.', depends: ['python3.11'],
      requires: ['python3.11', 'libpq >= 13'], homepage: 'https://example.com/app', license: 'MIT',
    },
    // Parents before children, deliberately not sorted: the writer sorts.
    entries: [
      { kind: 'dir', path: '/opt', mode: 0o755 },
      { kind: 'dir', path: '/opt/vdeploy-rpmtest', mode: 0o755 },
      { kind: 'dir', path: '/opt/vdeploy-rpmtest/venv', mode: 0o755 },
      { kind: 'dir', path: '/opt/vdeploy-rpmtest/venv/bin', mode: 0o755 },
      file('/opt/vdeploy-rpmtest/venv/bin/app', 0o755, '#!/opt/vdeploy-rpmtest/venv/bin/python\nprint("hi")\n'),
      { kind: 'symlink', path: '/opt/vdeploy-rpmtest/venv/bin/python', target: '/usr/bin/python3.11' },
      file('/opt/vdeploy-rpmtest/venv/pyvenv.cfg', 0o644, 'home = /usr/bin\n'),
      { kind: 'dir', path: '/opt/vdeploy-rpmtest/venv/lib', mode: 0o750 },
      file('/opt/vdeploy-rpmtest/venv/lib/secret.txt', 0o600, 'only root\n'),
      file('/opt/vdeploy-rpmtest/venv/lib/empty', 0o644, ''),
      { kind: 'dir', path: '/etc', mode: 0o755 },
      { kind: 'dir', path: '/etc/vdeploy-rpmtest', mode: 0o755 },
      file('/etc/vdeploy-rpmtest/app.ini', 0o640, '[app]\nworkers = 4\n'),
      { kind: 'dir', path: '/lib', mode: 0o755 },
      { kind: 'dir', path: '/lib/systemd', mode: 0o755 },
      { kind: 'dir', path: '/lib/systemd/system', mode: 0o755 },
      file('/lib/systemd/system/vdeploy-rpmtest.service', 0o644, '[Service]\nExecStart=/opt/vdeploy-rpmtest/venv/bin/app\n'),
    ],
    conffiles: ['/etc/vdeploy-rpmtest/app.ini'],
    scripts: {
      postinst: 'if [ -d /run/systemd/system ]; then systemctl daemon-reload; fi',
      prerm: 'systemctl stop vdeploy-rpmtest.service || true',
      postrm: 'rm -rf /var/lib/vdeploy-rpmtest',
    },
    mtime: 1_790_000_000,
  };
}

const SHARED_DIRS = ['/etc', '/opt', '/lib', '/lib/systemd', '/lib/systemd/system'];
const owned = (t: PackageTree) => t.entries.filter((e) => !(e.kind === 'dir' && SHARED_DIRS.includes(e.path)));

describe('writeRpm (checked by the real rpm)', function () {
  this.timeout(120_000);
  let tree: PackageTree;
  let pkg: string;
  before(async () => {
    tree = sampleTree();
    const dir = await makeTempDir('vdeploy-rpm-');
    pkg = join(dir, rpmFileName(tree.meta));
    await writeFile(pkg, writeRpm(tree));
  });

  it('is named name-version-iteration.arch.rpm (all → noarch, amd64 → x86_64)', () => {
    expect(rpmFileName(tree.meta)).to.equal('vdeploy-rpmtest-1.4.2-3.noarch.rpm');
    expect(rpmFileName({ ...tree.meta, architecture: 'amd64' })).to.equal('vdeploy-rpmtest-1.4.2-3.x86_64.rpm');
    expect(rpmFileName({ ...tree.meta, architecture: 'arm64' })).to.equal('vdeploy-rpmtest-1.4.2-3.aarch64.rpm');
  });

  it('rpm -qpi shows the metadata', async () => {
    const out = await rpm('-qpi', pkg);
    for (const line of [/Name\s+: vdeploy-rpmtest/, /Version\s+: 1\.4\.2/, /Release\s+: 3/, /Architecture: noarch/, /License\s+: MIT/,
      /Summary\s+: an app in a venv/, /URL\s+: https:\/\/example\.com\/app/, /Packager\s+: Ops <ops@example\.com>/, /Source RPM\s+: vdeploy-rpmtest-1\.4\.2-3\.src\.rpm/]) {
      expect(out).to.match(line);
    }
    expect(out).to.include('The long text.\n\nSecond paragraph.');
    expect(await rpm('-qp', '--qf', '%{BUILDTIME} %{SIZE} %{PAYLOADCOMPRESSOR} %{PAYLOADFORMAT}', pkg)).to.equal(
      `1790000000 ${tree.entries.reduce((n, e) => n + (e.kind === 'file' ? e.content.length : e.kind === 'symlink' ? e.target.length : 0), 0)} gzip cpio`);
  });

  it('rpm -K: header SHA256/SHA1, payload SHA256 and MD5 digests all OK', async () => {
    const out = await rpm('-Kv', pkg);
    for (const d of ['Header SHA256 digest: OK', 'Header SHA1 digest: OK', 'Payload SHA256 digest: OK', 'MD5 digest: OK']) expect(out).to.include(d);
    expect(out).not.to.match(/BAD|NOT OK/);
    expect((await rpm('-K', pkg)).trim()).to.equal(`${pkg}: digests OK`);
  });

  it('rpm -K notices a flipped byte in the payload and in the header', async () => {
    const bytes = await readFile(pkg);
    const dir = await makeTempDir('vdeploy-rpm-bad-');
    const payloadBad = Buffer.from(bytes);
    payloadBad[payloadBad.length - 20]! ^= 0xff;
    await writeFile(join(dir, 'p.rpm'), payloadBad);
    const headerBad = Buffer.from(bytes);
    const at = headerBad.indexOf('an app in a venv');
    headerBad[at]! ^= 0x20;
    await writeFile(join(dir, 'h.rpm'), headerBad);
    for (const f of ['p.rpm', 'h.rpm']) {
      const r = await run('rpm', ['-Kv', join(dir, f)]).then(() => 0, (e: { code: number; stdout: string }) => e);
      expect(r, f).to.not.equal(0);
    }
  });

  it('rpm -qpl lists the owned paths; shared system dirs (/etc, /opt, /lib/systemd...) are not owned', async () => {
    const listed = (await rpm('-qpl', pkg)).trim().split('\n');
    expect(listed).to.deep.equal(owned(tree).map((e) => e.path).sort());
    expect(listed).to.not.include.members(['/etc', '/opt', '/lib', '/lib/systemd', '/lib/systemd/system']);
  });

  it('rpm -qp --dump: sizes, mtimes, sha256 digests, modes, owners, link targets, config flag', async () => {
    const rows = (await rpm('-qp', '--dump', pkg)).trim().split('\n').map((l) => l.split(' '));
    const byPath = new Map(rows.map((r) => [r[0]!, r]));
    for (const e of owned(tree)) {
      const [, size, mtime, digest, mode, user, group, isConfig, , , link] = byPath.get(e.path)!;
      expect([mtime, user, group], e.path).to.deep.equal(['1790000000', 'root', 'root']);
      if (e.kind === 'file') {
        expect([size, digest, mode], e.path).to.deep.equal([String(e.content.length), createHash('sha256').update(e.content).digest('hex'), `0100${e.mode.toString(8)}`]);
        expect(isConfig, e.path).to.equal(tree.conffiles.includes(e.path) ? '1' : '0');
      } else if (e.kind === 'symlink') {
        expect([mode, link], e.path).to.deep.equal(['0120777', e.target]);
      } else {
        expect(mode, e.path).to.equal(`040${e.mode.toString(8)}`);
      }
    }
    expect(await rpm('-qp', '--qf', '[%{FILEDIGESTALGO}]', pkg)).to.equal('8');
  });

  it('rpm2cpio: the payload is a cpio newc of ./-prefixed names whose size is the signature\'s PAYLOADSIZE', async () => {
    const cpio = (await promisify(execFile)('rpm2cpio', [pkg], { encoding: 'buffer', maxBuffer: 1 << 24 })).stdout;
    expect(cpio.subarray(0, 6).toString()).to.equal('070701');
    expect(cpio.includes('./opt/vdeploy-rpmtest/venv/bin/app\0')).to.equal(true);
    expect(cpio.includes('TRAILER!!!\0')).to.equal(true);
    expect(await rpm('-qp', '--qf', '%{ARCHIVESIZE}', pkg)).to.equal(String(cpio.length));
  });

  it('rpm -qp --configfiles lists the conffiles as %config(noreplace)', async () => {
    expect((await rpm('-qp', '--configfiles', pkg)).trim()).to.equal('/etc/vdeploy-rpmtest/app.ini');
    expect((await rpm('-qp', '--qf', '[%{FILENAMES} %{FILEFLAGS:fflags}\n]', pkg))).to.include('/etc/vdeploy-rpmtest/app.ini cn\n');
  });

  it('rpm -qp --scripts: %post, %preun, %postun with /bin/sh; removal-only guards on %preun/%postun', async () => {
    const out = await rpm('-qp', '--scripts', pkg);
    expect(out).to.include('postinstall scriptlet (using /bin/sh):\nset -e\nif [ -d /run/systemd/system ]; then systemctl daemon-reload; fi\n');
    expect(out).to.include('preuninstall scriptlet (using /bin/sh):\nset -e\nif [ "$1" = 0 ]; then\nsystemctl stop vdeploy-rpmtest.service || true\nfi\n');
    expect(out).to.include('postuninstall scriptlet (using /bin/sh):\nset -e\nif [ "$1" = 0 ]; then\nrm -rf /var/lib/vdeploy-rpmtest\nfi\n');
    expect(out).not.to.include('preinstall');
  });

  it('rpm -qpR: the tree\'s requires, /bin/sh, and the rpmlib() features the format uses; provides name = evr', async () => {
    const reqs = (await rpm('-qpR', pkg)).trim().split('\n');
    expect(reqs).to.deep.equal(['/bin/sh', 'libpq >= 13', 'python3.11', 'rpmlib(CompressedFileNames) <= 3.0.4-1',
      'rpmlib(FileDigests) <= 4.6.0-1', 'rpmlib(PayloadFilesHavePrefix) <= 4.0-1'].sort());
    expect((await rpm('-qp', '--provides', pkg)).trim()).to.equal('vdeploy-rpmtest = 1.4.2-3');
    expect(await rpm('-qp', '--qf', '%{PAYLOADDIGESTALGO} %{PAYLOADDIGEST}', pkg)).to.match(/^8 [0-9a-f]{64}$/);
  });

  it('installs into a scratch root: the files there equal the tree (content, modes, symlinks), nothing else', async function () {
    if (process.getuid?.() !== 0) this.skip(); // rpm --root chroots
    const root = await makeTempDir('vdeploy-rpm-root-');
    // --dbpath is taken inside --root: the database lands in ROOT/rpmdb.
    await rpm('--root', root, '--dbpath', '/rpmdb', '--initdb');
    await run('rpm', ['-i', '--root', root, '--dbpath', '/rpmdb', '--nodeps', '--noscripts', pkg]);
    expect((await rpm('-q', '--root', root, '--dbpath', '/rpmdb', 'vdeploy-rpmtest')).trim()).to.equal('vdeploy-rpmtest-1.4.2-3.noarch');
    for (const e of tree.entries) {
      const at = join(root, e.path);
      const st = await lstat(at);
      if (e.kind === 'file') {
        expect(st.isFile(), e.path).to.equal(true);
        expect(st.mode & 0o7777, e.path).to.equal(e.mode);
        expect((await readFile(at)).equals(e.content), e.path).to.equal(true);
      } else if (e.kind === 'symlink') {
        expect(await readlink(at), e.path).to.equal(e.target);
      } else {
        expect(st.isDirectory(), e.path).to.equal(true);
        if (owned(tree).includes(e)) expect(st.mode & 0o7777, e.path).to.equal(e.mode);
      }
    }
    const found = (await readdir(root, { recursive: true })).map((p) => `/${p}`).filter((p) => !p.startsWith('/rpmdb')).sort();
    expect(found).to.deep.equal(tree.entries.map((e) => e.path).sort());
    expect((await run('rpm', ['-V', '--root', root, '--dbpath', '/rpmdb', '--nodeps', 'vdeploy-rpmtest']).then((r) => r.stdout))).to.equal('');
  });

  it('is reproducible: the same tree gives byte-identical packages', () => {
    const a = writeRpm(sampleTree());
    const b = writeRpm(sampleTree());
    expect(a.equals(b)).to.equal(true);
    expect(writeRpm({ ...sampleTree(), mtime: tree.mtime + 1 }).equals(a)).to.equal(false);
  });

  it('a package owning no path (only shared dirs), without scripts or requires: valid, digests OK', async () => {
    const dir = await makeTempDir('vdeploy-rpm-empty-');
    const f = join(dir, 'empty.rpm');
    await writeFile(f, writeRpm({ ...sampleTree(), entries: [{ kind: 'dir', path: '/opt', mode: 0o755 }], conffiles: [], scripts: {},
      meta: { ...sampleTree().meta, requires: [] } }));
    expect((await rpm('-K', f)).trim()).to.equal(`${f}: digests OK`);
    expect((await rpm('-qpl', f)).trim()).to.equal('(contains no files)');
    expect((await rpm('-qpR', f)).trim().split('\n')).to.have.length(3);
  });

  it('refuses a version rpm cannot carry, naming the field', () => {
    expect(() => writeRpm({ ...sampleTree(), meta: { ...sampleTree().meta, version: '1.0-rc1' } })).to.throw(/version "1\.0-rc1" cannot be an rpm Version/);
  });

  it('in a root with a /bin/sh: scriptlets run with rpm\'s $1, upgrade keeps an edited conffile (.rpmnew), erase removes the rest', async function () {
    if (process.getuid?.() !== 0) this.skip();
    const root = await makeTempDir('vdeploy-rpm-scripts-');
    await shellInto(root);
    const db = ['--root', root, '--dbpath', '/rpmdb', '--nodeps'];
    await rpm('--root', root, '--dbpath', '/rpmdb', '--initdb');
    const version = (iteration: number, ini: string): PackageTree => {
      const t = sampleTree();
      t.meta = { ...t.meta, iteration };
      t.entries = t.entries.map((e) => (e.path === '/etc/vdeploy-rpmtest/app.ini' && e.kind === 'file' ? { ...e, content: Buffer.from(ini) } : e));
      t.scripts = { postinst: 'echo "post $1" >> /scriptlog', prerm: 'echo "preun $1" >> /scriptlog', postrm: 'echo "postun $1" >> /scriptlog' };
      return t;
    };
    const pkgs = await makeTempDir('vdeploy-rpm-pkgs-');
    const write = async (t: PackageTree) => {
      const f = join(pkgs, rpmFileName(t.meta));
      await writeFile(f, writeRpm(t));
      return f;
    };
    const ini = join(root, 'etc/vdeploy-rpmtest/app.ini');
    await run('rpm', ['-i', ...db, await write(version(1, 'workers = 4\n'))]);
    await writeFile(ini, 'workers = 16  # edited by the admin\n');
    await run('rpm', ['-U', ...db, await write(version(2, 'workers = 8\n'))]);
    expect(await readFile(ini, 'utf8')).to.equal('workers = 16  # edited by the admin\n');
    expect(await readFile(`${ini}.rpmnew`, 'utf8')).to.equal('workers = 8\n');
    // The old version's %preun/%postun ran with $1 = 1 (an upgrade) and so did nothing.
    expect(await readFile(join(root, 'scriptlog'), 'utf8')).to.equal('post 1\npost 2\n');
    await run('rpm', ['-e', ...db, 'vdeploy-rpmtest']);
    expect(await readFile(join(root, 'scriptlog'), 'utf8')).to.equal('post 1\npost 2\npreun 0\npostun 0\n');
    expect(await readFile(`${ini}.rpmsave`, 'utf8')).to.equal('workers = 16  # edited by the admin\n');
    await lstat(join(root, 'opt/vdeploy-rpmtest')).then(() => expect.fail('/opt/vdeploy-rpmtest left behind'), () => undefined);
  });
});

/** Copy this machine's /bin/sh and the libraries it loads (ldd) into `root`, so rpm's chrooted scriptlets can run. */
async function shellInto(root: string): Promise<void> {
  const sh = (await run('readlink', ['-f', '/bin/sh'])).stdout.trim();
  const libs = (await run('ldd', [sh])).stdout.match(/\/\S+/g) ?? [];
  for (const f of [...libs, '/bin/sh']) {
    await mkdir(join(root, dirname(f)), { recursive: true });
    await copyFile(f === '/bin/sh' ? sh : f, join(root, f));
  }
  await run('chmod', ['0755', join(root, 'bin/sh')]);
}
