// The oracle test for the resolver: for each requirement set, vdeploy's resolveVenv must pick exactly
// the (project, version) set that the venv's own pip picks with `pip install --dry-run --report` from
// the same wheel repository — the real shared wheels plus small wheels built here for extras, markers,
// tags, Requires-Python, pre-releases, cycles and backtracking.
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { InterpreterFacts } from '../../src/facts/types.js';
import { readRequirementsFile } from '../../src/requirements/requirements-file.js';
import { resolveVenv, type Resolution } from '../../src/resolve/resolve-venv.js';
import { createWheelDependencyReader } from '../../src/resolve/wheel-dependencies.js';
import { normalizeName } from '../../src/requirements/names.js';
import { addWheels, releasedWheels, type ReleasedWheel } from '../../src/wheels/repository.js';
import { buildWheel, writeZip } from '../helpers/build-wheel.js';
import { makeTempDir } from '../helpers/cli.js';
import { SHARED_WHEELS } from '../helpers/paths.js';

const run = promisify(execFile);
const SYSTEM_PYTHON = '/usr/bin/python3';

/** pip's global configuration (PIP_FIND_LINKS, /etc/xdg/pip/pip.conf) must not reach the pips we run. */
function hermeticEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of Object.keys(env)) if (key.startsWith('PIP_')) delete env[key];
  return { ...env, PIP_CONFIG_FILE: '/dev/null', PIP_NO_INPUT: '1', PIP_DISABLE_PIP_VERSION_CHECK: '1' };
}

const FACTS_SNIPPET = `
import json, platform
from pip._vendor.packaging import markers, tags
print(json.dumps({
    "version": platform.python_version(),
    "markers": markers.default_environment(),
    "supportedTags": [str(t) for t in tags.sys_tags()],
}))
`;

/** A wheel with arbitrary METADATA headers (buildWheel writes neither Requires-Python nor Provides-Extra). */
async function buildWheelWithHeaders(dir: string, name: string, version: string, headers: string[]): Promise<string> {
  const distInfo = `${name}-${version}.dist-info`;
  const members: Array<[string, string]> = [
    [`${name}/__init__.py`, `__version__ = "${version}"\n`],
    [`${distInfo}/METADATA`, ['Metadata-Version: 2.1', `Name: ${name}`, `Version: ${version}`, ...headers, '', ''].join('\n')],
    [`${distInfo}/WHEEL`, 'Wheel-Version: 1.0\nGenerator: vdeploy-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n'],
  ];
  const record = members.map(([p, d]) => `${p},sha256=${createHash('sha256').update(d).digest('base64url')},${Buffer.byteLength(d)}`);
  const path = join(dir, `${name}-${version}-py3-none-any.whl`);
  await mkdir(dir, { recursive: true });
  await writeZip(path, [...members, [`${distInfo}/RECORD`, `${[...record, `${distInfo}/RECORD,,`].join('\n')}\n`]]);
  return path;
}

/** Small wheels that exercise what the shared real wheels don't. */
async function buildTestWheels(dir: string): Promise<string[]> {
  return [
    // Extras (one on a transitive dependency), markers that are false here, and a newer version whose
    // dependency is not released, so pip backtracks to 1.0.
    await buildWheelWithHeaders(dir, 'webapp', '1.0', [
      'Requires-Dist: Django>=5',
      'Provides-Extra: templates',
      'Requires-Dist: Jinja2>=3; extra == "templates"',
      'Requires-Dist: toolkit[speed]>=1; extra == "templates"',
      'Requires-Dist: gunicorn; sys_platform == "win32"',
      'Requires-Dist: typing-extensions>=4; python_version < "3.11"',
      'Requires-Dist: packaging; python_version >= "3.11" and platform_python_implementation == "CPython"',
    ]),
    await buildWheel(dir, { name: 'webapp', version: '2.0', requiresDist: ['webapp-ghost>=1', 'Django>=5'] }),
    // toolkit: 1.0 fits; 1.5 needs Python 3.12; 2.0 is for another interpreter; 3.0rc1 is a pre-release.
    await buildWheelWithHeaders(dir, 'toolkit', '1.0', [
      'Provides-Extra: speed',
      'Requires-Dist: idna>=3; extra == "speed"',
      'Provides-Extra: unused',
      'Requires-Dist: certifi; extra == "unused"',
    ]),
    await buildWheelWithHeaders(dir, 'toolkit', '1.5', ['Requires-Python: >=3.12']),
    await buildWheel(dir, { name: 'toolkit', version: '2.0', tag: 'cp312-cp312-manylinux_2_17_x86_64' }),
    await buildWheel(dir, { name: 'toolkit', version: '3.0rc1' }),
    // Extras passed on through a marker of the dependent's own extra.
    await buildWheelWithHeaders(dir, 'clientlib', '1.0', [
      'Requires-Dist: urllib3<2.9',
      'Provides-Extra: proxy',
      'Requires-Dist: requests[socks]>=2; extra == "proxy"',
      'Provides-Extra: plain',
      'Requires-Dist: requests>=2; extra == "plain"',
    ]),
    // A cycle.
    await buildWheel(dir, { name: 'cyc-a', version: '1.0', requiresDist: ['cyc-b>=1'] }),
    await buildWheel(dir, { name: 'cyc-b', version: '1.0', requiresDist: ['cyc-a'] }),
    // Only a pre-release.
    await buildWheel(dir, { name: 'betaonly', version: '1.0b1' }),
    // A constraint found later rules out an earlier pin: pip re-pins sqlhelper's sqlparse.
    await buildWheel(dir, { name: 'sqlhelper', version: '2.0', requiresDist: ['sqlparse<0.6'] }),
    await buildWheel(dir, { name: 'sqlhelper', version: '1.0', requiresDist: ['sqlparse'] }),
    await buildWheel(dir, { name: 'sqlparse', version: '0.5.3' }),
  ];
}

