// `vdeploy package` through the built binary (issue 19, docs/packages.md), with the real tools as
// oracles: a project whose deployfile packages a venv of the test Django app (shopapp, with Django and
// gunicorn from ../shared/wheels) into /opt/vdeploy-e2e-pkg with a conffile under /etc/vdeploy-e2e-pkg/.
// The .deb is read by dpkg-deb and lintian, installed for real with dpkg (console script, imports, a real
// gunicorn over HTTP), upgraded with an edited conffile, removed and purged; installed again with
// apt-get from the flat repository `--apt-repo` writes, served by `python3 -m http.server` (apt's sources,
// lists and archives given on the command line: the machine's apt configuration is never changed). The
// .rpm is read by Debian's rpm (-qpi, -qpl, -K) and installed into a scratch root whose files must equal
// the .deb's. Both are byte-identical when built twice with the same SOURCE_DATE_EPOCH. A second package
// ships a pyenv CPython 3.12 and must run with that interpreter only (the original pyenv prefix and
// /usr/bin/python3* hidden in a private mount namespace). The package names and prefixes are the test's
// own; everything is purged in after(). Installing needs root: the suite is skipped otherwise.
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, mkdir, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { buildDjangoAppWheel } from '../helpers/django-app.js';
import { makeTempDir, runVdeploy, type CliResult } from '../helpers/cli.js';
import { ACCEPTED_LINTIAN_TAGS, lintian, VENV_LINTIAN_TAGS } from '../helpers/lintian.js';
import { freePort } from '../helpers/supervised-gunicorn.js';
import { sharedWheels } from '../helpers/venv-inspect.js';
import { LocalConnection } from '../../src/remote/local-connection.js';
import type { CommandResult } from '../../src/remote/command-result.js';

const local = new LocalConnection();
const NAME = 'vdeploy-e2e-pkg';
const PREFIX = '/opt/vdeploy-e2e-pkg';
const CONF_DIR = '/etc/vdeploy-e2e-pkg';
const CONF = `${CONF_DIR}/app.conf`;
// The shipped-interpreter package: a name and prefix of its own (two packages cannot own one conffile).
const PY_NAME = 'vdeploy-e2e-pkgpy';
const PY_PREFIX = '/opt/vdeploy-e2e-pkgpy';
const SHIPPED_PYTHON = '/root/.pyenv/versions/3.12.1';
const EPOCH = '1767225600'; // 2026-01-01T00:00:00Z
const SYSTEM_PYTHON = '/usr/bin/python3';


const skipReason = process.getuid?.() === 0 ? undefined : 'installing packages with dpkg/apt-get needs root';
if (skipReason) console.log(`    skipped vdeploy package e2e: ${skipReason}`);

/** A command; its result (never throws on a non-zero exit). */
/**
 * A command's result. dpkg is retried while another process holds its lock (the integration tier's
 * dpkg tests may run beside this file, and dpkg fails at once on a held lock): polls, up to 5 minutes.
 */
