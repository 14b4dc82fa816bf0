/**
 * fetchWheels with this machine's real pip against the test's own indexes (fetch-index.ts): one pip
 * download per target, each target getting the wheels of its own platform and markers, every wheel
 * added through addWheels; --dry-run touching nothing; the repository's versions held unless
 * --upgrade; an sdist-only project reported for its target while the rest still arrives.
 */
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'chai';
import type { InterpreterFacts } from '../../src/facts/types.js';
import { fetchWheels, type FetchEvent, type FetchOptions, type FetchResult } from '../../src/fetch/fetch.js';
import { PIP_WRAPPER } from '../../src/fetch/pip-command.js';
import { parsePipLine } from '../../src/fetch/pip-output.js';
import { targetFromFacts, type FetchTarget } from '../../src/fetch/targets.js';
import { buildWheel } from '../helpers/build-wheel.js';
import { makeTempDir } from '../helpers/cli.js';
import { isolatedPipEnv, makeFetchIndex, type FetchIndex } from '../helpers/fetch-index.js';
import { LINUX_MARKERS } from '../helpers/interpreter-facts.js';

const tags = (py: string) => [
  ...Array.from({ length: 20 }, (_, i) => `${py}-${py}-manylinux_2_${36 - i}_x86_64`),
  `${py}-${py}-linux_x86_64`,
  `${py}-abi3-manylinux_2_17_x86_64`,
  `${py}-none-manylinux_2_17_x86_64`,
  'py3-none-any',
];
const facts = (version: string, py: string): InterpreterFacts => ({
  version,
  markers: { ...LINUX_MARKERS, python_version: version.split('.').slice(0, 2).join('.'), python_full_version: version, implementation_version: version },
  supportedTags: tags(py),
});
const target = (f: InterpreterFacts, venv: string): FetchTarget => ({ ...targetFromFacts(f)!, venvs: [venv], requirements: [] });
const PY38 = target(facts('3.8.18', 'cp38'), 'root@h1:/srv/a');
const PY312 = target(facts('3.12.1', 'cp312'), 'root@h2:/srv/a');

const sha256 = async (path: string) => createHash('sha256').update(await readFile(path)).digest('hex');

