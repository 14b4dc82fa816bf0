/**
 * Issue 19, part PKG: the PackageTree of a real venv (a small app wheel + the shared django/gunicorn
 * wheels), built here and relocated to its prefix. The prefix is a temp directory, so the tree can be
 * written out at its final paths without root or a chroot, and the venv run from there.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { parseConfig } from '../../src/config/load-deployfile.js';
import { ConfigError } from '../../src/errors.js';
import { assembleTree } from '../../src/package/assemble.js';
import { buildPackageVenv, type BuiltVenv } from '../../src/package/build-venv.js';
import { readRunpaths } from '../../src/package/elf-runpath.js';
import type { PackageTree } from '../../src/package/tree.js';
import { LocalConnection } from '../../src/remote/local-connection.js';
import { addWheels } from '../../src/wheels/repository.js';
import { buildWheel } from '../helpers/build-wheel.js';
import { makeTempDir } from '../helpers/cli.js';
import { sharedWheel } from '../helpers/paths.js';

const run = promisify(execFile);
const PYENV = '/root/.pyenv/versions/3.12.1';
const SHARED = ['django-5.2.17-py3-none-any.whl', 'asgiref-3.12.1-py3-none-any.whl', 'sqlparse-0.6.0-py3-none-any.whl', 'gunicorn-26.2.0-py3-none-any.whl', 'packaging-26.3-py3-none-any.whl'];
const APP = 'import sys\n\ndef main():\n    import django\n    print(sys.prefix, sys.base_prefix, django.get_version())\n';

async function project(interpreter: unknown): Promise<{ dir: string; prefix: string; config: ReturnType<typeof parseConfig> }> {
  const dir = await makeTempDir('vdeploy-package-');
  const app = await buildWheel(join(dir, 'dist'), { name: 'myapp', version: '1.0', files: { 'myapp/__init__.py': APP }, requiresDist: ['django', 'gunicorn'], entryPoints: { myapp: 'myapp:main' } });
  await addWheels(join(dir, 'wheels'), [app, ...SHARED.map(sharedWheel)]);
  await writeFile(join(dir, 'requirements.txt'), 'myapp\n');
  await mkdir(join(dir, 'etc', 'myapp'), { recursive: true });
  await writeFile(join(dir, 'etc', 'myapp', 'app.conf'), 'workers = 2\n');
  await writeFile(join(dir, 'myapp.service'), '[Service]\nExecStart=/opt/myapp/venv/bin/gunicorn app\n');
  const prefix = join(dir, 'install', 'myapp');
  const config = parseConfig(
    { hosts: [{ name: 'web1' }], venvs: [{ host: 'web1', path: '/srv/app' }], packages: [{ name: 'myapp', venv: 'web1:/srv/app', prefix, interpreter, files: ['./etc/'], service: { unit: './myapp.service' }, depends: ['libpq5'] }] },
    join(dir, 'deployfile.mjs'),
  );
  return { dir, prefix, config };
}

/** Writes the entries under `prefix` at their paths (the rest is /etc and /lib: checked, not written). */
async function install(tree: PackageTree, prefix: string): Promise<void> {
  for (const e of tree.entries) {
    if (!e.path.startsWith(`${prefix}/`)) continue;
    if (e.kind === 'dir') await mkdir(e.path, { recursive: true, mode: e.mode });
    else if (e.kind === 'file') {
      await mkdir(dirname(e.path), { recursive: true });
      await writeFile(e.path, e.content);
      await chmod(e.path, e.mode);
    } else await symlink(e.target, e.path);
  }
}

function naming(tree: PackageTree, text: string): string[] {
  const needle = Buffer.from(text);
  return tree.entries.filter((e) => (e.kind === 'file' && e.content.includes(needle)) || (e.kind === 'symlink' && e.target.includes(text))).map((e) => e.path);
}

