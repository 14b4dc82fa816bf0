import { expect } from 'chai';
import { builtFrom, entryInstalled, shortCommits } from '../../src/status/built-from.js';
import type { ReleasedWheel } from '../../src/wheels/repository.js';
import { normalizeName, parseWheelFilename } from '../../src/wheels/wheel-filename.js';

const C1 = '1'.repeat(40);
const C2 = '2'.repeat(40);

function released(filename: string, commit?: string, sha256?: string): ReleasedWheel {
  const wheel = parseWheelFilename(filename);
  return {
    name: wheel.name,
    normalizedName: normalizeName(wheel.name),
    version: wheel.version,
    filename,
    ...(sha256 ? { sha256 } : {}),
    ...(commit ? { commit } : {}),
    addedAt: '2026-12-04T10:00:00.000Z',
    lineNumber: 1,
    wheel,
  };
}

describe('which commit a venv runs (release log lookup)', () => {
  const log = [
    released('django-5.2.17-py3-none-any.whl'),
    released('shop_app-1.0-py3-none-any.whl', C1),
    released('shop_app-1.1-py3-none-any.whl', C2),
  ];
  it('finds the installed packages built from a commit, by normalized name and PEP 440 version', () => {
    expect(builtFrom([{ name: 'Django', version: '5.2.17' }, { name: 'shop-app', version: '1.1.0' }], log)).to.deep.equal([
      { name: 'shop_app', version: '1.1', commit: C2, filename: 'shop_app-1.1-py3-none-any.whl' },
    ]);
  });
  it('finds nothing for packages not built from git, or versions not in the log', () => {
    expect(builtFrom([{ name: 'django', version: '5.2.17' }, { name: 'shop_app', version: '2.0' }], log)).to.deep.equal([]);
    expect(builtFrom([{ name: 'shop_app', version: '1.0' }], [])).to.deep.equal([]);
  });
  it('prefers the wheel the venv was installed from, else the newest release line', () => {
    const two = [released('app-1.0-py3-none-any.whl', C1, 'a'.repeat(64)), released('app-1.0-cp311-cp311-linux_x86_64.whl', C2, 'b'.repeat(64))];
    expect(builtFrom([{ name: 'app', version: '1.0' }], two)[0]!.commit).to.equal(C2);
    expect(builtFrom([{ name: 'app', version: '1.0', wheel: 'app-1.0-py3-none-any.whl', sha256: 'a'.repeat(64) }], two)[0]!.commit).to.equal(C1);
    // Same filename, other bytes (a --force rebuild): the hash does not match, so the newest line stands.
    expect(builtFrom([{ name: 'app', version: '1.0', wheel: 'app-1.0-py3-none-any.whl', sha256: 'c'.repeat(64) }], two)[0]!.commit).to.equal(C2);
  });
  it("reads a history entry's resulting set with the wheels it names", () => {
    const entry = {
      after: { app: '1.0', django: '5.2.17' },
      packages: [{ name: 'app', version: '1.0', wheel: 'app-1.0-py3-none-any.whl', sha256: 'a'.repeat(64) }],
    };
    expect(entryInstalled(entry)).to.deep.equal([
      { name: 'app', version: '1.0', wheel: 'app-1.0-py3-none-any.whl', sha256: 'a'.repeat(64) },
      { name: 'django', version: '5.2.17' },
    ]);
  });
  it('says one commit short, several with their package names', () => {
    const one = [{ name: 'app', version: '1', commit: C1, filename: 'app-1-py3-none-any.whl' }];
    expect(shortCommits(one)).to.equal('111111111111');
    expect(shortCommits([...one, { name: 'lib', version: '2', commit: C2, filename: 'lib-2-py3-none-any.whl' }])).to.equal('app@111111111111, lib@222222222222');
  });
});
