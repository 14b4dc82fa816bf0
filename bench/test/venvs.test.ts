// The benchmark's venvs: made from a template (equal to what `python3 -m venv` makes), cloned to
// another path with its absolute paths rewritten, and checked against an expected set.
import { expect } from 'chai';
import { readFileSync, readdirSync, writeFileSync, mkdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { makeTempDir } from '../../test/helpers/cli.js';
import { LocalConnection } from '../../src/remote/local-connection.js';
import { snapshotTree, restoreTree } from '../tree-snapshot.js';
import { checkVenv, cloneSnapshot, createTemplateVenv, createVenvFromTemplate, readInstalled, sitePackagesOf } from '../venvs.js';

const local = new LocalConnection();

describe('bench venvs', function () {
  this.timeout(120_000);
  let dir: string;
  let template: string;

  before(async () => {
    dir = await makeTempDir('vdeploy-bench-venvs-');
    template = join(dir, 'tplvenvq');
    await createTemplateVenv(template);
  });

  it('makes a venv from the template that pip works in, with the same packages', async () => {
    const venv = join(dir, 'madevenvq');
    await createVenvFromTemplate(template, venv);
    const pip = await local.exec([join(venv, 'bin', 'python'), '-m', 'pip', '--version'], { env: { PIP_CONFIG_FILE: '/dev/null' } });
    expect(pip.stdout).to.include(sitePackagesOf(venv));
    expect([...readInstalled(venv)]).to.deep.equal([...readInstalled(template)]);
    expect(readFileSync(join(venv, 'bin', 'pip'), 'utf8').split('\n')[0]).to.equal(`#!${venv}/bin/python3`);
    expect(readFileSync(join(venv, 'pyvenv.cfg'), 'utf8')).to.include(`command = /usr/bin/python3 -m venv ${venv}`);
    // Everything else is byte for byte what the template has, minus the venv's own path.
    const norm = (v: string, f: string) => readFileSync(join(v, f), 'utf8').split(v).join('VENV').split(basename(v)).join('NAME');
    for (const f of readdirSync(join(template, 'bin')).filter((n) => !n.startsWith('python'))) expect(norm(venv, join('bin', f)), f).to.equal(norm(template, join('bin', f)));
  });

  it('clones a venv snapshot to another path, rewriting the paths that name it', async () => {
    const a = join(dir, 'a');
    const b = join(dir, 'b');
    await createVenvFromTemplate(template, a);
    await createVenvFromTemplate(template, b);
    mkdirSync(join(a, '.vdeploy'));
    writeFileSync(join(a, '.vdeploy', 'history.jsonl'), `{"venv": "${a}"}\n`);
    const snap = snapshotTree(a, join(dir, 'snap-a'));
    const clone = cloneSnapshot(snap, { venv: a, cache: '/cache-a' }, { venv: b, cache: '/cache-b' }, join(dir, 'clone-b'));
    restoreTree(clone, b);
    expect(readFileSync(join(b, 'bin', 'pip'), 'utf8').split('\n')[0]).to.equal(`#!${b}/bin/python3`);
    expect(readFileSync(join(b, '.vdeploy', 'history.jsonl'), 'utf8')).to.equal(`{"venv": "${b}"}\n`);
    expect(readFileSync(join(a, 'bin', 'pip'), 'utf8').split('\n')[0]).to.equal(`#!${a}/bin/python3`);
    const pip = await local.exec([join(b, 'bin', 'pip'), '--version'], { env: { PIP_CONFIG_FILE: '/dev/null' } });
    expect(pip.stdout).to.include(sitePackagesOf(b));
  });

  it('reports every difference from the expected set, and a wrong app version on disk', () => {
    const base = readInstalled(template);
    expect(checkVenv(template, base)).to.deep.equal([]);
    const wanted = new Map([...base, ['shopapp', '1.1']]);
    const problems = checkVenv(template, wanted, { name: 'shopapp', version: '1.1' });
    expect(problems).to.have.length(2);
    expect(problems[0]).to.match(/shopapp missing, expected 1\.1/);
    expect(problems[1]).to.match(/shopapp\/__init__\.py is not version 1\.1/);
    const fewer = new Map([...base].slice(1));
    expect(checkVenv(template, fewer)[0]).to.match(/unexpected /);
  });
});