describe('vdeploy package: the package tree of a real venv (issue 19)', function () {
  this.timeout(300_000);
  const dirs: string[] = [];
  after(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it("system interpreter: the venv is relocated to <prefix>/venv, no staging path remains, it runs there; conffiles, unit, depends, scripts", async () => {
    const { dir, prefix, config } = await project('system');
    dirs.push(dir);
    const built = await buildPackageVenv(config, config.packages[0]!, { local: new LocalConnection() });
    let tree: PackageTree;
    try {
      tree = await assembleTree({ pkg: config.packages[0]!, built, version: '1.0', iteration: 2, mtime: 1_700_000_000 });
      expect(naming(tree, built.staging)).to.deep.equal([]);
    } finally {
      await built.cleanup();
    }
    expect(existsSync(built.staging)).to.equal(false);
    expect(built.packages.map((p) => p.key)).to.include.members(['asgiref', 'django', 'gunicorn', 'myapp', 'sqlparse']);
    const m = tree.meta;
    expect(m).to.include({ name: 'myapp', version: '1.0', iteration: 2, architecture: 'all' });
    expect(m.depends).to.deep.equal([`python${built.interpreter.xy}`, `python3 (>= ${built.interpreter.xy})`, `python3 (<< 3.${Number(built.interpreter.xy.split('.')[1]) + 1})`, 'libpq5']);
    expect(m.requires).to.deep.equal([`python${built.interpreter.xy}`, 'libpq5']);
    expect(tree.conffiles).to.deep.equal(['/etc/myapp/app.conf']);
    expect(tree.entries.find((e) => e.path === '/lib/systemd/system/myapp.service')).to.include({ kind: 'file', mode: 0o644 });
    expect(tree.scripts.postinst).to.contain('systemctl restart myapp.service');
    const cfg = tree.entries.find((e) => e.path === `${prefix}/venv/pyvenv.cfg`);
    expect(cfg?.kind === 'file' && cfg.content.toString()).to.match(/^home = \/usr\/bin$/m);
    const py = tree.entries.find((e) => e.path === `${prefix}/venv/bin/python${built.interpreter.xy}` || e.path === `${prefix}/venv/bin/python3`);
    expect(py?.kind).to.equal('symlink');
    // Bytecode for the final path is in the tree.
    expect(tree.entries.some((e) => e.kind === 'file' && e.path.startsWith(`${prefix}/venv/lib/`) && e.path.endsWith('/myapp/__pycache__/__init__.cpython-' + built.interpreter.xy.replace('.', '') + '.pyc') && e.content.includes(Buffer.from(`${prefix}/venv/lib/`)))).to.equal(true);
    for (const e of tree.entries) if (e.kind !== 'symlink') expect([0o644, 0o755]).to.include(e.mode);

    await install(tree, prefix);
    const { stdout } = await run(join(prefix, 'venv', 'bin', 'myapp'), [], { env: { PATH: '/usr/bin:/bin' } });
    expect(stdout.trim()).to.match(new RegExp(`^${prefix}/venv /usr 5\\.2\\.17$`));
    const gunicorn = await run(join(prefix, 'venv', 'bin', 'gunicorn'), ['--version']);
    expect(gunicorn.stdout + gunicorn.stderr).to.contain('26.2.0');
  });

  it('shipped interpreter (a pyenv build): <prefix>/python with relative run paths; the venv runs on it, not on the system python', async function () {
    if (!existsSync(`${PYENV}/bin/python3.12`)) this.skip();
    const { dir, prefix, config } = await project({ path: PYENV });
    dirs.push(dir);
    const built = await buildPackageVenv(config, config.packages[0]!, { local: new LocalConnection() });
    let tree: PackageTree;
    try {
      tree = await assembleTree({ pkg: config.packages[0]!, built, version: '1.0', iteration: 1, mtime: 1_700_000_000 });
    } finally {
      await built.cleanup();
    }
    expect(naming(tree, built.staging)).to.deep.equal([]);
    // The build prefix remains only as libpython's compiled-in fallback (docs/packages.md); no text file, no run path names it.
    const elf = (p: string) => tree.entries.some((e) => e.path === p && e.kind === 'file' && readRunpaths(e.content) !== undefined);
    expect(naming(tree, PYENV).filter((p) => !elf(p))).to.deep.equal([]);
    for (const e of tree.entries) if (e.kind === 'file') for (const r of readRunpaths(e.content) ?? []) expect(r.value).to.match(/^\$ORIGIN/);
    expect(tree.meta.architecture).to.equal('amd64');
    expect(tree.meta.depends).to.deep.equal(['libpq5']);
    expect(tree.entries.some((e) => e.path.includes('/python3.12/test/') || e.path.includes('/config-3.12'))).to.equal(false);

    await install(tree, prefix);
    const probe = 'import sys; print(sys.executable, sys.base_prefix); print([l.split()[-1] for l in open("/proc/self/maps") if "libpython" in l][0])';
    const { stdout } = await run(join(prefix, 'venv', 'bin', 'python'), ['-c', probe], { env: { PATH: '/usr/bin:/bin' } });
    expect(stdout.trim().split('\n')).to.deep.equal([`${prefix}/venv/bin/python ${prefix}/python`, `${prefix}/python/lib/libpython3.12.so.1.0`]);
    const app = await run(join(prefix, 'venv', 'bin', 'myapp'), []);
    expect(app.stdout.trim()).to.equal(`${prefix}/venv ${prefix}/python 5.2.17`);
  });

  it('a service unit inside a files tree is installed there once, as a conffile', async () => {
    const { dir, config } = await project('system');
    dirs.push(dir);
    await mkdir(join(dir, 'etc', 'systemd', 'system'), { recursive: true });
    await writeFile(join(dir, 'etc', 'systemd', 'system', 'myapp.service'), '[Service]\nExecStart=/bin/true\n');
    const pkg = { ...config.packages[0]!, service: { unit: join(dir, 'etc', 'systemd', 'system', 'myapp.service') } };
    // The venv itself is not what this checks: an empty staging venv will do.
    const staging = await makeTempDir('vdeploy-package-staging-');
    dirs.push(staging);
    await mkdir(join(staging, 'venv', 'bin'), { recursive: true });
    const built = { staging, packages: [], newestRelease: 0, cleanup: async () => {}, interpreter: { kind: 'system', command: '/usr/bin/python3.11', xy: '3.11', facts: { version: '3.11.2', markers: {}, supportedTags: [] } } } as unknown as BuiltVenv;
    const tree = await assembleTree({ pkg, built, version: '1', iteration: 1, mtime: 0 });
    expect(tree.conffiles).to.deep.equal(['/etc/myapp/app.conf', '/etc/systemd/system/myapp.service']);
    expect(tree.entries.some((e) => e.path.startsWith('/lib/systemd'))).to.equal(false);
    expect(tree.scripts.postinst).to.contain('systemctl enable myapp.service');
  });

  it('buildOn: refused with a shipped interpreter, and without a way to connect', async () => {
    const { dir, config } = await project('system');
    dirs.push(dir);
    const errorOf = (pkg: typeof config.packages[number]) => buildPackageVenv(config, pkg, { local: new LocalConnection() }).then(() => undefined, (e: unknown) => e);
    const noConnect = await errorOf({ ...config.packages[0]!, buildOn: 'web1' });
    expect(noConnect).to.be.instanceOf(ConfigError);
    expect((noConnect as Error).message).to.match(/buildOn needs a connection to web1/);
    const shipped = await errorOf({ ...config.packages[0]!, buildOn: 'web1', interpreter: { path: PYENV } });
    expect((shipped as Error).message).to.match(/buildOn works with interpreter 'system' only/);
  });
});
