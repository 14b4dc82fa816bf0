/**
 * `vdeploy relocate` end to end: a real venv of Django, gunicorn and requests (from ../shared/wheels)
 * plus a test app with a console script, built once at one path and copied (`cp -a`) for each test,
 * then moved and relocated with the built CLI — locally, and over SSH on a real sshd fleet host.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import type { RelocateEntry } from '../../src/cli/commands/relocate.js';
import { buildWheel } from '../helpers/build-wheel.js';
import { makeTempDir, runVdeploy } from '../helpers/cli.js';
import { startFleet, type Fleet } from '../helpers/fleet.js';
import { SHARED_WHEELS } from '../helpers/paths.js';

// Python as on a server (a developer's shell may have turned bytecode writing off), pip offline.
const ENV = {
  ...Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'PYTHONDONTWRITEBYTECODE')),
  PIP_CONFIG_FILE: '/dev/null',
  PIP_DISABLE_PIP_VERSION_CHECK: '1',
};

function run(argv: string[]): string {
  return execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8', env: ENV, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Every file (and symlink target) under dir whose bytes contain needle, relative to dir. */
function filesContaining(dir: string, needle: string): string[] {
  const found: string[] = [];
  const bytes = Buffer.from(needle);
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = path.join(d, name);
      const st = lstatSync(p);
      if (st.isSymbolicLink()) {
        if (readlinkSync(p).includes(needle)) found.push(path.relative(dir, p));
      } else if (st.isDirectory()) walk(p);
      else if (st.isFile() && readFileSync(p).includes(bytes)) found.push(path.relative(dir, p));
    }
  };
  walk(dir);
  return found.sort();
}

function treeDigest(dir: string): string {
  const hash = createHash('sha256');
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = path.join(d, name);
      const st = lstatSync(p);
      hash.update(`${path.relative(dir, p)}\0${st.mode}\0${st.mtimeMs}\0`);
      if (st.isSymbolicLink()) hash.update(readlinkSync(p));
      else if (st.isDirectory()) walk(p);
      else hash.update(readFileSync(p));
    }
  };
  walk(dir);
  return hash.digest('hex');
}

/**
 * A real interpreter of another X.Y than /usr/bin/python3's, outside /usr/bin and /usr/local/bin (so
 * that a PATH of only the system's directories hides it): pyenv's, on this project's machines.
 */
function findOtherPython(): { exe: string; xy: string } | undefined {
  const local = run(['/usr/bin/python3', '-c', 'import sys; print("%d.%d" % sys.version_info[:2])']).trim();
  const versions = path.join(process.env.PYENV_ROOT ?? path.join(process.env.HOME ?? '/root', '.pyenv'), 'versions');
  let dirs: string[] = [];
  try {
    dirs = readdirSync(versions).map((v) => path.join(versions, v, 'bin'));
  } catch {
    return undefined;
  }
  for (const dir of dirs.sort().reverse()) {
    let names: string[] = [];
    try {
      names = readdirSync(dir).filter((f) => /^python3\.\d+$/.test(f));
    } catch {
      continue;
    }
    for (const name of names) {
      const xy = name.slice('python'.length);
      if (xy === local || Number(xy.split('.')[1]) < 9) continue;
      const exe = path.join(dir, name);
      const check = spawnSync(exe, ['-c', 'import venv, sys; print("%d.%d" % sys.version_info[:2])'], { encoding: 'utf8' });
      if (check.status === 0 && check.stdout.trim() === xy) return { exe, xy };
    }
  }
  return undefined;
}

function setCfg(venv: string, key: string, value: string): void {
  const file = path.join(venv, 'pyvenv.cfg');
  writeFileSync(file, readFileSync(file, 'utf8').replace(new RegExp(`^${key} = .*$`, 'm'), `${key} = ${value}`));
}