interface Case {
  title: string;
  requirements: string[];
  /** Both must fail; the message must match. */
  fails?: RegExp;
  /** Pins the answer must contain (so a case can't pass by both sides ignoring what it exercises). */
  includes?: string[];
}

const CASES: Case[] = [
  { title: 'requests (charset_normalizer, idna, urllib3, certifi)', requirements: ['requests'] },
  { title: 'django (asgiref, sqlparse; tzdata only on Windows)', requirements: ['django'] },
  { title: 'jinja2 (markupsafe, a cp311 manylinux wheel)', requirements: ['jinja2'] },
  { title: 'all the real wheels together', requirements: ['requests>=2.30', 'Django~=5.2', 'Jinja2', 'gunicorn', 'packaging', 'tzdata'] },
  { title: 'extras that add nothing, and specifiers', requirements: ['requests[security]', 'urllib3<2.9', 'charset-normalizer[unicode-backport]'] },
  { title: 'webapp backtracks past 2.0 (its dependency is not released)', requirements: ['webapp'], includes: ['webapp==1.0', 'packaging==26.3'] },
  { title: 'webapp[templates]: extras, a transitive extra, markers', requirements: ['webapp[templates]'], includes: ['jinja2==3.1.6', 'toolkit==1.0', 'idna==3.20'] },
  { title: 'toolkit: tags, Requires-Python, pre-releases', requirements: ['toolkit'], includes: ['toolkit==1.0'] },
  { title: 'a pre-release named by the specifier', requirements: ['toolkit>=3.0rc1'], includes: ['toolkit==3.0rc1'] },
  { title: 'only a pre-release is released', requirements: ['betaonly'], includes: ['betaonly==1.0b1'] },
  { title: 'a dependency cycle', requirements: ['cyc-a'], includes: ['cyc-a==1.0', 'cyc-b==1.0'] },
  { title: 'an extra not requested leaves its dependencies out', requirements: ['clientlib'] },
  { title: 'an extra the wheel does not provide is ignored; one it does is followed', requirements: ['clientlib[plain,nonesuch]'], includes: ['requests==2.34.2'] },
  { title: 'a later requirement re-pins an earlier choice', requirements: ['sqlparse', 'sqlhelper', 'django'], includes: ['sqlhelper==2.0', 'sqlparse==0.5.3'] },
  { title: 'a top-level marker that does not match', requirements: ['jinja2', 'tzdata; sys_platform == "win32"'] },
  { title: 'requests[socks]: PySocks is not released', requirements: ['requests[socks]'], fails: /no released wheel of "PySocks" .*required by requests 2\.34\.2.*no PySocks wheels/ },
  { title: 'an extra of an extra needs PySocks', requirements: ['clientlib[proxy]'], fails: /"PySocks".*no PySocks wheels/ },
  { title: 'a version no released wheel satisfies', requirements: ['django>=6'], fails: /^no released wheel of "django" satisfies >=6 for CPython 3\.11 linux x86_64 \(required by requirements\.txt:1\); the repository has Django 5\.2\.17$/i },
  { title: 'a specifier that excludes the only pre-release', requirements: ['betaonly>=0.1'], fails: /"betaonly" satisfies >=0\.1 .*1\.0b1 \(pre-release\)/ },
  { title: 'two requirements that conflict', requirements: ['django', 'sqlparse>0.6'], fails: /"sqlparse" satisfies >=0\.3\.1 \(required by [Dd]jango 5\.2\.17\) and >0\.6 \(required by requirements\.txt:2\)|"sqlparse" satisfies >0\.6 \(required by requirements\.txt:2\) and >=0\.3\.1/ },
  { title: 'a requirement on an interpreter the repository has no wheel for', requirements: ['toolkit>=2,<3'], fails: /toolkit.*2\.0 \(only for cp312-cp312-manylinux_2_17_x86_64\)/ },
];