describe('fetchWheels (real pip, the test\'s own index)', function () {
  this.timeout(300_000);
  let index: FetchIndex;
  let dir: string;
  const saved: Record<string, string | undefined> = {};

  before(async () => {
    dir = await makeTempDir('vdeploy-fetch-int-');
    index = await makeFetchIndex(dir);
    for (const [name, value] of Object.entries(isolatedPipEnv())) {
      saved[name] = process.env[name];
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });
  after(() => {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });

  const fetch = (repo: string, options: Partial<FetchOptions>, events: FetchEvent[] = []): Promise<FetchResult> =>
    fetchWheels({ repoDir: repo, targets: [PY38, PY312], index: { noIndex: true, findLinks: [index.findLinks] }, onEvent: (e) => events.push(e), ...options });

  it('downloads for each target its own platform\'s wheels and marker-dependent dependencies, and adds them like add-wheel', async () => {
    const repo = join(dir, 'repo1');
    const events: FetchEvent[] = [];
    const result = await fetch(repo, { specs: ['markerapp'] }, events);
    expect(result.failed).to.equal(false);
    const byTarget = Object.fromEntries(result.targets.map((t) => [t.target, t.wheels.map((w) => `${w.filename} ${w.status}`)]));
    expect(byTarget).to.deep.equal({
      [PY38.label]: ['backportlib-1.0-py3-none-any.whl added', 'fastlib-1.0-cp38-cp38-manylinux_2_17_x86_64.whl added', 'markerapp-1.0-py3-none-any.whl added'],
      // fastlib 2.0 exists for cp312 only; backportlib is for Python < 3.9 only.
      [PY312.label]: ['fastlib-2.0-cp312-cp312-manylinux_2_17_x86_64.whl added', 'markerapp-1.0-py3-none-any.whl already-present'],
    });
    // The bytes of the test's own wheels, with a release line each (sha256), as add-wheel writes it.
    const log = await readFile(join(repo, 'release_log'), 'utf8');
    for (const file of ['fastlib-1.0-cp38-cp38-manylinux_2_17_x86_64.whl', 'fastlib-2.0-cp312-cp312-manylinux_2_17_x86_64.whl']) {
      expect(await sha256(join(repo, file))).to.equal(await sha256(index.built.get(file)!));
      expect(log).to.include(`${file} `).and.include(await sha256(index.built.get(file)!));
    }
    expect((await readdir(repo)).filter((f) => f.endsWith('.whl'))).to.have.length(4);
    expect(result.packages.find((p) => p.name === 'markerapp')?.targets).to.deep.equal({ [PY38.label]: 'added', [PY312.label]: 'already-present' });
    // From --find-links pip says "Processing <file>" for what was asked, then "Saved" for each file.
    expect(events.filter((e) => e.kind === 'collecting').map((e) => (e as { requirement: string }).requirement)).to.include('markerapp==1.0');
    expect(events.filter((e) => e.kind === 'saved' && e.target === PY38.label).map((e) => (e as { filename: string }).filename).sort()).to.deep.equal([
      'backportlib-1.0-py3-none-any.whl',
      'fastlib-1.0-cp38-cp38-manylinux_2_17_x86_64.whl',
      'markerapp-1.0-py3-none-any.whl',
    ]);
    expect(events.filter((e) => e.kind === 'target-start').map((e) => (e as { target: string }).target)).to.deep.equal([PY38.label, PY312.label]);
  });

  it('--dry-run lists what would be downloaded and changes nothing; versions in the repository are held unless --upgrade', async () => {
    const repo = join(dir, 'repo2');
    await fetch(repo, { specs: ['fastlib'], targets: [PY312] });
    // The index now offers a newer fastlib for cp312.
    index.built.set('new', await buildWheel(index.findLinks, { name: 'fastlib', version: '2.1', tag: 'cp312-cp312-manylinux_2_17_x86_64' }));
    const before = await readFile(join(repo, 'release_log'), 'utf8');
    const held = await fetch(repo, { specs: ['fastlib'], targets: [PY312], dryRun: true });
    expect(held.targets[0]!.wheels.map((w) => `${w.filename} ${w.status}`)).to.deep.equal(['fastlib-2.0-cp312-cp312-manylinux_2_17_x86_64.whl already-present']);
    expect(held.targets[0]!.pinned).to.equal(1);
    const upgrade = await fetch(repo, { specs: ['fastlib'], targets: [PY312], dryRun: true, upgrade: true });
    expect(upgrade.targets[0]!.wheels.map((w) => `${w.filename} ${w.status}`)).to.deep.equal(['fastlib-2.1-cp312-cp312-manylinux_2_17_x86_64.whl would-add']);
    expect(await readFile(join(repo, 'release_log'), 'utf8')).to.equal(before);
    expect((await readdir(repo)).filter((f) => f.endsWith('.whl'))).to.deep.equal(['fastlib-2.0-cp312-cp312-manylinux_2_17_x86_64.whl']);
  });

  it('a project with only an sdist is missing for that target (exit 1 in the CLI); the other requirements still arrive', async () => {
    const repo = join(dir, 'repo3');
    const result = await fetch(repo, { specs: ['onlysdist', 'fastlib==1.0'], targets: [PY38] });
    expect(result.failed).to.equal(true);
    const t = result.targets[0]!;
    expect(t.retried).to.equal(2);
    expect(t.missing.map((m) => [m.requirement, m.versions])).to.deep.equal([['onlysdist', []]]);
    expect(t.warnings, 'pip warnings').to.deep.equal([]);
    expect(t.missing[0]!.hint).to.match(/no wheel of onlysdist for cp38-cp38-manylinux_2_36_x86_64: build one with `vdeploy build`.*or pin a version/);
    expect(t.wheels.map((w) => `${w.filename} ${w.status}`)).to.deep.equal(['fastlib-1.0-cp38-cp38-manylinux_2_17_x86_64.whl added']);
  });
});

describe('the pip wrapper (pip-command.ts) against stand-in pips', () => {
  /** A `pip` package whose main() prints what it was given and the marker environment it sees. */
  async function fakePip(dir: string, withVendor: boolean): Promise<string> {
    const root = join(dir, withVendor ? 'vendored' : 'bare');
    await mkdir(join(root, 'pip', '_internal', 'cli'), { recursive: true });
    await writeFile(join(root, 'pip', '__init__.py'), '__version__ = "24.0"\n');
    await writeFile(join(root, 'pip', '_internal', '__init__.py'), '');
    await writeFile(join(root, 'pip', '_internal', 'cli', '__init__.py'), '');
    const seen = withVendor ? 'from pip._vendor.packaging import markers\n    print(markers.default_environment()["python_version"])\n' : '';
    await writeFile(join(root, 'pip', '_internal', 'cli', 'main.py'), `def main(args):\n    print(" ".join(args))\n    ${seen || 'pass'}\n    return 3\n`);
    if (withVendor) {
      await mkdir(join(root, 'pip', '_vendor', 'packaging'), { recursive: true });
      await writeFile(join(root, 'pip', '_vendor', '__init__.py'), '');
      await writeFile(join(root, 'pip', '_vendor', 'packaging', '__init__.py'), '');
      await writeFile(join(root, 'pip', '_vendor', 'packaging', 'markers.py'), 'def default_environment():\n    return {"python_version": "local"}\n');
    }
    return root;
  }
  const run = (pythonPath: string, markers: object) =>
    spawnSync('python3', ['-c', PIP_WRAPPER, JSON.stringify(markers), 'download', 'x'], { encoding: 'utf8', env: { ...process.env, PYTHONPATH: pythonPath } });

  it('hands pip its arguments and exit code, with the target\'s marker environment', async () => {
    const root = await fakePip(await makeTempDir('vdeploy-fakepip-'), true);
    const r = run(root, { python_version: '3.8' });
    expect([r.status, r.stdout, r.stderr]).to.deep.equal([3, 'download x\n3.8\n', '']);
    expect(run(root, {}).stdout).to.equal('download x\nlocal\n');
  });

  it('says so when this pip\'s marker environment cannot be set, and runs pip anyway', async () => {
    const root = await fakePip(await makeTempDir('vdeploy-fakepip-'), false);
    const r = run(root, { python_version: '3.8' });
    expect(r.status).to.equal(3);
    expect(r.stdout).to.equal('download x\n');
    expect(parsePipLine(r.stderr.trim())).to.deep.include({ kind: 'markers-not-set' });
  });
});
