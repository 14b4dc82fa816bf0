/**
 * The pure parts of the .deb writer (issue 19): the ar format byte for byte, the control text
 * (Description folding, optional fields), file names, and the refusals of a bad tree or metadata.
 */
import { expect } from 'chai';
import { readAr, writeAr } from '../../src/package/ar.js';
import { releaseText } from '../../src/package/apt-repo.js';
import { controlText, debFileName, descriptionValue, installedSizeKiB, scriptText, writeDeb } from '../../src/package/deb.js';
import type { PackageTree } from '../../src/package/tree.js';
import { syntheticTree, testMeta } from '../helpers/deb-tree.js';

const refusal = async (tree: PackageTree) => {
  try {
    await writeDeb(tree);
  } catch (err) {
    return String(err);
  }
  return 'no error';
};

describe('ar archives', () => {
  it('writes the System V format with padding to even offsets, and reads it back', () => {
    const ar = writeAr([
      { name: 'debian-binary', data: Buffer.from('2.0\n'), mtime: 1700000000 },
      { name: 'odd', data: Buffer.from('abc'), mode: 0o755 },
      { name: 'last', data: Buffer.from('xy') },
    ]);
    expect(ar.subarray(0, 68).toString('latin1')).to.equal(`!<arch>\ndebian-binary   1700000000  0     0     100644  4         \`\n`);
    expect(ar.length).to.equal(8 + 60 + 4 + 60 + 3 + 1 + 60 + 2);
    expect(ar.subarray(8 + 64 + 60 + 3, 8 + 64 + 60 + 4).toString()).to.equal('\n');
    const back = readAr(ar, 'test.deb');
    expect(back.map((m) => [m.name, m.data.toString(), m.mode, m.mtime])).to.deep.equal([
      ['debian-binary', '2.0\n', 0o644, 1700000000],
      ['odd', 'abc', 0o755, 0],
      ['last', 'xy', 0o644, 0],
    ]);
  });

  it('refuses names it cannot write and archives it cannot read', () => {
    expect(() => writeAr([{ name: 'a-name-too-long-for-ar', data: Buffer.alloc(0) }])).to.throw(/1–15 characters/);
    expect(() => readAr(Buffer.from('PK\x03\x04'), 'x.deb')).to.throw(/x\.deb is not an ar archive/);
    const cut = writeAr([{ name: 'a', data: Buffer.from('abcdef') }]).subarray(0, 70);
    expect(() => readAr(cut, 'x.deb')).to.throw(/x\.deb is truncated/);
  });
});

describe('the control file', () => {
  it('folds the description: indented lines, " ." for blank ones, trailing space dropped', () => {
    const meta = testMeta({ summary: 'Shop app', description: 'First line.  \n\n  verbatim\nlast\n\n' });
    expect(descriptionValue(meta)).to.equal('Shop app\n First line.\n .\n   verbatim\n last');
    expect(descriptionValue(testMeta({ name: 'shop', summary: 'Shop app', description: '' }))).to.equal('Shop app\n shop 1.0-1, packaged by vdeploy.');
  });

  it('has the fields in order, Depends joined, optional ones only when given', () => {
    const tree = syntheticTree();
    tree.meta = testMeta({ name: 'shop', depends: ['python3.11', 'libpq5'], homepage: undefined, description: 'x' });
    expect(controlText(tree, 12)).to.equal(
      'Package: shop\nVersion: 1.0-1\nArchitecture: all\nMaintainer: vdeploy tests <tests@example.com>\nInstalled-Size: 12\n' +
        'Depends: python3.11, libpq5\nSection: misc\nPriority: optional\nDescription: Synthetic package for the vdeploy tests\n x\n',
    );
    tree.meta.depends = [];
    expect(controlText(tree, 1)).to.not.include('Depends');
  });

  it('counts Installed-Size in KiB per file, 1 per directory or symlink', () => {
    expect(installedSizeKiB([
      { kind: 'dir', path: '/a', mode: 0o755 },
      { kind: 'file', path: '/a/b', mode: 0o644, content: Buffer.alloc(1025) },
      { kind: 'file', path: '/a/c', mode: 0o644, content: Buffer.alloc(1024) },
      { kind: 'symlink', path: '/a/d', target: 'b' },
    ])).to.equal(1 + 2 + 1 + 1);
  });

  it('names the file name_version-iteration_arch.deb, without an epoch', () => {
    expect(debFileName(testMeta({ name: 'myshop', version: '1.4.2', iteration: 3, architecture: 'amd64' }))).to.equal('myshop_1.4.2-3_amd64.deb');
    expect(debFileName(testMeta({ name: 'myshop', version: '2:1.0', iteration: 1 }))).to.equal('myshop_1.0-1_all.deb');
  });

  it('starts scripts with the sh preamble unless they have their own #! line', () => {
    expect(scriptText('systemctl daemon-reload')).to.equal('#!/bin/sh\nset -e\nsystemctl daemon-reload\n');
    expect(scriptText('#!/bin/bash\necho hi\n')).to.equal('#!/bin/bash\necho hi\n');
  });
});

describe('writeDeb refusals', () => {
  it('names the bad field or path', async () => {
    const t = () => syntheticTree();
    const bad = (f: (tree: PackageTree) => void) => {
      const tree = t();
      f(tree);
      return refusal(tree);
    };
    expect(await bad((x) => (x.meta.name = 'My_Shop'))).to.match(/package name "My_Shop" is not a valid Debian package name/);
    expect(await bad((x) => (x.meta.version = 'v1.0'))).to.match(/package version "v1\.0" is not a valid Debian upstream version/);
    expect(await bad((x) => (x.meta.summary = ''))).to.match(/needs a one-line summary/);
    expect(await bad((x) => (x.meta.depends = ['a, b']))).to.match(/multi-part dependency/);
    expect(await bad((x) => x.entries.push({ kind: 'file', path: '/opt/vdeploy-test-pkg/bin/hello', mode: 0o644, content: Buffer.alloc(0) }))).to.match(/"\/opt\/vdeploy-test-pkg\/bin\/hello" appears twice/);
    expect(await bad((x) => x.entries.push({ kind: 'file', path: '/opt/../etc/passwd', mode: 0o644, content: Buffer.alloc(0) }))).to.match(/not a normalized absolute path/);
    expect(await bad((x) => x.entries.push({ kind: 'file', path: '/opt/vdeploy-test-pkg/bin/hello/x', mode: 0o644, content: Buffer.alloc(0) }))).to.match(/is a file but/);
  });
});

describe('the Release file', () => {
  it('has the date in UTC and each index file\'s sums and size', () => {
    const text = releaseText(1700000000, { Packages: Buffer.from('abc') });
    expect(text).to.equal(
      'Origin: vdeploy\nLabel: vdeploy\nDate: Tue, 14 Nov 2023 22:13:20 UTC\n' +
        'MD5Sum:\n 900150983cd24fb0d6963f7d28e17f72                3 Packages\n' +
        'SHA1:\n a9993e364706816aba3e25717850c26c9cd0d89d                3 Packages\n' +
        'SHA256:\n ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad                3 Packages\n',
    );
  });
});
