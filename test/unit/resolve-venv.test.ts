import { expect } from 'chai';
import { createHash } from 'node:crypto';
import type { InterpreterFacts } from '../../src/facts/types.js';
import { parseRequirement } from '../../src/requirements/pep508.js';
import type { RequirementLine } from '../../src/requirements/requirements-file.js';
import { resolveVenv, type Resolution, type WheelDependencies } from '../../src/resolve/resolve-venv.js';
import type { ReleasedWheel } from '../../src/wheels/repository.js';
import { normalizeName, parseWheelFilename } from '../../src/wheels/wheel-filename.js';
import { LINUX } from '../helpers/marker-environments.js';

/** Roughly what packaging.tags.sys_tags() lists for Debian 12's CPython 3.11 on x86_64, best first. */
function cp311LinuxTags(): string[] {
  const plats: string[] = [];
  for (let minor = 36; minor >= 5; minor--) {
    plats.push(`manylinux_2_${minor}_x86_64`);
    if (minor === 17) plats.push('manylinux2014_x86_64');
    if (minor === 12) plats.push('manylinux2010_x86_64');
    if (minor === 5) plats.push('manylinux1_x86_64');
  }
  plats.push('linux_x86_64');
  const tags = [
    ...plats.map((p) => `cp311-cp311-${p}`),
    ...plats.map((p) => `cp311-abi3-${p}`),
    ...plats.map((p) => `cp311-none-${p}`),
  ];
  for (let minor = 10; minor >= 2; minor--) tags.push(...plats.map((p) => `cp3${minor}-abi3-${p}`));
  for (const py of ['py311', 'py3', 'py310', 'py39']) tags.push(...plats.map((p) => `${py}-none-${p}`));
  tags.push('cp311-none-any', 'py311-none-any', 'py3-none-any', 'py310-none-any', 'py39-none-any');
  return tags;
}

const CPYTHON_311: InterpreterFacts = {
  version: '3.11.2',
  markers: LINUX,
  supportedTags: cp311LinuxTags(),
};

function sha(filename: string): string {
  return createHash('sha256').update(filename).digest('hex');
}

/** A release line's worth of wheel; `logged: false` leaves the sha256 out, as old release lines do. */
function released(filename: string, options: { logged?: boolean } = {}): ReleasedWheel {
  const wheel = parseWheelFilename(filename);
  return {
    name: wheel.name,
    normalizedName: normalizeName(wheel.name),
    version: wheel.version,
    filename,
    ...(options.logged === false ? {} : { sha256: sha(filename) }),
    addedAt: '2026-01-01T00:00:00.000Z',
    lineNumber: 1,
    wheel,
  };
}

/** `name-version` → a pure-Python wheel filename. */
function pure(nameVersion: string): string {
  return `${nameVersion}-py3-none-any.whl`;
}

interface Repo {
  wheels: ReleasedWheel[];
  /** METADATA by filename; a wheel not listed has no dependencies. */
  metadata: Record<string, WheelDependencies>;
}

interface Run {
  resolution: Resolution;
  /** Filenames whose METADATA the resolver asked for, in order. */
  read: string[];
  hashed: string[];
}

async function resolve(requirements: string[], repo: Repo, interpreter = CPYTHON_311): Promise<Run> {
  const read: string[] = [];
  const hashed: string[] = [];
  const resolution = await resolveVenv({
    requirements: requirements.map(
      (text, i): RequirementLine => ({ requirement: parseRequirement(text), file: '/srv/app/requirements.txt', line: i + 1 }),
    ),
    released: repo.wheels,
    interpreter,
    dependenciesOf: async (w) => {
      read.push(w.filename);
      return repo.metadata[w.filename] ?? { requiresDist: [] };
    },
    sha256Of: async (w) => {
      hashed.push(w.filename);
      return `computed-${w.version}`;
    },
  });
  return { resolution, read, hashed };
}

function repoOf(files: string[], metadata: Record<string, WheelDependencies> = {}): Repo {
  return { wheels: files.map((f) => released(f)), metadata };
}

/** `key==version` of every resolved package, sorted. */
function pins(resolution: Resolution): string[] {
  if (!resolution.ok) expect.fail(`expected a resolution, got: ${resolution.message}`);
  return resolution.packages.map((p) => `${p.key}==${p.version}`);
}

function failure(resolution: Resolution): { message: string; hint: string } {
  if (resolution.ok) expect.fail(`expected a failure, got ${resolution.packages.map((p) => `${p.key}==${p.version}`).join(' ')}`);
  expect(resolution.message).not.to.include('\n');
  expect(resolution.hint).to.be.a('string').that.is.not.empty;
  return resolution;
}