describe('vdeploy relocate (real venvs)', function () {
  this.timeout(180_000);
  let root: string;
  let built: string; // the venv as built: every copy still names this path
  let siteRel: string;
  let n = 0;

  /** A copy of the built venv, moved (mv) to `dest` — as if the venv itself had been moved there. */
  const movedCopy = (dest: string): string => {
    const staging = path.join(root, `staging${++n}`);
    run(['cp', '-a', built, staging]);
    mkdirSync(path.dirname(dest), { recursive: true });
    run(['mv', staging, dest]);
    return dest;
  };

  before(async () => {
    root = await makeTempDir('vdeploy-relocate-e2e-');
    const wheel = await buildWheel(path.join(root, 'app-wheels'), {
      name: 'relocdemo',
      version: '1.0',
      files: {
        'relocdemo/__init__.py': 'import sys\n\ndef main():\n    print("relocdemo", sys.prefix, __file__)\n',
      },
      entryPoints: { relocdemo: 'relocdemo:main' },
    });
    built = path.join(root, 'build', 'venv');
    run(['/usr/bin/python3', '-m', 'venv', built]);
    run([
      path.join(built, 'bin', 'python'), '-m', 'pip', 'install', '-q', '--isolated', '--no-index',
      '--find-links', SHARED_WHEELS, 'django', 'gunicorn', 'requests', wheel,
    ]);
    siteRel = path.relative(built, run([path.join(built, 'bin', 'python'), '-c', 'import sysconfig; print(sysconfig.get_path("purelib"))']).trim());
  });

  it('moved to a path with a space and relocated: python, django-admin, gunicorn, the app, pip and activate work; no file names the old path', async () => {
    const venv = movedCopy(path.join(root, 'moved here', 'my venv'));
    // Before relocating, the moved venv's scripts still run the interpreter of the venv at the old path.
    expect(run([path.join(venv, 'bin', 'relocdemo')])).to.match(new RegExp(`^relocdemo ${built} `));

    const r = await runVdeploy(['relocate', venv, '--update-path', 'auto'], { env: ENV });
    expect(r.exitCode, r.stderr).to.equal(0);
    expect(r.stdout).to.include(`${venv}: relocated from ${built} (read from bin/activate) to ${venv}`);
    expect(r.stdout).to.match(/^\s+bytecode\s+\d+ \.pyc files in \d+ __pycache__ directories/m);
    expect(r.stdout).to.match(/; 0 leftovers\n$/);
    expect(r.stderr).to.equal('');

    expect(run([path.join(venv, 'bin', 'python'), '-c', 'import sys; print(sys.prefix)'])).to.equal(`${venv}\n`);
    expect(run([path.join(venv, 'bin', 'django-admin'), '--version'])).to.equal('5.2.17\n');
    expect(run([path.join(venv, 'bin', 'gunicorn'), '--version'])).to.match(/^gunicorn \(version 26\.2\.0\)/);
    expect(run([path.join(venv, 'bin', 'relocdemo')])).to.equal(`relocdemo ${venv} ${venv}/${siteRel}/relocdemo/__init__.py\n`);
    expect(readFileSync(path.join(venv, 'bin', 'gunicorn'), 'utf8').split('\n')[1]).to.equal(`'''exec' "${venv}/bin/python" "$0" "$@"`);
    const shell = spawnSync('bash', ['-c', 'source "$1/bin/activate" && echo "$VIRTUAL_ENV" && command -v gunicorn', 'bash', venv], { encoding: 'utf8', env: ENV });
    expect(shell.stdout).to.equal(`${venv}\n${venv}/bin/gunicorn\n`);
    expect(filesContaining(venv, built)).to.deep.equal([]);

    run([path.join(venv, 'bin', 'pip'), 'install', '-q', '--isolated', '--no-index', '--find-links', SHARED_WHEELS, 'packaging']);
    expect(run([path.join(venv, 'bin', 'python'), '-c', 'import packaging; print(packaging.__file__)'])).to.equal(`${venv}/${siteRel}/packaging/__init__.py\n`);
    expect(filesContaining(venv, built)).to.deep.equal([]);

    const again = await runVdeploy(['relocate', venv, '--update-path', 'auto'], { env: ENV });
    expect(again.exitCode, again.stderr).to.equal(0);
    expect(again.stdout).to.equal(`${venv}: already at ${venv} (nothing to do)\n`);
  });

  it('--dry-run --json lists every file it would change and why, and changes nothing', async () => {
    const venv = movedCopy(path.join(root, 'dry', 'venv'));
    const digest = treeDigest(venv);
    const r = await runVdeploy(['relocate', venv, '--update-path', 'auto', '--dry-run', '--json'], { env: ENV });
    expect(r.exitCode, r.stderr).to.equal(0);
    expect(treeDigest(venv)).to.equal(digest);
    const entries = JSON.parse(r.stdout) as RelocateEntry[];
    expect(entries).to.have.length(1);
    const result = entries[0]!.result!;
    expect(entries[0]!.target).to.equal(venv);
    expect(result).to.include({ dryRun: true, oldPath: built, newPath: venv, alreadyRelocated: false });
    const byPath = new Map(result.changes.map((c) => [c.path, c]));
    for (const script of ['django-admin', 'gunicorn', 'relocdemo', 'pip', 'sqlformat', 'normalizer']) {
      expect(byPath.get(`bin/${script}`), script).to.include({ kind: 'script' });
      expect(byPath.get(`bin/${script}`)!.reason).to.match(/^interpreter .* -> .* \(plain shebang\)$/);
    }
    for (const activate of ['bin/activate', 'bin/activate.csh', 'bin/activate.fish']) expect(byPath.get(activate), activate).to.include({ kind: 'activate' });
    expect(byPath.get('pyvenv.cfg')).to.include({ kind: 'pyvenv.cfg' });
    expect(byPath.get(`${siteRel}/django/db/models/__pycache__`)).to.include({ kind: 'bytecode' });
    expect(result.changes.at(-1)!.path).to.equal('bin/activate');
    expect(result.leftovers).to.deep.equal([]);

    const text = await runVdeploy(['relocate', venv, '--update-path', 'auto', '--dry-run'], { env: ENV });
    expect(text.stdout).to.include('would relocate from');
    expect(text.stdout).to.match(new RegExp(`^\\s+bytecode\\s+${siteRel}/django/db/models/__pycache__\\s+\\d+ \\.pyc files compiled at the old path`, 'm'));
    expect(treeDigest(venv)).to.equal(digest);
  });

  it('an interrupted run (killed after the first files) is finished by running it again', async () => {
    const venv = movedCopy(path.join(root, 'interrupted', 'venv'));
    const killed = await runVdeploy(['relocate', venv, '--update-path', 'auto'], { env: { ...ENV, VDEPLOY_RELOCATE_KILL_AFTER: '3' } });
    expect(killed.exitCode).to.equal(1);
    expect(killed.stderr).to.match(/error: relocating .*: the relocate script was killed by SIGKILL/);
    expect(killed.stderr).to.match(/hint: run the same command again: relocate continues where it stopped/);
    // The first scripts were rewritten; the marker was not.
    expect(readFileSync(path.join(venv, 'bin', 'django-admin'), 'utf8')).to.include(`#!${venv}/bin/python`);
    expect(readFileSync(path.join(venv, 'bin', 'activate'), 'utf8')).to.include(`VIRTUAL_ENV=${built}\n`);

    const resumed = await runVdeploy(['relocate', venv, '--update-path', 'auto', '--json'], { env: ENV });
    expect(resumed.exitCode, resumed.stderr).to.equal(0);
    const result = (JSON.parse(resumed.stdout) as RelocateEntry[])[0]!.result!;
    expect(result).to.include({ oldPath: built, complete: true });
    expect(result.changes.map((c) => c.path)).not.to.include('bin/django-admin');
    expect(filesContaining(venv, built)).to.deep.equal([]);
    expect(run([path.join(venv, 'bin', 'gunicorn'), '--version'])).to.match(/^gunicorn/);
    const third = await runVdeploy(['relocate', venv, '--update-path', 'auto'], { env: ENV });
    expect(third.stdout).to.include('already at');
  });

  it('--reinitialize after the interpreter link was replaced (a venv from another machine), then the path', async () => {
    const venv = movedCopy(path.join(root, 'other machine', 'venv'));
    const elsewhere = '/opt/vdeploy-build-host/bin';
    unlinkSync(path.join(venv, 'bin', 'python3'));
    symlinkSync(`${elsewhere}/python3`, path.join(venv, 'bin', 'python3'));
    setCfg(venv, 'home', elsewhere);
    expect(spawnSync(path.join(venv, 'bin', 'python'), ['-c', '1']).status).not.to.equal(0);

    const r = await runVdeploy(['relocate', venv, '--reinitialize', '--update-path', 'auto'], { env: ENV });
    expect(r.exitCode, r.stderr).to.equal(0);
    expect(r.stdout).to.match(new RegExp(`^${venv}: re-linked to /\\S+/python3\\.\\d+ \\(Python 3\\.\\d+\\.\\d+\\)$`, 'm'));
    expect(r.stdout).to.match(/interpreter\s+bin\/python3\s+bin\/python3 pointed to \/opt\/vdeploy-build-host\/bin\/python3, which does not exist here/);
    expect(r.stdout).to.include(`relocated from ${built}`);
    expect(run([path.join(venv, 'bin', 'python'), '-c', 'import sys; print(sys.prefix)'])).to.equal(`${venv}\n`);
    expect(run([path.join(venv, 'bin', 'django-admin'), '--version'])).to.equal('5.2.17\n');
    expect(readFileSync(path.join(venv, 'pyvenv.cfg'), 'utf8')).not.to.include(elsewhere);
    expect(filesContaining(venv, built)).to.deep.equal([]);
  });

  it('--reinitialize refuses a venv of another Python X.Y (simulated through pyvenv.cfg, so it runs on any machine)', async () => {
    const venv = movedCopy(path.join(root, 'py399', 'venv'));
    renameSync(path.join(venv, path.dirname(siteRel)), path.join(venv, 'lib', 'python3.99'));
    setCfg(venv, 'version', '3.99.0');
    setCfg(venv, 'home', '/opt/python3.99/bin');
    unlinkSync(path.join(venv, 'bin', 'python3'));
    symlinkSync('/opt/python3.99/bin/python3.99', path.join(venv, 'bin', 'python3'));
    const digest = treeDigest(venv);
    const r = await runVdeploy(['relocate', venv, '--reinitialize', '--update-path', 'auto'], { env: ENV });
    expect(r.exitCode).to.equal(1);
    expect(r.stderr).to.match(/error: \/.+\/venv: it is a Python 3\.99 venv \(pyvenv\.cfg version = 3\.99\.0\) and this machine has no Python 3\.99 \(.*is 3\.\d+\.\d+.*\): its site-packages \(lib\/python3\.99\) would not match another version/);
    expect(r.stderr).to.match(/hint: install Python 3\.99 here, or rebuild the venv/);
    expect(r.stdout).to.equal('');
    expect(treeDigest(venv)).to.equal(digest);
  });

  describe('with a venv of another Python X.Y that this machine has (pyenv), when there is one', () => {
    let other: { exe: string; xy: string } | undefined;
    let otherVenv: string;
    /** A copy of the other-X.Y venv whose interpreter link and home point at a machine that is not this one. */
    const fromAnotherMachine = (dest: string): string => {
      mkdirSync(path.dirname(dest), { recursive: true });
      run(['cp', '-a', otherVenv, dest]);
      const gone = '/opt/vdeploy-other-host/bin';
      for (const name of readdirSync(path.join(dest, 'bin')).filter((f) => /^python[\d.]*$/.test(f))) {
        const link = path.join(dest, 'bin', name);
        if (path.isAbsolute(readlinkSync(link))) {
          unlinkSync(link);
          symlinkSync(`${gone}/python${other!.xy}`, link);
        }
      }
      setCfg(dest, 'home', gone);
      return dest;
    };

    before(function () {
      other = findOtherPython();
      if (!other) this.skip();
      otherVenv = path.join(root, 'other-xy', 'venv');
      run([other.exe, '-m', 'venv', '--without-pip', otherVenv]);
    });

    it('--reinitialize refuses it where no Python of its X.Y can be found (only the system directories on PATH)', async () => {
      const venv = fromAnotherMachine(path.join(root, 'other-xy-refused', 'venv'));
      const digest = treeDigest(venv);
      // Only the system's directories on PATH: this machine's Python is /usr/bin's.
      const r = await runVdeploy(['relocate', venv, '--reinitialize', '--update-path', 'auto'], { env: { ...ENV, PATH: '/usr/bin:/bin' } });
      expect(r.exitCode).to.equal(1);
      const xy = other!.xy.replace('.', '\\.');
      expect(r.stderr).to.match(new RegExp(`error: ${venv}: it is a Python ${xy} venv \\(pyvenv\\.cfg version = ${xy}\\.\\d+\\) and this machine has no Python ${xy} \\(/usr/bin/python3 is 3\\.\\d+\\.\\d+\\): its site-packages \\(lib/python${xy}\\) would not match another version`));
      expect(treeDigest(venv)).to.equal(digest);
    });

    it('--reinitialize re-links it to the interpreter of its own X.Y, not the default python3', async () => {
      const venv = fromAnotherMachine(path.join(root, 'other-xy-relinked', 'venv'));
      const r = await runVdeploy(['relocate', venv, '--reinitialize', '--update-path', 'auto'], {
        env: { ...ENV, PATH: `${path.dirname(other!.exe)}:/usr/bin:/bin` },
      });
      expect(r.exitCode, r.stderr).to.equal(0);
      expect(r.stdout).to.include(`re-linked to ${path.dirname(other!.exe)}/python${other!.xy}`);
      expect(run([path.join(venv, 'bin', 'python'), '-c', 'import sys; print("%d.%d" % sys.version_info[:2], sys.prefix)'])).to.equal(`${other!.xy} ${venv}\n`);
    });
  });

  it('a bare name is a selector; the error says how to name a local directory', async () => {
    const dir = await makeTempDir();
    run(['cp', '-a', built, path.join(dir, 'venv')]);
    const r = await runVdeploy(['relocate', 'venv', '--update-path', 'auto'], { cwd: dir, env: ENV });
    expect(r.exitCode).to.equal(2);
    expect(r.stderr).to.match(/error: no deployfile/);
    expect(r.stderr).to.match(/for the local directory venv, write \.\/venv/);
    const none = await runVdeploy(['relocate', './venv'], { cwd: dir, env: ENV });
    expect(none.exitCode).to.equal(2);
    expect(none.stderr).to.match(/nothing to do: give --update-path NEW \(or auto\), --reinitialize, or both/);
  });

  describe('over SSH on a fleet host', () => {
    let fleet: Fleet | undefined;
    let project: string;
    let venvPath: string;

    before(async () => {
      fleet = await startFleet({ hosts: 1 });
      const host = fleet.hosts[0]!;
      venvPath = path.join(host.root, 'srv', 'app', 'venv');
      run(['mkdir', '-p', path.dirname(venvPath)]);
      run(['cp', '-a', built, venvPath]);
      project = await makeTempDir('vdeploy-relocate-project-');
      writeFileSync(path.join(project, 'requirements.txt'), 'django\n');
      const config = {
        ssh: { knownHosts: fleet.knownHostsPath, identityFile: fleet.clientKeyPath },
        hosts: [{ name: host.name, address: host.address, port: host.port, user: fleet.user }],
        venvs: [{ host: host.name, path: venvPath }],
      };
      writeFileSync(path.join(project, 'deployfile.ts'), `export default ${JSON.stringify(config, null, 2)};\n`);
    });
    after(() => fleet?.stop());

    it('relocates a configured venv copied there from elsewhere (--update-path auto), and reports it as JSON', async () => {
      const host = fleet!.hosts[0]!;
      const r = await runVdeploy(['relocate', host.name, '--update-path', 'auto', '--json'], { cwd: project, env: ENV });
      expect(r.exitCode, r.stderr).to.equal(0);
      const entries = JSON.parse(r.stdout) as RelocateEntry[];
      expect(entries.map((e) => e.target)).to.deep.equal([`${fleet!.user}@${host.name}:${venvPath}`]);
      expect(entries[0]!.result).to.include({ venv: venvPath, oldPath: built, newPath: venvPath, complete: true });
      expect(entries[0]!.result!.leftovers).to.deep.equal([]);

      const prefix = await fleet!.exec(host, [`${venvPath}/bin/python`, '-c', 'import sys; print(sys.prefix)']);
      expect(prefix.stdout).to.equal(`${venvPath}\n`);
      expect((await fleet!.exec(host, [`${venvPath}/bin/gunicorn`, '--version'])).stdout).to.match(/^gunicorn/);
      expect((await fleet!.exec(host, [`${venvPath}/bin/relocdemo`])).stdout).to.match(new RegExp(`^relocdemo ${venvPath} `));
      expect(filesContaining(venvPath, built)).to.deep.equal([]);

      const again = await runVdeploy(['relocate', `${host.name}:${venvPath}`, '--update-path', 'auto'], { cwd: project, env: ENV });
      expect(again.stdout).to.equal(`${fleet!.user}@${host.name}:${venvPath}: already at ${venvPath} (nothing to do)\n`);
    });

    it('rewrites a venv for a path it will be moved to (--update-path NEW), which works after the mv', async () => {
      const host = fleet!.hosts[0]!;
      const target = path.join(host.root, 'srv', 'release 2', 'venv');
      const r = await runVdeploy(['relocate', `:${venvPath}`, '--update-path', target], { cwd: project, env: ENV });
      expect(r.exitCode, r.stderr).to.equal(0);
      expect(r.stdout).to.include(`the venv is still at ${venvPath}: it works once moved to ${target}`);
      await fleet!.exec(host, ['sh', '-c', 'mkdir -p "$(dirname "$2")" && mv "$1" "$2"', 'sh', venvPath, target]);
      expect((await fleet!.exec(host, [`${target}/bin/django-admin`, '--version'])).stdout).to.equal('5.2.17\n');
      expect((await fleet!.exec(host, [`${target}/bin/python`, '-c', 'import sys; print(sys.prefix)'])).stdout).to.equal(`${target}\n`);
      expect(filesContaining(target, venvPath)).to.deep.equal([]);
      expect(filesContaining(target, built)).to.deep.equal([]);
    });
  });
});