async function run(argv: string[], env?: Record<string, string>): Promise<CommandResult> {
  const deadline = Date.now() + 300_000;
  for (;;) {
    const r = await local.exec(argv, { ...(env ? { env } : {}), timeoutMs: 300_000, nothrow: true });
    if (argv[0] !== 'dpkg' || r.exitCode === 0 || !/lock/i.test(r.stderr) || Date.now() > deadline) return r;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/** A command that must succeed; its stdout. */
async function must(argv: string[], env?: Record<string, string>): Promise<string> {
  const r = await run(argv, env);
  expect(r.exitCode, `${argv.join(' ')}:\n${r.stderr}${r.stdout}`).to.equal(0);
  return r.stdout;
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Every entry under root (root excluded), as `relative path → "dir 755" | "file 644 <sha256>" | "link -> target"`. */
async function treeOf(root: string, under: string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (p: string): Promise<void> => {
    const st = await lstat(p);
    const rel = '/' + relative(root, p);
    const mode = (st.mode & 0o7777).toString(8);
    if (st.isSymbolicLink()) out.set(rel, `link -> ${await readlink(p)}`);
    else if (st.isDirectory()) {
      out.set(rel, `dir ${mode}`);
      for (const name of await readdir(p)) await walk(join(p, name));
    } else out.set(rel, `file ${mode} ${sha256(await readFile(p))}`);
  };
  for (const u of under) if (existsSync(join(root, u))) await walk(join(root, u));
  return out;
}

/** Files of the tree whose bytes contain `needle` (binary-safe: .pyc files included). */
async function filesContaining(root: string, needle: string): Promise<string[]> {
  const found: string[] = [];
  const n = Buffer.from(needle);
  const walk = async (p: string): Promise<void> => {
    const st = await lstat(p);
    if (st.isDirectory()) for (const name of await readdir(p)) await walk(join(p, name));
    else if (st.isFile() && (await readFile(p)).includes(n)) found.push(p);
  };
  await walk(root);
  return found;
}

/** Is a package known to the machine's dpkg (installed or with config files left)? */
async function dpkgKnows(name: string): Promise<boolean> {
  const r = await run(['dpkg-query', '-W', '-f', '${Status}', name]);
  return r.exitCode === 0 && !r.stdout.includes('not-installed');
}

async function purge(name: string): Promise<void> {
  if (await dpkgKnows(name)) await run(['dpkg', '--purge', name]);
}

/** A process this test started, stopped by its PID (SIGTERM, then SIGKILL after 10 s). */
async function stopProcess(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  process.kill(child.pid!, 'SIGTERM');
  const timer = setTimeout(() => child.exitCode === null && process.kill(child.pid!, 'SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

/** Polls until `probe` gives a value (not undefined) or the deadline passes. */
async function pollFor<T>(what: string, probe: () => Promise<T | undefined>, child: ChildProcess, timeoutMs = 60_000, log = () => ''): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${what}: the process exited (${child.exitCode}): ${log()}`);
    const v = await probe();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what}: not within ${timeoutMs} ms: ${log()}`);
}

async function httpGet(url: string): Promise<{ status: number; body: string } | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
    return { status: res.status, body: await res.text() };
  } catch {
    return undefined;
  }
}

/**
 * A real gunicorn from <prefix>/venv/bin/gunicorn serving the test Django app on 127.0.0.1; resolves
 * with the /health/ body, then stops it by PID. `wrap` runs it inside another command (unshare).
 */
async function serveHealth(prefix: string, wrap: string[] = [], env: Record<string, string> = {}): Promise<string> {
  const port = await freePort('127.0.0.1');
  const db = join(await makeTempDir('vdeploy-pkg-db-'), 'db.sqlite3');
  const argv = [...wrap, join(prefix, 'venv', 'bin', 'gunicorn'), '--bind', `127.0.0.1:${port}`, '--workers', '1', 'shopapp.wsgi:application'];
  const child = spawn(argv[0]!, argv.slice(1), { env: { ...process.env, SHOPAPP_DB: db, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  try {
    const res = await pollFor('gunicorn answering /health/', () => httpGet(`http://127.0.0.1:${port}/health/`), child, 60_000, () => log);
    expect(res.status, log).to.equal(200);
    return res.body;
  } finally {
    await stopProcess(child);
  }
}

/** The embedded source path of a .pyc (what a traceback would show), read by the venv's own Python. */
const PYC_FILENAME = 'import marshal, sys; d = open(sys.argv[1], "rb").read(); print(marshal.loads(d[16:]).co_filename)';

(skipReason ? describe.skip : describe)('vdeploy package: .deb and .rpm of a Django venv, real dpkg, apt-get, lintian and rpm as oracles', function () {
  this.timeout(900_000);
  let project: string;
  let out1: string;
  let out2: string;
  let aptRepo: string;
  let deb1: string;
  let rpm1: string;
  let deb2: string;
  const servers: ChildProcess[] = [];

  const vdeploy = (args: string[], env: Record<string, string> = {}): Promise<CliResult> =>
    runVdeploy(['package', ...args], { cwd: project, env: { SOURCE_DATE_EPOCH: EPOCH, SSH_AUTH_SOCK: undefined, ...env }, timeoutMs: 600_000 });
  const built = async (dir: string, ext: string): Promise<string[]> => (await readdir(dir)).filter((f) => f.endsWith(ext)).map((f) => join(dir, f));

  before(async () => {
    await cleanUp();
    project = await makeTempDir('vdeploy-pkg-project-');
    out1 = join(project, 'out1');
    out2 = join(project, 'out2');
    aptRepo = join(project, 'apt');
    const wheels = join(project, 'wheels');
    await mkdir(wheels);
    await writeFile(join(wheels, 'release_log'), '');
    await mkdir(join(project, 'etc', 'vdeploy-e2e-pkg'), { recursive: true });
    await writeFile(join(project, 'etc', 'vdeploy-e2e-pkg', 'app.conf'), 'greeting = one\n');
    await writeFile(join(project, 'requirements.txt'), 'shopapp\n');
    const common = { venv: 'pkgbuild:/srv/vdeploy-e2e-pkg', maintainer: 'vdeploy tests <tests@vdeploy.invalid>', description: 'Django test app of vdeploy\nA Django app in a venv, packaged by test/e2e/package.test.ts.' };
    const config = {
      wheels: './wheels',
      requirements: './requirements.txt',
      // A host nobody connects to: the venv is built locally.
      hosts: [{ name: 'pkgbuild', address: '127.0.0.1', port: 1 }],
      venvs: [{ host: 'pkgbuild', path: '/srv/vdeploy-e2e-pkg', python: SYSTEM_PYTHON }],
      packages: [
        { name: NAME, ...common, prefix: PREFIX, interpreter: 'system', files: ['./etc/'] },
        { name: PY_NAME, ...common, prefix: PY_PREFIX, interpreter: { path: SHIPPED_PYTHON } },
      ],
    };
    await writeFile(join(project, 'deployfile.ts'), `export default ${JSON.stringify(config, null, 2)};\n`);
    const add = await runVdeploy(['add-wheel', ...(await sharedWheels(['django-', 'asgiref-', 'sqlparse-', 'gunicorn-'])), await buildDjangoAppWheel(join(project, 'built'), { version: '1.0' })], { cwd: project });
    expect(add.exitCode, add.stderr).to.equal(0);
  });

  after(async () => {
    for (const s of servers) await stopProcess(s);
    await cleanUp();
  });

  async function cleanUp(): Promise<void> {
    await purge(NAME);
    await purge(PY_NAME);
    // Only the test's own names: leftovers of an earlier interrupted run.
    for (const p of [PREFIX, PY_PREFIX, CONF_DIR]) await rm(p, { recursive: true, force: true });
  }

  it('builds version 1.0 as .deb and .rpm, adds it to an apt repository, and says what it wrote', async () => {
    const r = await vdeploy([NAME, '--format', 'both', '--version', '1.0', '--out', out1, '--apt-repo', aptRepo]);
    expect(r.exitCode, r.stderr + r.stdout).to.equal(0);
    deb1 = join(out1, `${NAME}_1.0-1_all.deb`);
    rpm1 = join(out1, `${NAME}-1.0-1.noarch.rpm`);
    expect(await built(out1, '.deb'), r.stdout).to.deep.equal([deb1]);
    expect(await built(out1, '.rpm'), r.stdout).to.deep.equal([rpm1]);
    // One line per written file, with its size and sha256.
    for (const file of [deb1, rpm1]) {
      const bytes = await readFile(file);
      const line = r.stdout.split('\n').find((l) => l.includes(file.split('/').pop()!));
      expect(line, r.stdout).to.be.a('string');
      expect(line).to.include(sha256(bytes));
    }
    expect(await readdir(aptRepo)).to.include.members([`${NAME}_1.0-1_all.deb`, 'Packages', 'Packages.gz', 'Release']);
  });

  it('dpkg-deb reads it: control fields, conffiles, the venv under the prefix', async () => {
    const info = await must(['dpkg-deb', '--info', deb1]);
    expect(info).to.match(new RegExp(`^ Package: ${NAME}$`, 'm'));
    expect(info).to.match(/^ Version: 1\.0-1$/m);
    expect(info).to.match(/^ Architecture: all$/m);
    expect(info).to.match(/^ Maintainer: vdeploy tests <tests@vdeploy\.invalid>$/m);
    expect(info).to.match(/^ Installed-Size: \d+$/m);
    expect(info).to.match(/^ Description: Django test app of vdeploy$/m);
    // The system interpreter: Debian's python3.11, as both spellings of the same X.Y.
    const depends = /^ Depends: (.*)$/m.exec(info)?.[1] ?? '';
    expect(depends).to.include('python3.11');
    expect(depends).to.match(/python3 \(>= 3\.11\)/);
    expect(depends).to.match(/python3 \(<< 3\.12\)/);
    expect((await must(['dpkg-deb', '--info', deb1, 'conffiles'])).trim()).to.equal(CONF);
    const contents = await must(['dpkg-deb', '--contents', deb1]);
    for (const path of [`.${PREFIX}/venv/bin/python`, `.${PREFIX}/venv/bin/gunicorn`, `.${PREFIX}/venv/bin/shopapp-version`, `.${PREFIX}/venv/pyvenv.cfg`, `.${CONF}`]) {
      expect(contents, path).to.match(new RegExp(`\\s${path.replace(/[.+]/g, '\\$&')}( -> .*)?$`, 'm'));
    }
    for (const line of contents.trim().split('\n')) expect(line, 'root-owned').to.match(/^\S+ root\/root /);
    expect(contents, 'the venv python is a symlink to the system interpreter').to.match(new RegExp(`^l\\S+ .*\\.${PREFIX}/venv/bin/python -> `, 'm'));
  });

  it('lintian finds no errors (accepted tags: test/helpers/lintian.ts, docs/packages.md)', async () => {
    const { tags, output } = await lintian(deb1, [...Object.keys(ACCEPTED_LINTIAN_TAGS), ...Object.keys(VENV_LINTIAN_TAGS)]);
    expect(tags.filter((t) => t.severity === 'E').map((t) => `${t.tag} ${t.detail}`), output).to.deep.equal([]);
    const warnings = [...new Set(tags.filter((t) => t.severity === 'W').map((t) => t.tag))];
    if (warnings.length > 0) console.log(`      lintian warnings on the venv package: ${warnings.join(', ')}`);
  });

  it('rpm reads the .rpm: -qpi, -qpl, -K digests OK, %config(noreplace)', async () => {
    const info = await must(['rpm', '-qpi', rpm1]);
    expect(info).to.match(new RegExp(`^Name\\s*: ${NAME}$`, 'm'));
    expect(info).to.match(/^Version\s*: 1\.0$/m);
    expect(info).to.match(/^Release\s*: 1$/m);
    expect(info).to.match(/^Architecture\s*: noarch$/m);
    const list = (await must(['rpm', '-qpl', rpm1])).trim().split('\n');
    expect(list).to.include.members([`${PREFIX}/venv/bin/gunicorn`, `${PREFIX}/venv/pyvenv.cfg`, CONF]);
    const k = await run(['rpm', '-Kv', rpm1]);
    expect(k.exitCode, k.stdout + k.stderr).to.equal(0);
    expect(k.stdout).to.match(/Header SHA256 digest: OK/);
    expect(k.stdout).to.match(/Payload SHA256 digest: OK/);
    expect(k.stdout).not.to.match(/NOT OK|BAD/);
    expect(await must(['rpm', '-K', rpm1])).to.match(/digests OK/);
    expect((await must(['rpm', '-qp', '--configfiles', rpm1])).trim()).to.equal(CONF);
    expect(await must(['rpm', '-qp', '--requires', rpm1])).to.match(/^python3\.11\b/m);
  });

  it('the .rpm installed into a scratch root has exactly the files of the .deb (content, modes, symlinks)', async () => {
    const scratch = await makeTempDir('vdeploy-pkg-rpmroot-');
    const rpmRoot = join(scratch, 'root');
    const debRoot = join(scratch, 'deb');
    await mkdir(rpmRoot);
    // --dbpath is inside --root (rpm prefixes it); only the package's own subtrees are compared.
    const db = ['--root', rpmRoot, '--dbpath', '/rpmdb'];
    await must(['rpm', '-i', ...db, '--nodeps', '--noscripts', rpm1]);
    expect((await must(['rpm', '-q', ...db, NAME])).trim()).to.equal(`${NAME}-1.0-1.noarch`);
    // rpm -V checks every installed file against the header's digests, sizes and modes.
    const verify = await run(['rpm', '-V', ...db, '--nodeps', NAME]);
    expect(verify.exitCode, verify.stdout + verify.stderr).to.equal(0);
    await must(['dpkg-deb', '-x', deb1, debRoot]);
    const fromRpm = await treeOf(rpmRoot, [PREFIX, CONF_DIR]);
    const fromDeb = await treeOf(debRoot, [PREFIX, CONF_DIR]);
    expect(fromDeb.size).to.be.greaterThan(100);
    const differ = [...new Set([...fromRpm.keys(), ...fromDeb.keys()])].filter((k) => fromRpm.get(k) !== fromDeb.get(k)).slice(0, 20);
    expect(differ.map((k) => `${k}: rpm ${fromRpm.get(k)} / deb ${fromDeb.get(k)}`)).to.deep.equal([]);
  });

  it('is reproducible: the same SOURCE_DATE_EPOCH gives byte-identical .deb and .rpm', async () => {
    const again = join(project, 'out1-again');
    const r = await vdeploy([NAME, '--format', 'both', '--version', '1.0', '--out', again]);
    expect(r.exitCode, r.stderr + r.stdout).to.equal(0);
    expect(sha256(await readFile(join(again, `${NAME}_1.0-1_all.deb`))), '.deb').to.equal(sha256(await readFile(deb1)));
    expect(sha256(await readFile(join(again, `${NAME}-1.0-1.noarch.rpm`))), '.rpm').to.equal(sha256(await readFile(rpm1)));
  });

  it('dpkg -i installs it: the console script, imports and a real gunicorn serve from the prefix', async () => {
    await must(['dpkg', '-i', deb1]);
    expect(await must(['dpkg-query', '-W', '-f', '${Status} ${Version}', NAME])).to.equal('install ok installed 1.0-1');
    expect(await readFile(CONF, 'utf8')).to.equal('greeting = one\n');
    expect((await must([`${PREFIX}/venv/bin/shopapp-version`])).trim()).to.equal('shopapp 1.0');
    const where = await must([`${PREFIX}/venv/bin/python`, '-c', 'import sys, django, gunicorn, shopapp; print(sys.prefix, shopapp.__file__, django.__version__)']);
    expect(where.trim()).to.match(new RegExp(`^${PREFIX}/venv ${PREFIX}/venv/lib/python3\\.11/site-packages/shopapp/__init__\\.py 5\\.2\\.`));
    expect(await readFile(`${PREFIX}/venv/pyvenv.cfg`, 'utf8')).to.match(/^home = \/usr\/bin$/m);
    expect((await readFile(`${PREFIX}/venv/bin/gunicorn`, 'utf8')).split('\n')[0]).to.equal(`#!${PREFIX}/venv/bin/python`);
    // Bytecode compiled for the final path, and no build path in any installed file.
    const pyc = join(PREFIX, 'venv/lib/python3.11/site-packages/django/__pycache__/__init__.cpython-311.pyc');
    expect((await must([`${PREFIX}/venv/bin/python`, '-c', PYC_FILENAME, pyc])).trim()).to.equal(`${PREFIX}/venv/lib/python3.11/site-packages/django/__init__.py`);
    expect(await filesContaining(PREFIX, `${tmpdir()}/vdeploy`), 'files naming a /tmp build path').to.deep.equal([]);
    expect(await filesContaining(PREFIX, project), 'files naming the project directory').to.deep.equal([]);
    expect(await serveHealth(PREFIX)).to.equal('shopapp 1.0');
  });

  it('version 2.0 upgrades it with dpkg -i --force-confdef --force-confold: the edited conffile is kept, the new code runs', async () => {
    await writeFile(join(project, 'etc', 'vdeploy-e2e-pkg', 'app.conf'), 'greeting = two\n');
    const add = await runVdeploy(['add-wheel', await buildDjangoAppWheel(join(project, 'built'), { version: '2.0' })], { cwd: project });
    expect(add.exitCode, add.stderr).to.equal(0);
    const r = await vdeploy([NAME, '--format', 'deb', '--version', '2.0', '--out', out2, '--apt-repo', aptRepo]);
    expect(r.exitCode, r.stderr + r.stdout).to.equal(0);
    deb2 = join(out2, `${NAME}_2.0-1_all.deb`);
    expect(existsSync(deb2), r.stdout).to.equal(true);
    await writeFile(CONF, 'greeting = edited by the admin\n');
    // Both the admin and the package changed the conffile: dpkg would ask; unattended, --force-confold
    // keeps the admin's (docs/packages.md).
    await must(['dpkg', '-i', '--force-confdef', '--force-confold', deb2]);
    expect(await must(['dpkg-query', '-W', '-f', '${Status} ${Version}', NAME])).to.equal('install ok installed 2.0-1');
    expect(await readFile(CONF, 'utf8')).to.equal('greeting = edited by the admin\n');
    expect(await readFile(`${CONF}.dpkg-dist`, 'utf8'), "the package's new version beside it").to.equal('greeting = two\n');
    expect((await must([`${PREFIX}/venv/bin/shopapp-version`])).trim()).to.equal('shopapp 2.0');
    expect(await serveHealth(PREFIX)).to.equal('shopapp 2.0');
  });

  it('dpkg -r removes the prefix (the conffile stays), dpkg --purge removes the conffile too', async () => {
    await rm(`${CONF}.dpkg-dist`, { force: true }); // the admin's leftover of the upgrade, not dpkg's
    await must(['dpkg', '-r', NAME]);
    expect(existsSync(PREFIX), `${PREFIX} after dpkg -r`).to.equal(false);
    expect(await must(['dpkg-query', '-W', '-f', '${Status}', NAME])).to.equal('deinstall ok config-files');
    expect(existsSync(CONF), 'a removed package keeps its conffiles').to.equal(true);
    await must(['dpkg', '--purge', NAME]);
    expect(existsSync(CONF), `${CONF} after --purge`).to.equal(false);
    expect(existsSync(CONF_DIR), `${CONF_DIR} after --purge`).to.equal(false);
    expect(await dpkgKnows(NAME)).to.equal(false);
  });

  it('apt-get installs it from the flat repository served over HTTP (scratch apt state, the machine\'s config untouched)', async () => {
    const packages = await readFile(join(aptRepo, 'Packages'), 'utf8');
    expect(packages.match(/^Package: .*$/gm), 'both versions are in the repository').to.deep.equal([`Package: ${NAME}`, `Package: ${NAME}`]);
    const port = await freePort('127.0.0.1');
    const server = spawn(SYSTEM_PYTHON, ['-m', 'http.server', '--bind', '127.0.0.1', '--directory', aptRepo, String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
    servers.push(server);
    await pollFor('http.server', () => httpGet(`http://127.0.0.1:${port}/Release`).then((r) => (r?.status === 200 ? r : undefined)), server);
    const state = await makeTempDir('vdeploy-pkg-apt-');
    await mkdir(join(state, 'lists', 'partial'), { recursive: true });
    await mkdir(join(state, 'archives', 'partial'), { recursive: true });
    await mkdir(join(state, 'log'));
    await writeFile(join(state, 'sources.list'), `deb [trusted=yes] http://127.0.0.1:${port}/ ./\n`);
    const apt = [
      '-o', `Dir::Etc::sourcelist=${join(state, 'sources.list')}`,
      '-o', 'Dir::Etc::sourceparts=-',
      '-o', `Dir::State::Lists=${join(state, 'lists')}`,
      '-o', `Dir::Cache::archives=${join(state, 'archives')}`,
      '-o', `Dir::Cache::pkgcache=`, '-o', `Dir::Cache::srcpkgcache=`,
      '-o', 'APT::Get::List-Cleanup=0',
      // apt's own bookkeeping and logs into the scratch dir too; downloads as root (the scratch dirs are 0700).
      '-o', `Dir::State::extended_states=${join(state, 'extended_states')}`,
      '-o', `Dir::Log=${join(state, 'log')}`,
      '-o', 'APT::Sandbox::User=root',
      // Wait for dpkg's lock held by another test rather than fail.
      '-o', 'DPkg::Lock::Timeout=300',
    ];
    const aptEnv = { DEBIAN_FRONTEND: 'noninteractive' };
    const update = await run(['apt-get', ...apt, 'update'], aptEnv);
    expect(update.exitCode, update.stdout + update.stderr).to.equal(0);
    expect(update.stdout + update.stderr).not.to.match(/^(W|E|Err):/m);
    const machineLists = await readdir('/var/lib/apt/lists');
    expect(machineLists.filter((f) => f.startsWith('127.0.0.1')), "the machine's apt lists are untouched").to.deep.equal([]);
    // apt names the list after the URL (127.0.0.1:PORT_._Packages) and may compress it (.lz4).
    const scratchLists = await readdir(join(state, 'lists'));
    expect(scratchLists.some((f) => new RegExp(`^127\\.0\\.0\\.1(:|%3a)${port}_\\._Packages(\\.\\w+)?$`).test(f)), `the scratch lists have the repository: ${scratchLists.join(' ')}`).to.equal(true);
    const policy = await must(['apt-cache', ...apt, 'policy', NAME]);
    expect(policy).to.match(/Candidate: 2\.0-1/);
    expect(policy).to.match(/1\.0-1/);
    const install = await run(['apt-get', ...apt, 'install', '-y', '--no-install-recommends', NAME], aptEnv);
    expect(install.exitCode, install.stdout + install.stderr).to.equal(0);
    expect(await must(['dpkg-query', '-W', '-f', '${Status} ${Version}', NAME])).to.equal('install ok installed 2.0-1');
    expect((await must([`${PREFIX}/venv/bin/shopapp-version`])).trim()).to.equal('shopapp 2.0');
    await stopProcess(server);
    await must(['dpkg', '--purge', NAME]);
    expect(existsSync(PREFIX)).to.equal(false);
  });

  it('a shipped CPython 3.12 (interpreter: {path}) installs and answers without the system python3 or the original pyenv prefix', async () => {
    const out = join(project, 'out-py');
    const r = await vdeploy([PY_NAME, '--format', 'deb', '--version', '1.0', '--out', out]);
    expect(r.exitCode, r.stderr + r.stdout).to.equal(0);
    const deb = join(out, `${PY_NAME}_1.0-1_amd64.deb`);
    expect(await built(out, '.deb'), 'a native interpreter makes the package architecture-specific').to.deep.equal([deb]);
    const info = await must(['dpkg-deb', '--info', deb]);
    expect(info, 'no Python dependency').not.to.match(/^ (Pre-)?Depends: .*python/m);
    await must(['dpkg', '-i', deb]);
    expect(await readFile(`${PY_PREFIX}/venv/pyvenv.cfg`, 'utf8')).to.match(new RegExp(`^home = ${PY_PREFIX}/python/bin$`, 'm'));
    // A private mount namespace hides the pyenv prefix it was copied from and /usr/bin/python3*: only
    // the package's own files can answer. PATH is the venv's bin alone (/bin is /usr/bin here).
    const hide = [
      '/usr/bin/unshare', '--mount', '--propagation', 'private', '/bin/sh', '-c',
      'mount -t tmpfs none "$1" && for p in /usr/bin/python3*; do mount --bind /dev/null "$p"; done && PATH="$2" && shift 2 && exec "$@"',
      'sh', SHIPPED_PYTHON, `${PY_PREFIX}/venv/bin`,
    ];
    const probe = 'import os, sys; maps = open("/proc/self/maps").read(); print(sys.version_info[:2] == (3, 12), sys.base_prefix, os.path.realpath(sys.executable), sorted({l.split()[-1] for l in maps.splitlines() if "libpython" in l}), "/usr/bin/python" in maps)';
    const answer = await must([...hide, `${PY_PREFIX}/venv/bin/python`, '-c', probe]);
    const realExe = (await must(['readlink', '-f', `${PY_PREFIX}/venv/bin/python`])).trim();
    expect(realExe.startsWith(`${PY_PREFIX}/python/bin/`), realExe).to.equal(true);
    const libs = /\[(.*)\]/.exec(answer)?.[1] ?? '';
    expect(answer.trim()).to.equal(`True ${PY_PREFIX}/python ${realExe} [${libs}] False`);
    for (const lib of libs.split(', ').filter(Boolean)) expect(lib, 'libpython from the package').to.match(new RegExp(`^'${PY_PREFIX}/python/lib/`));
    // Built after 2.0 was released: the desired set has shopapp 2.0.
    expect((await must([...hide, `${PY_PREFIX}/venv/bin/shopapp-version`])).trim()).to.equal('shopapp 2.0');
    expect(await serveHealth(PY_PREFIX, hide)).to.equal('shopapp 2.0');
    expect(await filesContaining(`${PY_PREFIX}/venv`, SHIPPED_PYTHON), 'the venv names the pyenv prefix').to.deep.equal([]);
    await must(['dpkg', '--purge', PY_NAME]);
    expect(existsSync(PY_PREFIX)).to.equal(false);
  });

  describe('bad input: one line, exit 2, nothing written', () => {
    const oneError = (r: CliResult, message: RegExp) => {
      expect(r.exitCode, r.stderr + r.stdout).to.equal(2);
      const errors = r.stderr.split('\n').filter((l) => l.startsWith('error:'));
      expect(errors, r.stderr).to.have.length(1);
      expect(errors[0]).to.match(message);
      expect(r.stderr).to.match(/^hint: /m);
      expect(r.stdout).to.equal('');
    };
    it('an unknown package name', async () => {
      const out = join(project, 'out-bad');
      oneError(await vdeploy(['no-such-pkg', '--version', '1.0', '--out', out]), /^error: no package named no-such-pkg in the deployfile$/);
      expect((await vdeploy(['no-such-pkg', '--version', '1.0'])).stderr).to.include(`hint: packages are: ${NAME}, ${PY_NAME}`);
      expect(existsSync(out) ? await readdir(out) : []).to.deep.equal([]);
    });
    it('no --version', async () => {
      const out = join(project, 'out-bad');
      oneError(await vdeploy([NAME, '--out', out]), /^error: Missing required argument: version; give the version of the package, e\.g\. --version /);
      expect(existsSync(out) ? await readdir(out) : []).to.deep.equal([]);
    });
  });
});