const FOO = repoOf([pure('foo-1.0'), pure('foo-2.0'), pure('foo-1.1'), pure('foo-1.10')]);

describe('resolveVenv', () => {
  describe('versions and specifiers', () => {
    const table: Array<[string, string]> = [
      ['foo', 'foo==2.0'],
      ['foo<2', 'foo==1.10'],
      ['foo<1.5', 'foo==1.1'],
      ['foo~=1.0', 'foo==1.10'],
      ['foo==1.0', 'foo==1.0'],
      ['foo==1.*', 'foo==1.10'],
      ['foo!=2.0', 'foo==1.10'],
      ['Foo>=1.1,<1.10', 'foo==1.1'],
      ['foo==1.0.0', 'foo==1.0'],
    ];
    for (const [requirement, expected] of table) {
      it(`${requirement} → ${expected}`, async () => {
        expect(pins((await resolve([requirement], FOO)).resolution)).to.deep.equal([expected]);
      });
    }

    it('describes each package: released name, wheel, logged sha256, who required it; sorted by key', async () => {
      const repo = repoOf([pure('Zeta-1.0'), pure('alpha-1.0')]);
      const { resolution, hashed } = await resolve(['zeta', 'alpha'], repo);
      expect(resolution).to.deep.equal({
        ok: true,
        packages: [
          { key: 'alpha', name: 'alpha', version: '1.0', filename: 'alpha-1.0-py3-none-any.whl', sha256: sha('alpha-1.0-py3-none-any.whl'), requiredBy: ['requirements.txt:2'] },
          { key: 'zeta', name: 'Zeta', version: '1.0', filename: 'Zeta-1.0-py3-none-any.whl', sha256: sha('Zeta-1.0-py3-none-any.whl'), requiredBy: ['requirements.txt:1'] },
        ],
      });
      expect(hashed).to.deep.equal([]);
    });

    it('computes the sha256 of a wheel whose release line has none', async () => {
      const repo: Repo = { wheels: [released(pure('foo-1.0'), { logged: false })], metadata: {} };
      const { resolution, hashed } = await resolve(['foo'], repo);
      expect(resolution.ok && resolution.packages[0]!.sha256).to.equal('computed-1.0');
      expect(hashed).to.deep.equal(['foo-1.0-py3-none-any.whl']);
    });

    it('reads METADATA only of the wheels it picks', async () => {
      const repo = repoOf([pure('foo-1.0'), pure('foo-2.0'), pure('bar-1.0'), pure('unrelated-1.0')], {
        'foo-2.0-py3-none-any.whl': { requiresDist: ['bar'] },
      });
      const { read } = await resolve(['foo'], repo);
      expect(read.sort()).to.deep.equal(['bar-1.0-py3-none-any.whl', 'foo-2.0-py3-none-any.whl']);
    });

    it('leaves out pre-releases unless a specifier names one, or nothing else is released', async () => {
      const repo = repoOf([pure('foo-1.0'), pure('foo-2.0rc1'), pure('beta-1.0b1'), pure('beta-0.9.dev1')]);
      expect(pins((await resolve(['foo'], repo)).resolution)).to.deep.equal(['foo==1.0']);
      expect(pins((await resolve(['foo>=2.0rc1'], repo)).resolution)).to.deep.equal(['foo==2.0rc1']);
      expect(pins((await resolve(['foo>=1.0'], repo)).resolution)).to.deep.equal(['foo==1.0']);
      // pip 23 (packaging 21.3): with no specifier at all, pre-releases count when no final release exists…
      expect(pins((await resolve(['beta'], repo)).resolution)).to.deep.equal(['beta==1.0b1']);
      // …but with one that names no pre-release, they never do.
      const { message } = failure((await resolve(['beta>=0.5'], repo)).resolution);
      expect(message).to.include('the repository has beta 1.0b1 (pre-release), 0.9.dev1');
    });

    it('prefers the highest build tag among wheels of one version', async () => {
      const repo = repoOf(['foo-1.0-1-py3-none-any.whl', 'foo-1.0-2-py3-none-any.whl', 'foo-1.0-10a-py3-none-any.whl']);
      const { resolution } = await resolve(['foo'], repo);
      expect(resolution.ok && resolution.packages[0]!.filename).to.equal('foo-1.0-10a-py3-none-any.whl');
    });
  });

  describe('wheel tags and Requires-Python', () => {
    it('skips wheels for another Python or platform, taking an older version that fits', async () => {
      const repo = repoOf([
        'fast-2.0-cp312-cp312-manylinux_2_17_x86_64.whl',
        'fast-2.0-cp311-cp311-win_amd64.whl',
        'fast-2.0-cp311-cp311-manylinux_2_17_aarch64.whl',
        'fast-1.5-cp311-cp311-musllinux_1_1_x86_64.whl',
        'fast-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl',
      ]);
      const { resolution } = await resolve(['fast'], repo);
      expect(pins(resolution)).to.deep.equal(['fast==1.0']);
    });

    it('picks the best-ranked wheel of a version, as pip does', async () => {
      const repo = repoOf([
        'fast-1.0-py3-none-any.whl',
        'fast-1.0-cp311-cp311-manylinux_2_17_x86_64.whl',
        'fast-1.0-cp311-abi3-manylinux_2_28_x86_64.whl',
      ]);
      const { resolution } = await resolve(['fast'], repo);
      expect(resolution.ok && resolution.packages[0]!.filename).to.equal('fast-1.0-cp311-cp311-manylinux_2_17_x86_64.whl');
    });

    it('says which wheels exist and for what when none fits the interpreter', async () => {
      const repo = repoOf(['fast-2.0-cp312-cp312-manylinux_2_17_x86_64.whl', 'fast-1.0-cp311-cp311-win_amd64.whl']);
      const { message, hint } = failure((await resolve(['fast'], repo)).resolution);
      expect(message).to.equal(
        'no released wheel of "fast" fits CPython 3.11 linux x86_64 (required by requirements.txt:1); ' +
          'the repository has fast 2.0 (only for cp312-cp312-manylinux_2_17_x86_64), 1.0 (only for cp311-cp311-win_amd64)',
      );
      expect(hint).to.include('vdeploy add-wheel');
    });

    it('skips versions whose Requires-Python excludes the interpreter', async () => {
      const repo = repoOf([pure('modern-3.0'), pure('modern-2.0'), pure('modern-1.0')], {
        'modern-3.0-py3-none-any.whl': { requiresDist: [], requiresPython: '>=3.12' },
        'modern-2.0-py3-none-any.whl': { requiresDist: [], requiresPython: '>=3.8,<4' },
      });
      expect(pins((await resolve(['modern'], repo)).resolution)).to.deep.equal(['modern==2.0']);
      const { message } = failure((await resolve(['modern>=3'], repo)).resolution);
      expect(message).to.equal(
        'no released wheel of "modern" satisfies >=3 for CPython 3.11 linux x86_64 (required by requirements.txt:1); ' +
          'the repository has modern 3.0 (Requires-Python >=3.12), 2.0, 1.0',
      );
    });

    it('ignores an invalid Requires-Python, as pip does', async () => {
      const repo = repoOf([pure('odd-1.0')], { 'odd-1.0-py3-none-any.whl': { requiresDist: [], requiresPython: 'python3 only' } });
      expect(pins((await resolve(['odd'], repo)).resolution)).to.deep.equal(['odd==1.0']);
    });

    it('compares Requires-Python with the release numbers of a pre-release interpreter', async () => {
      const rc = { ...CPYTHON_311, version: '3.12.0rc1' };
      const repo = repoOf([pure('modern-3.0')], { 'modern-3.0-py3-none-any.whl': { requiresDist: [], requiresPython: '>=3.12' } });
      expect(pins((await resolve(['modern'], repo, rc)).resolution)).to.deep.equal(['modern==3.0']);
    });
  });

  describe('markers and extras', () => {
    const APP = repoOf(
      [pure('app-1.0'), pure('tzdata-2026.1'), pure('tomli-2.0'), pure('idna-3.0'), pure('pysocks-1.7'), pure('lib-1.0'), pure('speedup-1.0'), pure('docs-1.0')],
      {
        'app-1.0-py3-none-any.whl': {
          requiresDist: [
            'tzdata; sys_platform == "win32"',
            'tomli>=1.1.0; python_version < "3.11"',
            'idna (>=2.5); python_version >= "3.11" and platform_python_implementation == "CPython"',
            'PySocks!=1.5.7,>=1.5.6; extra == "socks"',
            'lib[fast]; extra == "Speed"',
            'docs; extra == "docs" and python_version < "3.0"',
          ],
          providesExtra: ['socks', 'speed', 'docs'],
        },
        'lib-1.0-py3-none-any.whl': { requiresDist: ['speedup; extra == "fast"', 'docs; extra == "manual"'], providesExtra: ['fast', 'manual'] },
      },
    );

    it('evaluates python_version, sys_platform and implementation markers for the interpreter', async () => {
      expect(pins((await resolve(['app'], APP)).resolution)).to.deep.equal(['app==1.0', 'idna==3.0']);
      const py310 = { ...CPYTHON_311, markers: { ...CPYTHON_311.markers, python_version: '3.10', python_full_version: '3.10.12' } };
      expect(pins((await resolve(['app'], APP, py310)).resolution)).to.deep.equal(['app==1.0', 'tomli==2.0']);
    });

    it('skips a top-level requirement whose marker does not match', async () => {
      const { resolution } = await resolve(['app', 'tzdata; sys_platform == "win32"', 'tomli; python_version >= "3"'], APP);
      expect(pins(resolution)).to.deep.equal(['app==1.0', 'idna==3.0', 'tomli==2.0']);
    });

    it('adds the dependencies of requested extras, and only those', async () => {
      expect(pins((await resolve(['app[socks]'], APP)).resolution)).to.deep.equal(['app==1.0', 'idna==3.0', 'pysocks==1.7']);
      // Extras-only dependencies whose marker also needs an old Python stay out.
      expect(pins((await resolve(['app[docs]'], APP)).resolution)).to.deep.equal(['app==1.0', 'idna==3.0']);
    });

    it('follows extras on a transitive dependency (app[speed] → lib[fast] → speedup)', async () => {
      const { resolution } = await resolve(['app[SPEED]'], APP);
      expect(pins(resolution)).to.deep.equal(['app==1.0', 'idna==3.0', 'lib==1.0', 'speedup==1.0']);
      expect(resolution.ok && resolution.packages.find((p) => p.key === 'speedup')!.requiredBy).to.deep.equal(['lib']);
    });

    it('unions extras requested from several places', async () => {
      const { resolution } = await resolve(['app[speed]', 'lib[manual]'], APP);
      expect(pins(resolution)).to.deep.equal(['app==1.0', 'docs==1.0', 'idna==3.0', 'lib==1.0', 'speedup==1.0']);
      expect(resolution.ok && resolution.packages.find((p) => p.key === 'lib')!.requiredBy).to.deep.equal(['requirements.txt:2', 'app']);
    });

    it('ignores an extra the wheel does not provide', async () => {
      const repo = repoOf([pure('app-1.0'), pure('secret-1.0')], {
        'app-1.0-py3-none-any.whl': { requiresDist: ['secret; extra == "hidden"'], providesExtra: [] },
      });
      expect(pins((await resolve(['app[hidden]'], repo)).resolution)).to.deep.equal(['app==1.0']);
    });
  });

  describe('failures', () => {
    it('names a missing top-level requirement and says the repository has none', async () => {
      const { message, hint } = failure((await resolve(['foo', 'nothere>=1'], FOO)).resolution);
      expect(message).to.equal(
        'no released wheel of "nothere" satisfies >=1 for CPython 3.11 linux x86_64 (required by requirements.txt:2); the repository has no nothere wheels',
      );
      expect(hint).to.match(/add a nothere wheel/i);
    });

    it('names a version no released wheel satisfies, and what there is', async () => {
      const { message } = failure((await resolve(['foo>=3'], FOO)).resolution);
      expect(message).to.equal(
        'no released wheel of "foo" satisfies >=3 for CPython 3.11 linux x86_64 (required by requirements.txt:1); the repository has foo 2.0, 1.10, 1.1, 1.0',
      );
    });

    it('names a missing dependency and the package that needs it', async () => {
      const repo = repoOf([pure('app-1.0')], { 'app-1.0-py3-none-any.whl': { requiresDist: ['Ghost (>=2.0)'] } });
      const { message } = failure((await resolve(['app'], repo)).resolution);
      expect(message).to.equal(
        'no released wheel of "Ghost" satisfies >=2.0 for CPython 3.11 linux x86_64 (required by app 1.0); the repository has no Ghost wheels',
      );
    });

    it('names both sides of a conflict', async () => {
      const repo = repoOf([pure('foo-1.0'), pure('foo-2.0'), pure('app-1.0')], { 'app-1.0-py3-none-any.whl': { requiresDist: ['foo<2'] } });
      const { message, hint } = failure((await resolve(['foo>=2', 'app'], repo)).resolution);
      expect(message).to.equal(
        'no released wheel of "foo" satisfies >=2 (required by requirements.txt:1) and <2 (required by app 1.0) for CPython 3.11 linux x86_64; the repository has foo 2.0, 1.0',
      );
      expect(hint).to.match(/agree/);
    });

    it('names the requirers without a specifier too', async () => {
      const repo = repoOf([pure('foo-1.0'), pure('app-1.0')], { 'app-1.0-py3-none-any.whl': { requiresDist: ['foo>=3'] } });
      const { message } = failure((await resolve(['foo', 'app'], repo)).resolution);
      expect(message).to.equal(
        'no released wheel of "foo" satisfies >=3 (required by app 1.0) for CPython 3.11 linux x86_64 (also required by requirements.txt:1); the repository has foo 1.0',
      );
    });

    it('refuses a wheel whose Requires-Dist is not a requirement', async () => {
      const repo = repoOf([pure('app-1.0')], { 'app-1.0-py3-none-any.whl': { requiresDist: ['foo >= >= 1'] } });
      const { message } = failure((await resolve(['app'], repo)).resolution);
      expect(message).to.match(/^app-1\.0-py3-none-any\.whl: Requires-Dist "foo >= >= 1" is not a valid requirement/);
    });

    it('lets an error reading a wheel through (a missing file is a repository problem)', async () => {
      const err = new Error('gone');
      const promise = resolveVenv({
        requirements: [{ requirement: parseRequirement('foo'), file: 'requirements.txt', line: 1 }],
        released: FOO.wheels,
        interpreter: CPYTHON_311,
        dependenciesOf: async () => Promise.reject(err),
        sha256Of: async () => 'x',
      });
      await promise.then(
        () => expect.fail('resolved'),
        (e: unknown) => expect(e).to.equal(err),
      );
    });
  });

  describe('graphs and backtracking', () => {
    it('resolves a dependency cycle (a → b → a)', async () => {
      const repo = repoOf([pure('a-1.0'), pure('b-1.0')], {
        'a-1.0-py3-none-any.whl': { requiresDist: ['b'] },
        'b-1.0-py3-none-any.whl': { requiresDist: ['a>=1'] },
      });
      const { resolution } = await resolve(['a'], repo);
      expect(pins(resolution)).to.deep.equal(['a==1.0', 'b==1.0']);
      expect(resolution.ok && resolution.packages.map((p) => p.requiredBy)).to.deep.equal([['requirements.txt:1', 'b'], ['a']]);
    });

    it('applies every requirement on a package at once (a diamond)', async () => {
      const repo = repoOf([pure('top-1.0'), pure('left-1.0'), pure('right-1.0'), pure('base-1.0'), pure('base-2.0'), pure('base-3.0')], {
        'top-1.0-py3-none-any.whl': { requiresDist: ['left', 'right'] },
        'left-1.0-py3-none-any.whl': { requiresDist: ['base>=1'] },
        'right-1.0-py3-none-any.whl': { requiresDist: ['base<3'] },
      });
      expect(pins((await resolve(['top'], repo)).resolution)).to.deep.equal(['base==2.0', 'left==1.0', 'right==1.0', 'top==1.0']);
    });

    it('backtracks to an older version when the newest needs something that is not released', async () => {
      const repo = repoOf([pure('app-3.0'), pure('app-2.0'), pure('lib-1.0')], {
        'app-3.0-py3-none-any.whl': { requiresDist: ['ghost'] },
        'app-2.0-py3-none-any.whl': { requiresDist: ['lib'] },
      });
      expect(pins((await resolve(['app'], repo)).resolution)).to.deep.equal(['app==2.0', 'lib==1.0']);
    });

    it('backtracks when a constraint found later rules out an earlier pin', async () => {
      // a 2.0 wants c>=2, b 2.0 wants c<2: b goes back to 1.0, which does not care.
      const repo = repoOf([pure('a-2.0'), pure('b-2.0'), pure('b-1.0'), pure('c-1.0'), pure('c-2.0')], {
        'a-2.0-py3-none-any.whl': { requiresDist: ['c>=2'] },
        'b-2.0-py3-none-any.whl': { requiresDist: ['c<2'] },
      });
      expect(pins((await resolve(['a', 'b'], repo)).resolution)).to.deep.equal(['a==2.0', 'b==1.0', 'c==2.0']);
    });

    it('re-chooses a pinned package whose version a later requirement excludes', async () => {
      // lib is pinned at 2.0 (top-level, shallow) before app 2.0 says lib<2; app 1.0 is fine with it.
      const repo = repoOf([pure('app-2.0'), pure('app-1.0'), pure('lib-2.0'), pure('lib-1.0')], {
        'app-2.0-py3-none-any.whl': { requiresDist: ['lib<2'] },
      });
      expect(pins((await resolve(['lib', 'app'], repo)).resolution)).to.deep.equal(['app==2.0', 'lib==1.0']);
      expect(pins((await resolve(['lib>=2', 'app'], repo)).resolution)).to.deep.equal(['app==1.0', 'lib==2.0']);
    });

    it('jumps back past unrelated pins instead of trying all their combinations', async () => {
      // `a` 10.0 needs a missing `zz`, found only after p1..p8 (10 versions each) are pinned.
      const files = [pure('a-10.0'), pure('a-9.0')];
      for (let p = 1; p <= 8; p++) for (let v = 1; v <= 10; v++) files.push(pure(`p${p}-${v}.0`));
      const repo = repoOf(files, { 'a-10.0-py3-none-any.whl': { requiresDist: ['zz>=1'] } });
      const { resolution } = await resolve(['a', 'p1', 'p2', 'p3', 'p4', 'p5', 'p6', 'p7', 'p8'], repo);
      expect(pins(resolution)).to.deep.equal(['a==9.0', ...Array.from({ length: 8 }, (_, i) => `p${i + 1}==10.0`)]);
    });

    it('reports the failure of the newest candidates when every version fails', async () => {
      const repo = repoOf([pure('app-2.0'), pure('app-1.0')], {
        'app-2.0-py3-none-any.whl': { requiresDist: ['ghost>=2'] },
        'app-1.0-py3-none-any.whl': { requiresDist: ['ghost>=1'] },
      });
      const { message } = failure((await resolve(['app'], repo)).resolution);
      expect(message).to.include('"ghost" satisfies >=2');
      expect(message).to.include('(required by app 2.0)');
    });
  });
});

