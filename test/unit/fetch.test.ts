/**
 * The pure parts of `vdeploy fetch`: targets from interpreter facts (and from the cache, offline),
 * pip's argv, reading pip's output and report, and the repository pins that hold versions unless
 * --upgrade.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { resolveConfig } from '../../src/config/resolve-config.js';
import { configSchema } from '../../src/config/schema.js';
import { InterpreterCache } from '../../src/facts/interpreter-cache.js';
import type { InterpreterFacts } from '../../src/facts/types.js';
import { parseSpecs, repositoryPins, targetInputs } from '../../src/fetch/inputs.js';
import { downloadArgv, indexArgs, pipAtLeast, PIP_VERSION_SCRIPT, PIP_WRAPPER, reportArgv } from '../../src/fetch/pip-command.js';
import { lineSplitter, parsePipLine, parsePipReport } from '../../src/fetch/pip-output.js';
import { explicitTarget, markersFor, targetFromFacts, targetsFromCache, type FetchTarget } from '../../src/fetch/targets.js';
import { parseRequirement } from '../../src/requirements/pep508.js';
import { parseWheelFilename } from '../../src/wheels/wheel-filename.js';
import type { ReleasedWheel } from '../../src/wheels/repository.js';
import { makeTempDir } from '../helpers/cli.js';
import { LINUX_MARKERS } from '../helpers/interpreter-facts.js';

const manylinux = (py: string, from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => `${py}-${py}-manylinux_2_${to - i}_x86_64`);
const py312: InterpreterFacts = {
  version: '3.12.1',
  markers: { ...LINUX_MARKERS, python_version: '3.12', python_full_version: '3.12.1', implementation_version: '3.12.1' },
  supportedTags: [...manylinux('cp312', 17, 36), 'cp312-cp312-linux_x86_64', 'cp312-abi3-manylinux_2_36_x86_64', 'cp312-none-manylinux_2_36_x86_64', 'py312-none-any', 'py3-none-any'],
};
const py38: InterpreterFacts = {
  version: '3.8.18',
  markers: { ...LINUX_MARKERS, python_version: '3.8', python_full_version: '3.8.18', implementation_version: '3.8.18' },
  supportedTags: [...manylinux('cp38', 17, 36), 'cp38-cp38-linux_x86_64', 'cp38-abi3-manylinux_2_36_x86_64', 'py38-none-any', 'py3-none-any'],
};

describe('fetch: targets', () => {
  it('takes the pip flags from an interpreter\'s facts: version, implementation, ABIs and platforms in preference order', () => {
    const t = targetFromFacts(py312)!;
    expect(t.label).to.equal('cp312-cp312-manylinux_2_36_x86_64');
    expect(t.pythonVersion).to.equal('3.12.1');
    expect(t.implementation).to.equal('cp');
    expect(t.abis).to.deep.equal(['cp312', 'abi3', 'none']);
    expect(t.platforms[0]).to.equal('manylinux_2_36_x86_64');
    expect(t.platforms).to.include('manylinux_2_17_x86_64').and.include('linux_x86_64').and.not.include('any');
    expect(t.markers.python_version).to.equal('3.12');
    expect(targetFromFacts({ ...py312, supportedTags: [] })).to.equal(null);
    expect(targetFromFacts({ ...py312, version: '3.13.0rc1' })!.pythonVersion).to.equal('3.13.0');
  });

  it('groups the venvs by interpreter from the cache, without connecting; venvs it has no facts for are one error naming their hosts', async () => {
    const dir = await makeTempDir('vdeploy-fetch-unit-');
    const config = resolveConfig(
      configSchema.parse({
        hosts: [
          { name: 'web1', address: '127.0.0.2', port: 2201, user: 'deploy' },
          { name: 'web2', address: '127.0.0.3', port: 2201, user: 'deploy' },
          { name: 'new1', address: '127.0.0.4', port: 2201, user: 'deploy' },
        ],
        venvs: [
          { host: 'web1', path: '/srv/a' },
          { host: 'web1', path: '/srv/b', requirements: 'b.txt' },
          { host: 'web2', path: '/srv/a' },
          { host: 'new1', path: '/srv/a' },
        ],
      }),
      join(dir, 'deployfile.ts'),
    );
    const cache = new InterpreterCache(join(dir, 'interpreters.json'));
    cache.rememberVenvs('deploy@127.0.0.2:2201', [
      { path: '/srv/a', interpreter: py312 },
      { path: '/srv/b', interpreter: py38 },
    ]);
    cache.rememberVenvs('deploy@127.0.0.3:2201', [{ path: '/srv/a', interpreter: py312 }]);
    const noSshConfig = { file: undefined, items: [] };
    const targets = targetsFromCache(config, config.venvs.slice(0, 3), cache, noSshConfig);
    expect(targets.map((t) => [t.label, t.venvs, t.requirements])).to.deep.equal([
      ['cp312-cp312-manylinux_2_36_x86_64', ['deploy@web1:/srv/a', 'deploy@web2:/srv/a'], [join(dir, 'requirements.txt')]],
      ['cp38-cp38-manylinux_2_36_x86_64', ['deploy@web1:/srv/b'], [join(dir, 'b.txt')]],
    ]);
    // Another instance (another run) reads the same file.
    const again = targetsFromCache(config, config.venvs.slice(0, 3), new InterpreterCache(join(dir, 'interpreters.json')), noSshConfig);
    expect(again.length).to.equal(2);
    expect(() => targetsFromCache(config, config.venvs, cache, noSshConfig))
      .to.throw(/does not know the Python of the venv deploy@new1:\/srv\/a yet/)
      .with.property('hint')
      .that.matches(/vdeploy plan new1/)
      .and.matches(/--python-version 3\.12 --platform/);
  });

  it('names each target once, even two interpreters with the same most preferred tag', async () => {
    const dir = await makeTempDir('vdeploy-fetch-unit-');
    const config = resolveConfig(
      configSchema.parse({ hosts: [{ name: 'a', user: 'u', port: 22 }, { name: 'b', user: 'u', port: 22 }], venvs: [{ host: 'a', path: '/v' }, { host: 'b', path: '/v' }] }),
      join(dir, 'deployfile.ts'),
    );
    const cache = new InterpreterCache(join(dir, 'interpreters.json'));
    cache.rememberVenvs('u@a:22', [{ path: '/v', interpreter: py312 }]);
    cache.rememberVenvs('u@b:22', [{ path: '/v', interpreter: { ...py312, supportedTags: [...py312.supportedTags, 'cp312-cp312-manylinux_2_5_x86_64'] } }]);
    const labels = targetsFromCache(config, config.venvs, cache, { file: undefined, items: [] }).map((t) => t.label);
    expect(labels).to.deep.equal(['cp312-cp312-manylinux_2_36_x86_64', 'cp312-cp312-manylinux_2_36_x86_64#2']);
  });

  it('reads -r files given on the command line leniently (pip options in them are pip\'s), the venvs\' own files strictly', async () => {
    const dir = await makeTempDir('vdeploy-fetch-unit-');
    const file = join(dir, 'req.txt');
    writeFileSync(file, '--index-url https://example.org/simple\ndjango\n');
    const t = { ...(targetFromFacts(py312) as FetchTarget), requirements: [file] };
    expect((await targetInputs(t, [file], ['gunicorn'])).topLevel.map((r) => r.key)).to.deep.equal(['gunicorn']);
    let error: unknown;
    await targetInputs(t, [], []).catch((err: unknown) => (error = err));
    expect(String(error)).to.match(/req\.txt:1/);
  });

  it('builds a target from flags, with a marker environment guessed from them; malformed flags are usage errors', () => {
    const t = explicitTarget({ pythonVersion: '3.8', platforms: ['manylinux_2_17_x86_64', 'manylinux2014_x86_64'] });
    expect(t).to.include({ label: 'cp38-cp38-manylinux_2_17_x86_64', implementation: 'cp', pythonVersion: '3.8' });
    expect(t.abis).to.deep.equal(['cp38']);
    expect(t.supportedTags).to.include.members(['cp38-cp38-manylinux_2_17_x86_64', 'cp38-abi3-manylinux2014_x86_64', 'py3-none-any', 'py38-none-any', 'cp38-none-any']);
    expect(t.supportedTags).to.not.include('cp312-cp312-manylinux_2_17_x86_64');
    expect(markersFor('3.8', 'cp', 'manylinux_2_17_x86_64')).to.include({
      python_version: '3.8',
      python_full_version: '3.8.0',
      implementation_name: 'cpython',
      sys_platform: 'linux',
      platform_machine: 'x86_64',
    });
    expect(markersFor('3.12', 'cp', 'win_amd64')).to.include({ sys_platform: 'win32', os_name: 'nt', platform_machine: 'AMD64' });
    expect(markersFor('3.12', 'cp', 'macosx_11_0_arm64')).to.include({ sys_platform: 'darwin', platform_machine: 'arm64' });
    expect(() => explicitTarget({ pythonVersion: 'three', platforms: ['linux_x86_64'] })).to.throw(/--python-version three: not a Python version/);
    expect(() => explicitTarget({ pythonVersion: '3.12', platforms: ['any'] })).to.throw(/--platform any: not a wheel platform tag/);
  });
});

describe('fetch: pip argv', () => {
  const target = targetFromFacts(py38)! as FetchTarget;
  const inputs = { requirementFiles: ['/p/requirements.txt'], specs: ['gunicorn>=20'], index: { noIndex: true, findLinks: ['/idx'] }, repoDir: '/p/wheels', constraints: '/t/c.txt' };

  it('downloads wheels only, for the target\'s flags, through the marker wrapper, searching the repository last', () => {
    const argv = downloadArgv('python3', target.markers, target, inputs, '/t/wheels');
    expect(argv.slice(0, 3)).to.deep.equal(['python3', '-c', PIP_WRAPPER]);
    expect(JSON.parse(argv[3]!)).to.deep.equal(target.markers);
    const pip = argv.slice(4);
    expect(pip.slice(0, 4)).to.deep.equal(['download', '--progress-bar', 'off', '--only-binary=:all:']);
    expect(pip.join(' ')).to.include('--python-version 3.8.18 --implementation cp --abi cp38 --abi abi3 --platform manylinux_2_36_x86_64 --platform manylinux_2_35_x86_64');
    expect(pip.join(' ')).to.include('-d /t/wheels');
    expect(pip.join(' ')).to.match(/--no-index --find-links \/idx --find-links \/p\/wheels -c \/t\/c\.txt -r \/p\/requirements\.txt gunicorn>=20$/);
  });

  it('resolves only for --dry-run: install --dry-run --report into a --target directory, installed packages ignored', () => {
    const pip = reportArgv('py', target.markers, target, inputs, '/t/target', '/t/report.json').slice(4);
    expect(pip.slice(0, 9)).to.deep.equal(['install', '--dry-run', '--ignore-installed', '--progress-bar', 'off', '--report', '/t/report.json', '--target', '/t/target']);
    expect(pip).to.include('--only-binary=:all:');
  });

  it('passes the index flags through as given', () => {
    expect(indexArgs({ indexUrl: 'https://i/simple', extraIndexUrls: ['file:///x', 'https://y'] }, '/r')).to.deep.equal([
      '--index-url', 'https://i/simple', '--extra-index-url', 'file:///x', '--extra-index-url', 'https://y', '--find-links', '/r',
    ]);
  });

  it('compares pip versions', () => {
    expect(pipAtLeast('23.2.1', [22, 2])).to.equal(true);
    expect(pipAtLeast('22.2', [22, 2])).to.equal(true);
    expect(pipAtLeast('22.0.4', [22, 2])).to.equal(false);
    expect(pipAtLeast('24.0.dev0', [21, 0])).to.equal(true);
    expect(pipAtLeast('18.1', [21, 0])).to.equal(false);
  });

  it('refuses specs that pip would read as options', () => {
    expect(() => parseSpecs(['-e', '.'])).to.throw(/-e: not a requirement/);
    expect(parseSpecs(['Django>=4.2']).map((r) => r.key)).to.deep.equal(['django']);
  });
});

describe('fetch: reading pip', () => {
  it('reads progress and failures from the lines pip prints', () => {
    expect(parsePipLine('Collecting django>=4.2')).to.deep.equal({ kind: 'collecting', requirement: 'django>=4.2' });
    expect(parsePipLine('Collecting sqlparse>=0.3.1 (from django)')).to.deep.equal({ kind: 'collecting', requirement: 'sqlparse>=0.3.1' });
    expect(parsePipLine('Processing /w/Django-5.2.17-py3-none-any.whl')).to.deep.equal({ kind: 'collecting', requirement: 'Django==5.2.17' });
    expect(parsePipLine('Saved ./tmp/x/django-5.2.17-py3-none-any.whl')).to.deep.equal({ kind: 'saved', filename: 'django-5.2.17-py3-none-any.whl' });
    expect(parsePipLine('File was already downloaded /t/w/idna-3.20-py3-none-any.whl')).to.deep.equal({ kind: 'saved', filename: 'idna-3.20-py3-none-any.whl' });
    expect(parsePipLine('ERROR: Could not find a version that satisfies the requirement onlysdist (from versions: none)')).to.deep.equal({
      kind: 'no-version', requirement: 'onlysdist', name: 'onlysdist', versions: [],
    });
    expect(parsePipLine('ERROR: Could not find a version that satisfies the requirement charset_normalizer<4,>=2 (from requests) (from versions: none)')).to.deep.equal({
      kind: 'no-version', requirement: 'charset_normalizer<4,>=2', name: 'charset_normalizer', neededBy: 'requests', versions: [],
    });
    expect(parsePipLine('ERROR: Could not find a version that satisfies the requirement django==9 (from versions: 4.2.1, 5.2.17)')).to.deep.include({ versions: ['4.2.1', '5.2.17'] });
    expect(parsePipLine('ERROR: Ignored the following versions that require a different python version: 5.2.17 Requires-Python >=3.10')).to.deep.equal({
      kind: 'python-mismatch', detail: '5.2.17 Requires-Python >=3.10',
    });
    expect(parsePipLine('ERROR: No matching distribution found for onlysdist')).to.equal(null);
    expect(parsePipLine('ERROR: HTTP error 404 while getting https://x')).to.deep.equal({ kind: 'error', message: 'HTTP error 404 while getting https://x' });
    expect(parsePipLine('vdeploy-fetch: markers not set: No module named x')).to.deep.equal({ kind: 'markers-not-set', why: 'No module named x' });
    expect(parsePipLine('WARNING: Retrying (Retry(total=4, connect=None)) after connection broken by NewConnectionError: /simple/x/')).to.deep.equal({
      kind: 'warning', message: 'Retrying (Retry(total=4, connect=None)) after connection broken by NewConnectionError: /simple/x/',
    });
    // A file:// index without the project: its 404.
    expect(parsePipLine("WARNING: Location 'file:///x/simple/requests/' is ignored: it is neither a file nor a directory.")).to.equal(null);
    expect(parsePipLine('WARNING: You are using pip version 21.0; however, version 24.0 is available.')).to.equal(null);
    expect(parsePipLine('Successfully downloaded django')).to.equal(null);
  });

  it('splits chunks into lines, across chunk boundaries and \\r', () => {
    const lines: string[] = [];
    const split = lineSplitter((l) => lines.push(l));
    split('Collecting a\nColl');
    split('ecting b\r\nSaved ./x.whl\rlast');
    split();
    expect(lines).to.deep.equal(['Collecting a', 'Collecting b', 'Saved ./x.whl', 'last']);
  });

  it('reads the installation report of pip install --dry-run --report', () => {
    const report = JSON.stringify({
      version: '1',
      install: [
        { download_info: { url: 'file:///w/asgiref-3.12.1-py3-none-any.whl', archive_info: { hashes: { sha256: 'ab' } } }, metadata: { name: 'asgiref', version: '3.12.1' } },
        { download_info: { url: 'https://files/p/my%2Bpkg-1.0-py3-none-any.whl#sha256=cd', archive_info: { hash: 'sha256=cd' } }, metadata: { name: 'my+pkg', version: '1.0' } },
      ],
    });
    expect(parsePipReport(report)).to.deep.equal([
      { name: 'asgiref', version: '3.12.1', filename: 'asgiref-3.12.1-py3-none-any.whl', url: 'file:///w/asgiref-3.12.1-py3-none-any.whl', sha256: 'ab' },
      { name: 'my+pkg', version: '1.0', filename: 'my+pkg-1.0-py3-none-any.whl', url: 'https://files/p/my%2Bpkg-1.0-py3-none-any.whl#sha256=cd', sha256: 'cd' },
    ]);
    expect(() => parsePipReport('{"install": [{}]}')).to.throw(/install\[0\]/);
  });

  it('the wrapper and the version script are Python that compiles (3.6 too) and pyflakes accepts', async () => {
    const dir = await makeTempDir('vdeploy-fetch-py-');
    for (const [name, source] of [['wrapper.py', PIP_WRAPPER], ['version.py', PIP_VERSION_SCRIPT]] as const) {
      writeFileSync(join(dir, name), source);
      for (const python of ['python3', '/root/.pyenv/versions/3.6.15/bin/python3.6'].filter((p) => p === 'python3' || existsSync(p))) {
        const r = spawnSync(python, ['-m', 'py_compile', join(dir, name)], { encoding: 'utf8' });
        expect(r.status, `${python} ${name}: ${r.stderr}`).to.equal(0);
      }
      const flakes = spawnSync('pyflakes3', [join(dir, name)], { encoding: 'utf8' });
      if (!flakes.error) expect(flakes.stdout + flakes.stderr).to.equal('');
    }
  });
});

describe('fetch: repository pins (what --upgrade leaves out)', () => {
  const released = (filename: string): ReleasedWheel => {
    const wheel = parseWheelFilename(filename);
    return { name: wheel.name, normalizedName: wheel.name.toLowerCase().replace(/[-_.]+/g, '-'), version: wheel.version, filename, addedAt: '', lineNumber: 1, wheel };
  };
  const repo = [
    released('Django-4.2.1-py3-none-any.whl'),
    released('Django-5.2.17-py3-none-any.whl'),
    released('fastlib-2.0-cp312-cp312-manylinux_2_17_x86_64.whl'),
    released('fastlib-1.0-cp38-cp38-manylinux_2_17_x86_64.whl'),
    released('fastlib-1.0-cp312-cp312-manylinux_2_17_x86_64.whl'),
    released('winlib-1.0-cp38-cp38-win_amd64.whl'),
  ];

  it('holds each project at the newest version the target can install from the repository (none: not held)', () => {
    expect(repositoryPins(repo, targetFromFacts(py312) as FetchTarget, [])).to.deep.equal(['Django==5.2.17', 'fastlib==2.0']);
    expect(repositoryPins(repo, targetFromFacts(py38) as FetchTarget, [])).to.deep.equal(['Django==5.2.17', 'fastlib==1.0']);
  });

  it('leaves out a project whose requirement asks for another version', () => {
    const asked = [parseRequirement('django>=6'), parseRequirement('fastlib')];
    expect(repositoryPins(repo, targetFromFacts(py312) as FetchTarget, asked)).to.deep.equal(['fastlib==2.0']);
  });
});