describe('resolveVenv against pip (--dry-run --report) in a real venv', function () {
  let dir: string;
  let python: string;
  let facts: InterpreterFacts;
  let repo: string;
  let released: ReleasedWheel[];
  const reader = () => createWheelDependencyReader(repo);

  before(async function () {
    dir = await makeTempDir('vdeploy-resolve-');
    const venv = join(dir, 'venv');
    await run(SYSTEM_PYTHON, ['-m', 'venv', venv], { env: hermeticEnv() });
    python = join(venv, 'bin', 'python');
    facts = JSON.parse((await run(python, ['-c', FACTS_SNIPPET], { env: hermeticEnv() })).stdout) as InterpreterFacts;

    repo = join(dir, 'wheels');
    const shared = (await readdir(SHARED_WHEELS)).filter((f) => f.endsWith('.whl')).map((f) => join(SHARED_WHEELS, f));
    const built = await buildTestWheels(join(dir, 'built'));
    const added = await addWheels(repo, [...shared, ...built]);
    const refused = added.filter((r) => r.status === 'refused');
    expect(refused, JSON.stringify(refused)).to.deep.equal([]);
    released = await releasedWheels(repo);
  });

  async function resolveBoth(c: Case, i: number): Promise<{ ours: Resolution; pip: { ok: true; pins: string[] } | { ok: false; stderr: string } }> {
    const caseDir = join(dir, 'cases', String(i));
    await mkdir(caseDir, { recursive: true });
    const file = join(caseDir, 'requirements.txt');
    await writeFile(file, `${c.requirements.join('\n')}\n`);
    const ours = await resolveVenv({ requirements: await readRequirementsFile(file), released, interpreter: facts, ...reader() });
    const args = ['-m', 'pip', 'install', '--isolated', '--no-index', '--find-links', repo, '--dry-run', '--ignore-installed', '--report', '-', '-q', '-r', file];
    try {
      const { stdout } = await run(python, args, { env: hermeticEnv(), maxBuffer: 16 * 1024 * 1024 });
      const report = JSON.parse(stdout) as { install: Array<{ metadata: { name: string; version: string } }> };
      const pins = report.install.map((p) => `${normalizeName(p.metadata.name)}==${p.metadata.version}`).sort();
      return { ours, pip: { ok: true, pins } };
    } catch (err) {
      return { ours, pip: { ok: false, stderr: String((err as { stderr?: string }).stderr ?? err) } };
    }
  }

  CASES.forEach((c, i) => {
    it(`${c.title}: ${c.requirements.join(', ')}`, async () => {
      const { ours, pip } = await resolveBoth(c, i);
      if (c.fails) {
        expect(pip.ok, `pip resolved it: ${pip.ok && pip.pins.join(' ')}`).to.equal(false);
        expect(ours.ok, `vdeploy resolved it: ${ours.ok && ours.packages.map((p) => `${p.key}==${p.version}`).join(' ')}`).to.equal(false);
        if (!ours.ok) expect(ours.message).to.match(c.fails);
        return;
      }
      if (!pip.ok) expect.fail(`pip failed: ${pip.stderr}`);
      if (!ours.ok) expect.fail(`vdeploy failed: ${ours.message}`);
      expect(ours.packages.map((p) => `${p.key}==${p.version}`)).to.deep.equal(pip.pins);
      expect(pip.pins).to.include.members(c.includes ?? []);
      for (const p of ours.packages) {
        expect(p.sha256).to.match(/^[0-9a-f]{64}$/);
        expect(released.some((w) => w.filename === p.filename)).to.equal(true);
      }
    });
  });

  it('names who required each package in the django closure', async () => {
    const file = join(dir, 'django-requirements.txt');
    await writeFile(file, '# the site\nDjango>=5\n');
    const resolution = await resolveVenv({ requirements: await readRequirementsFile(file), released, interpreter: facts, ...reader() });
    if (!resolution.ok) expect.fail(resolution.message);
    expect(resolution.packages.map((p) => [p.key, p.requiredBy])).to.deep.equal([
      ['asgiref', ['django']],
      ['django', ['django-requirements.txt:2']],
      ['sqlparse', ['django']],
    ]);
  });
});
