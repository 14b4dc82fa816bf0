// The test helper's wheels are real wheels: deterministic, and installable by pip.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { buildWheel } from '../helpers/build-wheel.js';
import { makeTempDir } from '../helpers/cli.js';
import { SHARED_WHEELS } from '../helpers/paths.js';

const SYSTEM_PYTHON = '/usr/bin/python3';

/** Environment for pip with the machine's global pip settings (mirror, find-links) stripped. */
function pipEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PIP_')));
}

function run(cmd: string, args: string[]): { status: number | null; out: string } {
  const r = spawnSync(cmd, args, { env: pipEnv(), encoding: 'utf8', timeout: 90_000 });
  return { status: r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}` };
}

describe('buildWheel (test helper)', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await makeTempDir('vdeploy-build-wheel-');
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('is deterministic: same options, same bytes; different contents, different bytes', async () => {
    const a = await readFile(await buildWheel(join(dir, 'a'), { name: 'app', version: '1.0' }));
    const b = await readFile(await buildWheel(join(dir, 'b'), { name: 'app', version: '1.0' }));
    const c = await readFile(await buildWheel(join(dir, 'c'), { name: 'app', version: '1.0', files: { 'app/__init__.py': 'C = 1\n' } }));
    expect(a.equals(b)).to.equal(true);
    expect(a.equals(c)).to.equal(false);
  });

  it('builds a wheel that `pip install --isolated --no-index` installs into a /usr/bin/python3 venv', async function () {
    this.timeout(120_000);
    const probe = run(SYSTEM_PYTHON, ['-c', 'import venv, ensurepip']);
    if (probe.status !== 0) {
      this.test!.title += ` (skipped: ${SYSTEM_PYTHON} has no venv/ensurepip — install python3-venv)`;
      this.skip();
    }
    const wheel = await buildWheel(join(dir, 'dist'), {
      name: 'hello-app',
      version: '1.2.3',
      files: {
        'hello_app/__init__.py': '__version__ = "1.2.3"\n',
        'hello_app/cli.py': 'import idna\n\ndef main():\n    print("hello from", idna.encode("example.com").decode())\n',
      },
      requiresDist: ['idna>=3'],
      entryPoints: { 'hello-app': 'hello_app.cli:main' },
    });
    const venv = join(dir, 'venv');
    const made = run(SYSTEM_PYTHON, ['-m', 'venv', venv]);
    expect(made.status, made.out).to.equal(0);
    // idna comes from the shared real wheels: proves Requires-Dist is read, still fully offline.
    const pip = run(join(venv, 'bin', 'pip'), [
      'install', '--isolated', '--no-index', '--disable-pip-version-check', '--find-links', SHARED_WHEELS, wheel,
    ]);
    expect(pip.status, pip.out).to.equal(0);
    expect(pip.out).to.match(/Successfully installed .*hello-app-1\.2\.3/);
    const script = run(join(venv, 'bin', 'hello-app'), []);
    expect(script.status, script.out).to.equal(0);
    expect(script.out.trim()).to.equal('hello from example.com');
    const check = run(join(venv, 'bin', 'pip'), ['check', '--isolated', '--disable-pip-version-check']);
    expect(check.status, check.out).to.equal(0);
  });
});