describe('resolveVenv: --hash pins', () => {
  const linux = 'foo-1.0-cp311-cp311-manylinux_2_17_x86_64.whl';
  const repo = repoOf([pure('foo-1.0'), linux, pure('foo-1.1')]);
  async function resolvePinned(requirement: string, hashes: string[]): Promise<Resolution> {
    return resolveVenv({
      requirements: [
        {
          requirement: parseRequirement(requirement),
          file: '/srv/app/requirements.txt',
          line: 3,
          hashes: hashes.map((h) => ({ algorithm: 'sha256' as const, digest: h })),
        },
      ],
      released: repo.wheels,
      interpreter: CPYTHON_311,
      dependenciesOf: async () => ({ requiresDist: [] }),
      sha256Of: async () => expect.fail('every wheel has a logged sha256'),
    });
  }
  const chosen = (r: Resolution) => (r.ok ? r.packages.map((p) => p.filename) : expect.fail(r.message));

  it('a hash that matches the wheel that would be chosen anyway changes nothing', async () => {
    expect(chosen(await resolvePinned('foo==1.1', [sha(pure('foo-1.1'))]))).to.deep.equal([pure('foo-1.1')]);
  });

  it('steers to the pinned wheel: of one version (over a better-ranked tag), or an older version', async () => {
    expect(chosen(await resolvePinned('foo==1.0', [sha(linux)]))).to.deep.equal([linux]);
    expect(chosen(await resolvePinned('foo==1.0', [sha(pure('foo-1.0'))]))).to.deep.equal([pure('foo-1.0')]);
    expect(chosen(await resolvePinned('foo', [sha(pure('foo-1.0'))]))).to.deep.equal([pure('foo-1.0')]);
  });

  it('several hashes on a line are alternatives', async () => {
    expect(chosen(await resolvePinned('foo==1.1', ['0'.repeat(64), sha(pure('foo-1.1'))]))).to.deep.equal([pure('foo-1.1')]);
  });

  it('a hash no released wheel has is a resolve error naming the file, the line and the wheel', async () => {
    const { message, hint } = failure(await resolvePinned('foo==1.1', ['ab'.repeat(32)]));
    expect(message).to.match(/^\/srv\/app\/requirements\.txt:3: the released wheel foo-1\.1-py3-none-any\.whl does not match the --hash pinned there \(pinned sha256:abababababab…; the wheel's sha256 is [0-9a-f]{12}…, release_log line 1\); pip would refuse to install it$/);
    expect(hint).to.include(`--hash=sha256:${sha(pure('foo-1.1'))}`);
  });
});
