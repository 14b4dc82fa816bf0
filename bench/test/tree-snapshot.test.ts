// The benchmark's resets: snapshots by hard links, restored exactly, damage detected.
import { expect } from 'chai';
import { appendFileSync, existsSync, linkSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeTempDir } from '../../test/helpers/cli.js';
import { deriveSnapshot, restoreTree, snapshotTree } from '../tree-snapshot.js';

function listTree(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(dir, rel), { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(`${p}/`, ...listTree(dir, p));
    else if (e.isSymbolicLink()) out.push(`${p} -> ${readlinkSync(join(dir, p))}`);
    else out.push(`${p}: ${readFileSync(join(dir, p), 'utf8')}`);
  }
  return out;
}

describe('bench tree snapshots', () => {
  let root: string;
  let venv: string;

  beforeEach(async () => {
    root = await makeTempDir('vdeploy-bench-tree-');
    venv = join(root, 'venv');
    mkdirSync(join(venv, 'lib', 'site-packages', 'app'), { recursive: true });
    mkdirSync(join(venv, '.vdeploy'), { recursive: true });
    writeFileSync(join(venv, 'lib', 'site-packages', 'app', '__init__.py'), 'v1');
    writeFileSync(join(venv, 'lib', 'site-packages', 'app-1.0.dist-info'), 'meta 1.0');
    writeFileSync(join(venv, '.vdeploy', 'history.jsonl'), 'one\n');
    writeFileSync(join(venv, 'target'), 't');
    symlinkSync('target', join(venv, 'python'));
  });

  it('restores a tree changed the way pip changes it (unlink, create, rename) to exactly the snapshot', () => {
    const snap = snapshotTree(venv, join(root, 'snap'));
    const before = listTree(venv);
    unlinkSync(join(venv, 'lib', 'site-packages', 'app', '__init__.py'));
    writeFileSync(join(venv, 'lib', 'site-packages', 'app', '__init__.py'), 'v2');
    renameSync(join(venv, 'lib', 'site-packages', 'app-1.0.dist-info'), join(venv, 'lib', 'site-packages', 'app-1.1.dist-info'));
    mkdirSync(join(venv, 'lib', 'site-packages', 'extra'));
    writeFileSync(join(venv, 'lib', 'site-packages', 'extra', 'x.py'), 'x');
    appendFileSync(join(venv, '.vdeploy', 'history.jsonl'), 'two\n');
    unlinkSync(join(venv, 'python'));
    expect(restoreTree(snap, venv)).to.be.greaterThan(0);
    expect(listTree(venv)).to.deep.equal(before);
    // Nothing left to do the second time.
    expect(restoreTree(snap, venv)).to.equal(0);
  });

  it('copies files under .vdeploy, so appending to them never reaches the snapshot', () => {
    const snap = snapshotTree(venv, join(root, 'snap'));
    appendFileSync(join(venv, '.vdeploy', 'history.jsonl'), 'two\n');
    expect(readFileSync(join(root, 'snap', '.vdeploy', 'history.jsonl'), 'utf8')).to.equal('one\n');
    restoreTree(snap, venv);
    expect(readFileSync(join(venv, '.vdeploy', 'history.jsonl'), 'utf8')).to.equal('one\n');
  });

  it('links the other files (same inode) and recreates a tree that was removed', () => {
    const snap = snapshotTree(venv, join(root, 'snap'));
    const ino = lstatSync(join(venv, 'lib', 'site-packages', 'app', '__init__.py')).ino;
    expect(lstatSync(join(root, 'snap', 'lib', 'site-packages', 'app', '__init__.py')).ino).to.equal(ino);
    const before = listTree(venv);
    rmSync(venv, { recursive: true });
    restoreTree(snap, venv);
    expect(listTree(venv)).to.deep.equal(before);
  });

  it('fails loudly when something wrote into a linked file', () => {
    const snap = snapshotTree(venv, join(root, 'snap'));
    // In place, through the link: the snapshot's copy changes too.
    appendFileSync(join(venv, 'lib', 'site-packages', 'app', '__init__.py'), ' and more');
    rmSync(join(venv, 'lib', 'site-packages', 'app-1.0.dist-info')); // make the directory look changed
    expect(() => restoreTree(snap, venv)).to.throw(/damaged: .*__init__\.py/);
  });

  it('sees a change deep inside an unchanged parent directory', () => {
    const snap = snapshotTree(venv, join(root, 'snap'));
    restoreTree(snap, venv); // records the directories as clean
    writeFileSync(join(venv, 'lib', 'site-packages', 'app', 'new.py'), 'new');
    restoreTree(snap, venv);
    expect(existsSync(join(venv, 'lib', 'site-packages', 'app', 'new.py'))).to.equal(false);
  });

  it('keeps two snapshots of one target apart (restoring one, then the other)', () => {
    const a = snapshotTree(venv, join(root, 'a'));
    unlinkSync(join(venv, 'lib', 'site-packages', 'app', '__init__.py'));
    writeFileSync(join(venv, 'lib', 'site-packages', 'app', '__init__.py'), 'v2');
    const b = snapshotTree(venv, join(root, 'b'));
    for (let i = 0; i < 2; i++) {
      restoreTree(a, venv);
      expect(readFileSync(join(venv, 'lib', 'site-packages', 'app', '__init__.py'), 'utf8')).to.equal('v1');
      restoreTree(b, venv);
      expect(readFileSync(join(venv, 'lib', 'site-packages', 'app', '__init__.py'), 'utf8')).to.equal('v2');
    }
  });

  it('derives a snapshot with some files replaced, leaving the source snapshot and the original alone', () => {
    const snap = snapshotTree(venv, join(root, 'snap'));
    const other = join(root, 'other');
    const derived = deriveSnapshot(snap, join(root, 'derived'), new Map([['lib/site-packages/app/__init__.py', 'rewritten'], ['.vdeploy/history.jsonl', 'other\n']]));
    restoreTree(derived, other);
    expect(readFileSync(join(other, 'lib', 'site-packages', 'app', '__init__.py'), 'utf8')).to.equal('rewritten');
    expect(readFileSync(join(other, '.vdeploy', 'history.jsonl'), 'utf8')).to.equal('other\n');
    expect(readFileSync(join(other, 'target'), 'utf8')).to.equal('t');
    expect(readFileSync(join(venv, 'lib', 'site-packages', 'app', '__init__.py'), 'utf8')).to.equal('v1');
    unlinkSync(join(venv, 'lib', 'site-packages', 'app', '__init__.py'));
    restoreTree(snap, venv);
    expect(readFileSync(join(venv, 'lib', 'site-packages', 'app', '__init__.py'), 'utf8')).to.equal('v1');
    expect(restoreTree(derived, other)).to.equal(0);
  });

  it('replaces a file in the target that is a different inode with the same content', () => {
    const snap = snapshotTree(venv, join(root, 'snap'));
    const file = join(venv, 'target');
    unlinkSync(file);
    linkSync(join(venv, 'lib', 'site-packages', 'app-1.0.dist-info'), file);
    restoreTree(snap, venv);
    expect(readFileSync(file, 'utf8')).to.equal('t');
  });
});
