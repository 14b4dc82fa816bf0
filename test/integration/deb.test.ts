/**
 * The .deb writer against Debian's own tools (issue 19): dpkg-deb reads the control fields, lists and
 * extracts exactly the tree (modes, owner, symlink, a pax-length path), the control archive carries
 * md5sums that match, conffiles and the scripts with their preamble; lintian finds nothing beyond the
 * accepted tags; the same tree gives the same bytes.
 */
import { execFile } from 'node:child_process';
import { lstat, mkdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { debFileName, writeDeb } from '../../src/package/deb.js';
import type { PackageTree } from '../../src/package/tree.js';
import { makeTempDir } from '../helpers/cli.js';
import { LONG_DIR, syntheticTree } from '../helpers/deb-tree.js';
import { lintian } from '../helpers/lintian.js';

const DEPENDS = ['dpkg (>= 1.17)', 'libc6'];
const run = async (cmd: string, args: string[], cwd?: string) => (await promisify(execFile)(cmd, args, { cwd, maxBuffer: 64 * 1024 * 1024 })).stdout;

describe('writeDeb (dpkg-deb and lintian as oracles)', function () {
  this.timeout(180_000);
  let dir: string;
  let tree: PackageTree;
  let deb: string;

  before(async () => {
    dir = await makeTempDir('vdeploy-deb-int-');
    tree = syntheticTree({ name: 'vdeploy-test-pkg', oddModes: true });
    tree.meta.depends = DEPENDS;
    deb = join(dir, debFileName(tree.meta));
    await writeFile(deb, await writeDeb(tree));
  });

  it('is named name_version-iteration_arch.deb and dpkg-deb --info shows the control fields', async () => {
    expect(deb.endsWith('/vdeploy-test-pkg_1.0-1_all.deb')).to.equal(true);
    const field = async (f: string) => (await run('dpkg-deb', ['--field', deb, f])).trim();
    expect(await field('Package')).to.equal('vdeploy-test-pkg');
    expect(await field('Version')).to.equal('1.0-1');
    expect(await field('Architecture')).to.equal('all');
    expect(await field('Maintainer')).to.equal('vdeploy tests <tests@example.com>');
    expect(await field('Depends')).to.equal('dpkg (>= 1.17), libc6');
    expect(await field('Section')).to.equal('misc');
    expect(await field('Priority')).to.equal('optional');
    expect(await field('Homepage')).to.equal('https://example.com/vdeploy');
    // KiB rounded up per file (data.txt 3500 bytes: 4; hello, long-file-name.txt, café.txt, app.conf: 1 each; empty: 0),
    // 1 per directory (/etc, /etc/NAME, /opt, the prefix, bin, share and LONG_DIR's 3) and per symlink (2).
    expect(Number(await field('Installed-Size'))).to.equal(4 + 4 + 0 + (6 + LONG_DIR.split('/').length) + 2);
    expect(await field('Description')).to.equal(
      'Synthetic package for the vdeploy tests\n A tree with files, a symlink, a config file and\n maintainer scripts.\n .\n Second paragraph.',
    );
    const info = await run('dpkg-deb', ['--info', deb]);
    expect(info).to.match(/new Debian package, version 2\.0/);
    expect(info).to.match(/ postinst +#!\/bin\/sh/);
  });

  it('dpkg-deb --contents lists every path with parents, modes and root ownership', async () => {
    const lines = (await run('dpkg-deb', ['--contents', deb])).trim().split('\n');
    const rows = lines.map((l) => {
      const m = /^(\S+) (\S+) +\d+ \S+ \S+ (.*)$/.exec(l)!;
      return { mode: m[1]!, owner: m[2]!, name: m[3]! };
    });
    expect(rows.every((r) => r.owner === 'root/root')).to.equal(true);
    const names = rows.map((r) => r.name);
    expect(names.slice(0, 4)).to.deep.equal(['./', './etc/', './etc/vdeploy-test-pkg/', './etc/vdeploy-test-pkg/app.conf']);
    expect(names).to.include('./opt/').and.to.include('./opt/vdeploy-test-pkg/lib/');
    expect(names).to.include(`./opt/vdeploy-test-pkg/${LONG_DIR}/long-file-name.txt`);
    const mode = (n: string) => rows.find((r) => r.name === n)?.mode;
    expect(mode('./opt/vdeploy-test-pkg/bin/hello')).to.equal('-rwxr-xr-x');
    expect(mode('./opt/vdeploy-test-pkg/share/')).to.equal('drwxr-x---');
    expect(mode('./opt/vdeploy-test-pkg/share/data.txt')).to.equal('-rw-r-----');
    expect(mode('./opt/vdeploy-test-pkg/current -> bin/hello')).to.equal('lrwxrwxrwx');
    expect([...names].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))).to.deep.equal(names);
  });

  it('dpkg-deb -x extracts the tree byte for byte', async () => {
    const root = join(dir, 'x');
    await run('dpkg-deb', ['-x', deb, root]);
    for (const e of tree.entries) {
      const p = join(root, e.path);
      const st = await lstat(p);
      if (e.kind === 'file') {
        expect((await readFile(p)).equals(e.content), e.path).to.equal(true);
        expect(st.mode & 0o7777, e.path).to.equal(e.mode);
      } else if (e.kind === 'symlink') expect(await readlink(p)).to.equal(e.target);
      else expect(st.isDirectory() && (st.mode & 0o7777) === e.mode, e.path).to.equal(true);
    }
  });

  it('the control archive has md5sums that match, conffiles, and the scripts with the sh preamble', async () => {
    const ctl = join(dir, 'ctl');
    await run('dpkg-deb', ['--control', deb, ctl]);
    expect(await readFile(join(ctl, 'conffiles'), 'utf8')).to.equal('/etc/vdeploy-test-pkg/app.conf\n');
    const md5 = await readFile(join(ctl, 'md5sums'), 'utf8');
    expect(md5).to.not.include('app.conf'); // dpkg tracks conffiles' sums itself, as dh_md5sums leaves them out
    expect(md5.trim().split('\n')).to.have.length(5);
    const root = join(dir, 'x');
    await run('md5sum', ['--check', '--strict', '--quiet', join(ctl, 'md5sums')], root);
    for (const s of ['postinst', 'prerm', 'postrm']) {
      expect(await readFile(join(ctl, s), 'utf8')).to.equal(`#!/bin/sh\nset -e\necho ${s} "$@"\n`);
      expect((await lstat(join(ctl, s))).mode & 0o777).to.equal(0o755);
    }
  });

  it('lintian reports no error or warning beyond the accepted tags', async () => {
    const t = syntheticTree({ name: 'vdeploy-test-lint' });
    t.meta.depends = DEPENDS;
    const path = join(dir, debFileName(t.meta));
    await writeFile(path, await writeDeb(t));
    const { tags, output } = await lintian(path);
    const bad = tags.filter((t) => t.severity === 'E' || t.severity === 'W');
    expect(bad, output).to.deep.equal([]);
  });

  it('is reproducible: the same tree, even in another order, gives the same bytes', async () => {
    const again = syntheticTree({ name: 'vdeploy-test-pkg', oddModes: true });
    again.meta.depends = DEPENDS;
    again.entries.reverse();
    const [a, b] = [await readFile(deb), await writeDeb(again)];
    expect(b.equals(a)).to.equal(true);
    const later = syntheticTree({ name: 'vdeploy-test-pkg', oddModes: true });
    later.meta.depends = DEPENDS;
    later.mtime += 1;
    expect((await writeDeb(later)).equals(a)).to.equal(false);
  });

  it('a package without scripts, conffiles or long description is still lintian-clean', async () => {
    const t = syntheticTree({ name: 'vdeploy-test-bare', scripts: {} });
    t.entries = t.entries.filter((e) => !e.path.startsWith('/etc'));
    t.conffiles = [];
    t.meta.description = '';
    const path = join(dir, 'bare', debFileName(t.meta));
    await mkdir(join(dir, 'bare'));
    await writeFile(path, await writeDeb(t));
    const info = await run('dpkg-deb', ['--info', path]);
    expect(info).to.not.match(/conffiles|postinst|prerm|postrm/);
    expect((await run('dpkg-deb', ['--field', path, 'Description'])).trim()).to.equal(
      'Synthetic package for the vdeploy tests\n vdeploy-test-bare 1.0-1, packaged by vdeploy.',
    );
    const { tags, output } = await lintian(path);
    expect(tags.filter((x) => x.severity === 'E' || x.severity === 'W'), output).to.deep.equal([]);
  });

  it('refuses a conffile the package does not install, naming it', async () => {
    const t = syntheticTree();
    t.conffiles.push('/etc/vdeploy-test-pkg/missing.conf');
    let err: unknown;
    await writeDeb(t).catch((e: unknown) => (err = e));
    expect(String(err)).to.match(/conffile \/etc\/vdeploy-test-pkg\/missing\.conf is not a regular file/);
  });
});
