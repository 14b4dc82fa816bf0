import { expect } from 'chai';
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { readRunpaths, rewriteRunpaths } from '../../src/package/elf-runpath.js';

const PYENV = '/root/.pyenv/versions/3.12.1';

describe('ELF run paths (issue 19: shipping a pyenv CPython)', () => {
  it('is undefined for a file that is not ELF64', () => {
    expect(readRunpaths(Buffer.from('#!/bin/sh\n'))).to.equal(undefined);
  });

  it("reads and rewrites a pyenv python's RUNPATH in place (readelf agrees)", async function () {
    if (!existsSync(`${PYENV}/bin/python3.12`)) this.skip();
    const elf = await readFile(`${PYENV}/bin/python3.12`);
    expect(readRunpaths(elf)!.map((p) => p.value)).to.deep.equal([`${PYENV}/lib`]);
    const out = rewriteRunpaths(elf, () => '$ORIGIN/../lib');
    expect(out.length).to.equal(elf.length);
    expect(readRunpaths(out)!.map((p) => p.value)).to.deep.equal(['$ORIGIN/../lib']);
    expect(readRunpaths(elf)!.map((p) => p.value)).to.deep.equal([`${PYENV}/lib`]);
    expect(() => rewriteRunpaths(elf, (old) => `${old}/much/longer`)).to.throw(/longer/);
  });
});
