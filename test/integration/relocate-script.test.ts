/**
 * The relocate script, file kind by file kind, on small real venvs (`python3 -m venv --without-pip`)
 * with hand-made extras: each test copies a template built at OLD, moves it, and relocates it through
 * the real core call (relocateVenv over a LocalConnection: start.sh, the bootstrap, the payload and the
 * request on stdin, relocate.py's main()).
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { ConfigError, VdeployError } from '../../src/errors.js';
import { KILL_AFTER_ENV, relocateVenv, RelocateError, type RelocateRequest, type RelocateResult } from '../../src/relocate/relocate.js';
import type { Connection } from '../../src/remote/connection.js';
import { LocalConnection } from '../../src/remote/local-connection.js';
import { rejection } from '../helpers/rejection.js';

const PYTHON = '/usr/bin/python3';
const local = new LocalConnection();

function relocate(venv: string, request: Omit<RelocateRequest, 'venv'>, conn: Connection = local): Promise<RelocateResult> {
  return relocateVenv(conn, { venv, ...request });
}

/** A connection that sets the test hook making the script SIGKILL itself after `n` writes. */
function killingAfter(n: number): Connection {
  return {
    target: 'local',
    exec: (argv, opts = {}) => local.exec(argv, { ...opts, env: { ...opts.env, [KILL_AFTER_ENV]: String(n) } }),
    put: (a, b, o) => local.put(a, b, o),
    close: async () => {},
  };
}

// Python as on a server: writing bytecode on import (a developer's shell may turn that off).
const PY_ENV = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'PYTHONDONTWRITEBYTECODE'));

function run(argv: string[], opts: { cwd?: string; input?: string } = {}): string {
  return execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8', cwd: opts.cwd, input: opts.input ?? '', stdio: ['pipe', 'pipe', 'pipe'], env: PY_ENV });
}

const SITE = path.join('lib', `python3.${Number(run([PYTHON, '-c', 'import sys; print(sys.version_info[1])']).trim())}`, 'site-packages');

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

/** A digest of every file, link and mode under dir, to show that nothing changed. */
function treeDigest(dir: string): string {
  const hash = createHash('sha256');
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = path.join(d, name);
      const st = lstatSync(p);
      hash.update(`${path.relative(dir, p)}\0${st.mode}\0`);
      if (st.isSymbolicLink()) hash.update(readlinkSync(p));
      else if (st.isDirectory()) walk(p);
      else hash.update(readFileSync(p));
    }
  };
  walk(dir);
  return hash.digest('hex');
}

function setCfg(venv: string, key: string, value: string): void {
  const file = path.join(venv, 'pyvenv.cfg');
  const lines = readFileSync(file, 'utf8').split('\n');
  const i = lines.findIndex((l) => l.split('=')[0]!.trim() === key);
  if (i === -1) lines.splice(lines.length - 1, 0, `${key} = ${value}`);
  else lines[i] = `${key} = ${value}`;
  writeFileSync(file, lines.join('\n'));
}

function cfgValue(venv: string, key: string): string | undefined {
  const line = readFileSync(path.join(venv, 'pyvenv.cfg'), 'utf8')
    .split('\n')
    .find((l) => l.split('=')[0]!.trim() === key);
  return line?.slice(line.indexOf('=') + 1).trim();
}

/**
 * A venv built at `old`, with one of each file kind relocate handles, and some it must only report.
 */
function buildTemplate(old: string): void {
  mkdirSync(path.dirname(old), { recursive: true });
  run([PYTHON, '-m', 'venv', '--without-pip', old]);
  const site = path.join(old, SITE);
  const bin = path.join(old, 'bin');
  const fileUrl = `file://${encodeURI(old)}/src/demo`;
  const files: Record<string, string> = {
    // Scripts whose interpreter is in the venv: a plain shebang with an argument, pip's trampoline
    // in both spellings (quoted for a space, bare for a long path).
    'bin/tool': `#!${old}/bin/python -E\nimport sys\nprint('tool', sys.prefix)\n`,
    'bin/tramp-quoted': `#!/bin/sh\n'''exec' "${old}/bin/python3" "$0" "$@"\n' '''\nimport sys\nprint('tramp', sys.prefix)\n`,
    'bin/tramp-bare': `#!/bin/sh\n'''exec' ${old}/bin/python3.${SITE.split('.')[1]!.split('/')[0]} "$0" "$@"\n' '''\nimport sys\nprint('bare', sys.prefix)\n`,
    // A script whose interpreter is elsewhere but that names the venv: reported, never rewritten.
    'bin/outside.sh': `#!/bin/sh\necho ${old}/data\n`,
    // virtualenv's nushell activate script.
    'bin/activate.nu': `# nushell\nlet virtual_env = r#'${old}'#\nlet bin = 'bin'\n`,
    [`${SITE}/demo/__init__.py`]: `def where():\n    return __file__\n\ndef boom():\n    raise RuntimeError('boom')\n`,
    [`${SITE}/extra.pth`]: `${old}/src/extra\n/opt/outside/lib\n`,
    [`${SITE}/demo-link.egg-link`]: `${old}/src/demo_link\n.`,
    [`${SITE}/__editable__.demo_ed-1.0.pth`]: 'import __editable___demo_ed_1_0_finder; __editable___demo_ed_1_0_finder.install()\n',
    [`${SITE}/__editable___demo_ed_1_0_finder.py`]: `MAPPING = {'demo_ed': '${old}/src/demo_ed/demo_ed'}\nNAMESPACES = {}\n\ndef install():\n    pass\n`,
    [`${SITE}/demo-1.0.dist-info/direct_url.json`]: JSON.stringify({ url: fileUrl, dir_info: { editable: true } }),
    [`${SITE}/demo-1.0.dist-info/METADATA`]: 'Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n',
    // Not relocate's to rewrite: reported as leftovers.
    'share/demo/config.txt': `# demo\nroot = ${old}/data\n`,
    // A longer name that merely starts with the venv's path is not the venv.
    'share/demo/sibling.txt': `${old}2/data and ${old}-backup\n`,
  };
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(old, rel)), { recursive: true });
    writeFileSync(path.join(old, rel), text);
  }
  for (const name of ['tool', 'tramp-quoted', 'tramp-bare', 'outside.sh']) chmodSync(path.join(bin, name), 0o755);
  for (const name of ['src/extra', 'src/demo_link', 'src/demo_ed/demo_ed']) mkdirSync(path.join(old, name), { recursive: true });
  writeFileSync(path.join(old, 'share/demo/blob.bin'), Buffer.concat([Buffer.from([0, 1, 2, 0]), Buffer.from(`${old}/lib/libdemo.so`), Buffer.from([0])]));
  symlinkSync(path.join(old, 'share/demo/config.txt'), path.join(old, 'share/demo/config-link'));
  // Bytecode compiled at the old path, as pip leaves it (and an -O one).
  run([path.join(bin, 'python'), '-m', 'compileall', '-q', path.join(site, 'demo')]);
  run([path.join(bin, 'python'), '-O', '-m', 'compileall', '-q', path.join(site, 'demo')]);
}

const EXPECTED_LEFTOVERS = ['bin/outside.sh', 'share/demo/blob.bin', 'share/demo/config.txt'];
/** Files whose bytes still contain the old path as a string after relocating: the leftovers and sibling.txt's longer names. */
const STILL_CONTAINING = [...EXPECTED_LEFTOVERS, 'share/demo/sibling.txt'].sort();

describe('relocate script: each kind of file', function () {
  this.timeout(60_000);
  let root: string;
  let template: string; // built at OLD (no space)
  let spaced: string; // built at a path with a space
  let n = 0;

  /** A copy of `from` moved to a fresh `name` (the copy still names the template's path everywhere). */
  const moved = (from: string, name = 'new venv'): string => {
    const dest = path.join(root, `case${++n}`, name);
    mkdirSync(path.dirname(dest), { recursive: true });
    run(['cp', '-a', from, dest]);
    return dest;
  };

  before(() => {
    root = mkdtempSync(path.join(os.tmpdir(), 'vdeploy-relocate-unit-'));
    template = path.join(root, 'build', 'venv');
    spaced = path.join(root, 'build dir', 've nv');
    buildTemplate(template);
    buildTemplate(spaced);
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('finds the old path in bin/activate and reports what it rewrote, bin/activate last', async () => {
    const venv = moved(template);
    const r = await relocate(venv, { newPath: 'auto' });
    expect(r).to.include({ venv, oldPath: template, newPath: venv, markerSource: 'bin/activate', alreadyRelocated: false, complete: true, dryRun: false });
    expect(r.errors).to.deep.equal([]);
    expect(r.changes.at(-1)).to.include({ path: 'bin/activate', kind: 'activate' });
    const kinds = new Set(r.changes.map((c) => c.kind));
    for (const kind of ['activate', 'script', 'pyvenv.cfg', 'pth', 'egg-link', 'editable-finder', 'direct-url', 'bytecode', 'symlink']) {
      expect(kinds, kind).to.include(kind);
    }
    expect(r.leftovers.map((l) => l.path).sort()).to.deep.equal(EXPECTED_LEFTOVERS);
    expect(filesContaining(venv, template)).to.deep.equal(STILL_CONTAINING);
    // The leftovers say where: the line, or that the file is binary.
    const byPath = Object.fromEntries(r.leftovers.map((l) => [l.path, l.reason]));
    expect(byPath['share/demo/config.txt']).to.match(/line 2/);
    expect(byPath['bin/outside.sh']).to.match(/line 2/);
    expect(byPath['share/demo/blob.bin']).to.match(/binary/);
  });

  it('activate scripts of every flavour: VIRTUAL_ENV, quoted as each shell needs', async () => {
    const venv = moved(template, 'with space');
    // An older CPython's bin/activate (double quotes), to check that form too.
    const activate = path.join(venv, 'bin', 'activate');
    const original = readFileSync(activate, 'utf8');
    writeFileSync(path.join(venv, 'bin', 'activate.old-style'), original.replace(/^VIRTUAL_ENV=.*$/m, `VIRTUAL_ENV="${template}"`));
    await relocate(venv, { newPath: 'auto' });
    const text = (name: string) => readFileSync(path.join(venv, 'bin', name), 'utf8');
    expect(text('activate')).to.match(new RegExp(`^VIRTUAL_ENV='${venv}'$`, 'm'));
    expect(text('activate.old-style')).to.match(new RegExp(`^VIRTUAL_ENV="${venv}"$`, 'm'));
    expect(text('activate.csh')).to.match(new RegExp(`^setenv VIRTUAL_ENV '${venv}'$`, 'm'));
    expect(text('activate.fish')).to.match(new RegExp(`^set -gx VIRTUAL_ENV '${venv}'$`, 'm'));
    expect(text('activate.nu')).to.include(`let virtual_env = r#'${venv}'#`);
    // Activate.ps1 finds the venv from its own location: it has no path, and is not touched.
    expect(text('Activate.ps1')).not.to.include(template);
    // Everything else in bin/activate is as python -m venv wrote it.
    expect(text('activate').replace(venv, 'X').replace(`'X'`, 'X')).to.equal(original.replace(template, 'X'));
    const shell = spawnSync('bash', ['-c', 'source "$1/bin/activate" && echo "$VIRTUAL_ENV" && command -v python', 'bash', venv], { encoding: 'utf8' });
    expect(shell.stdout).to.equal(`${venv}\n${venv}/bin/python\n`);
  });

  it('an activate value without a space stays unquoted, as venv writes it', async () => {
    const venv = moved(template, 'plain');
    await relocate(venv, { newPath: 'auto' });
    expect(readFileSync(path.join(venv, 'bin', 'activate'), 'utf8')).to.match(new RegExp(`^VIRTUAL_ENV=${venv}$`, 'm'));
    expect(readFileSync(path.join(venv, 'bin', 'activate.fish'), 'utf8')).to.match(new RegExp(`^set -gx VIRTUAL_ENV ${venv}$`, 'm'));
  });

  it('bin/ scripts: a plain shebang becomes the trampoline for a path with a space, arguments kept', async () => {
    const venv = moved(template, 'new venv');
    await relocate(venv, { newPath: 'auto' });
    const tool = readFileSync(path.join(venv, 'bin', 'tool'), 'utf8');
    expect(tool.split('\n').slice(0, 3)).to.deep.equal(['#!/bin/sh', `'''exec' "${venv}/bin/python" -E "$0" "$@"`, "' '''"]);
    expect(tool).to.include("print('tool', sys.prefix)");
    for (const name of ['tool', 'tramp-quoted', 'tramp-bare']) {
      const out = run([path.join(venv, 'bin', name)]);
      expect(out, name).to.match(new RegExp(`^\\w+ ${venv}\\n$`));
    }
  });

  it('bin/ scripts: the trampoline becomes a plain shebang when the new path is short and has no space', async () => {
    const venv = moved(spaced, 'short');
    await relocate(venv, { newPath: 'auto' });
    const quoted = readFileSync(path.join(venv, 'bin', 'tramp-quoted'), 'utf8');
    expect(quoted.split('\n')[0]).to.equal(`#!${venv}/bin/python3`);
    expect(quoted.split('\n')[1]).to.equal('import sys');
    expect(run([path.join(venv, 'bin', 'tramp-quoted')])).to.equal(`tramp ${venv}\n`);
  });

  it('bin/ scripts: a shebang over 127 bytes becomes the trampoline, unquoted like pip writes it', async () => {
    const long = path.join(root, `case${++n}`, 'x'.repeat(60), 'y'.repeat(60));
    mkdirSync(path.dirname(long), { recursive: true });
    run(['cp', '-a', template, long]);
    const r = await relocate(long, { newPath: 'auto' });
    const tool = readFileSync(path.join(long, 'bin', 'tool'), 'utf8');
    expect(tool.split('\n').slice(0, 3)).to.deep.equal(['#!/bin/sh', `'''exec' ${long}/bin/python -E "$0" "$@"`, "' '''"]);
    expect(r.changes.find((c) => c.path === 'bin/tool')!.reason).to.match(/over 127 bytes/);
    expect(run([path.join(long, 'bin', 'tool')])).to.equal(`tool ${long}\n`);
  });

  it('pyvenv.cfg: command is rewritten, home is not', async () => {
    const venv = moved(template);
    const before = readFileSync(path.join(venv, 'pyvenv.cfg'), 'utf8');
    const r = await relocate(venv, { newPath: 'auto' });
    expect(r.changes.find((c) => c.kind === 'pyvenv.cfg')!.reason).to.match(/^command names the old path/);
    expect(readFileSync(path.join(venv, 'pyvenv.cfg'), 'utf8')).to.equal(before.replace(template, venv));
    expect(cfgValue(venv, 'home')).to.equal('/usr/bin');
  });

  it('.pth files, egg-links, editable finders and direct_url.json (URL-quoted) under site-packages', async () => {
    const venv = moved(spaced, 'site venv');
    await relocate(venv, { newPath: 'auto' });
    const site = path.join(venv, SITE);
    expect(readFileSync(path.join(site, 'extra.pth'), 'utf8')).to.equal(`${venv}/src/extra\n/opt/outside/lib\n`);
    expect(readFileSync(path.join(site, 'demo-link.egg-link'), 'utf8')).to.equal(`${venv}/src/demo_link\n.`);
    expect(readFileSync(path.join(site, '__editable___demo_ed_1_0_finder.py'), 'utf8')).to.include(`{'demo_ed': '${venv}/src/demo_ed/demo_ed'}`);
    const direct = JSON.parse(readFileSync(path.join(site, 'demo-1.0.dist-info', 'direct_url.json'), 'utf8')) as { url: string };
    expect(direct.url).to.equal(`file://${encodeURI(venv)}/src/demo`);
    // Python sees the rewritten .pth entry on sys.path.
    const syspath = run([path.join(venv, 'bin', 'python'), '-c', 'import sys; print("\\n".join(sys.path))']);
    expect(syspath.split('\n')).to.include(`${venv}/src/extra`);
    expect(filesContaining(venv, encodeURI(spaced))).to.deep.equal([]);
  });

  it('bytecode is rewritten for the new path: every code object names it, -O bytecode too', async () => {
    const venv = moved(template);
    const cache = path.join(venv, SITE, 'demo', '__pycache__');
    const pycs = readdirSync(cache).sort();
    expect(pycs).to.have.length(2);
    const r = await relocate(venv, { newPath: 'auto' });
    expect(r.changes.filter((c) => c.kind === 'bytecode').map((c) => [c.path, c.files])).to.deep.include([path.join(SITE, 'demo', '__pycache__'), 2]);
    expect(readdirSync(cache).sort()).to.deep.equal(pycs);
    for (const pyc of pycs) {
      const filename = run([PYTHON, '-c', 'import marshal,sys; print(marshal.loads(open(sys.argv[1],"rb").read()[16:]).co_filename)', path.join(cache, pyc)]);
      expect(filename, pyc).to.equal(`${venv}/${SITE}/demo/__init__.py\n`);
    }
    const traceback = spawnSync(path.join(venv, 'bin', 'python'), ['-c', 'import demo; demo.boom()'], { encoding: 'utf8', env: PY_ENV });
    expect(traceback.stderr).to.include(`File "${venv}/${SITE}/demo/__init__.py"`);
  });

  it('symlinks into the old venv point into the new one', async () => {
    const venv = moved(template);
    await relocate(venv, { newPath: 'auto' });
    expect(readlinkSync(path.join(venv, 'share/demo/config-link'))).to.equal(path.join(venv, 'share/demo/config.txt'));
  });

  it('a longer name that starts with the old path is left alone', async () => {
    const venv = moved(template);
    await relocate(venv, { newPath: 'auto' });
    expect(readFileSync(path.join(venv, 'share/demo/sibling.txt'), 'utf8')).to.equal(`${template}2/data and ${template}-backup\n`);
  });

  it('--dry-run lists the same changes and leftovers as a real run, and changes nothing', async () => {
    const venv = moved(template);
    const digest = treeDigest(venv);
    const dry = await relocate(venv, { newPath: 'auto', dryRun: true });
    expect(dry.dryRun).to.equal(true);
    expect(treeDigest(venv)).to.equal(digest);
    const real = await relocate(venv, { newPath: 'auto' });
    expect(dry.changes).to.deep.equal(real.changes);
    expect(dry.leftovers).to.deep.equal(real.leftovers);
  });

  it('a second run reports "already at NEW" and changes nothing', async () => {
    const venv = moved(template);
    await relocate(venv, { newPath: 'auto' });
    const digest = treeDigest(venv);
    const again = await relocate(venv, { newPath: venv });
    expect(again).to.include({ alreadyRelocated: true, oldPath: venv, newPath: venv, complete: true });
    expect(again.changes).to.deep.equal([]);
    expect(treeDigest(venv)).to.equal(digest);
  });

  it('an interrupted run (killed after 3 writes) leaves the marker, and a re-run finishes the job', async () => {
    const venv = moved(template);
    const err = await rejection(relocate(venv, { newPath: 'auto' }, killingAfter(3)));
    expect(err).to.be.instanceOf(VdeployError);
    expect(err.message).to.match(/killed by SIGKILL/);
    expect((err as VdeployError).hint).to.match(/run the same command again/);
    // Some files were rewritten, the marker was not.
    expect(readFileSync(path.join(venv, 'bin', 'activate'), 'utf8')).to.include(`VIRTUAL_ENV=${template}\n`);
    expect(filesContaining(venv, template).length).to.be.greaterThan(STILL_CONTAINING.length);
    const tool = readFileSync(path.join(venv, 'bin', 'tool'), 'utf8');
    expect(tool).to.include(venv);
    expect(readdirSync(path.join(venv, 'bin')).filter((f) => f.startsWith('.vdeploy'))).to.deep.equal([]);

    const r = await relocate(venv, { newPath: 'auto' });
    expect(r).to.include({ oldPath: template, complete: true, alreadyRelocated: false });
    expect(r.changes.map((c) => c.path)).not.to.include('bin/tool');
    expect(filesContaining(venv, template)).to.deep.equal(STILL_CONTAINING);
    expect((await relocate(venv, { newPath: 'auto' })).alreadyRelocated).to.equal(true);
  });

  it('a temporary file left by a killed write is removed by the next run', async () => {
    const venv = moved(template);
    writeFileSync(path.join(venv, 'bin', '.vdeploy-relocate-abc123'), `#!${template}/bin/python\n`);
    const r = await relocate(venv, { newPath: 'auto' });
    expect(r.changes[0]).to.include({ path: 'bin/.vdeploy-relocate-abc123', kind: 'temporary' });
    expect(existsSync(path.join(venv, 'bin', '.vdeploy-relocate-abc123'))).to.equal(false);
  });

  it('relocating before moving: rewritten for NEW (bytecode too), works once moved there', async () => {
    const venv = moved(template, 'staging');
    const target = path.join(root, `case${++n}`, 'final place');
    const r = await relocate(venv, { newPath: target });
    expect(r).to.include({ venv, newPath: target, oldPath: template });
    mkdirSync(path.dirname(target), { recursive: true });
    renameSync(venv, target);
    expect(filesContaining(target, template)).to.deep.equal(STILL_CONTAINING);
    expect(filesContaining(target, venv)).to.deep.equal([]);
    expect(run([path.join(target, 'bin', 'tool')])).to.equal(`tool ${target}\n`);
    expect((await relocate(target, { newPath: 'auto' })).alreadyRelocated).to.equal(true);
  });

  it('a new path below the old one is not rewritten twice by a second run', async () => {
    const venv = moved(template, 'v');
    const below = `${template}/inner`;
    await relocate(venv, { newPath: below }, killingAfter(4)).catch(() => {});
    await relocate(venv, { newPath: below });
    expect(readFileSync(path.join(venv, 'bin', 'tool'), 'utf8').split('\n')[0]).to.equal(`#!${below}/bin/python -E`);
    expect(readFileSync(path.join(venv, SITE, 'extra.pth'), 'utf8')).to.equal(`${below}/src/extra\n/opt/outside/lib\n`);
    expect((await relocate(venv, { newPath: below })).alreadyRelocated).to.equal(true);
  });

  it("waits for no one: a venv locked by a deploy (<venv>/.vdeploy/lock) is refused, and nothing is changed", async () => {
    const venv = moved(template);
    mkdirSync(path.join(venv, '.vdeploy'));
    const lockPath = path.join(venv, '.vdeploy', 'lock');
    const holder = spawn(PYTHON, ['-c', [
      'import fcntl, json, sys, time',
      'f = open(sys.argv[1], "a+")',
      'fcntl.flock(f.fileno(), fcntl.LOCK_EX)',
      'f.write(json.dumps({"user": "ci", "host": "web1", "pid": 4242, "startedAt": "2026-01-01T00:00:00Z"})); f.flush()',
      'print("locked", flush=True)',
      'time.sleep(60)',
    ].join('\n'), lockPath], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve) => holder.stdout!.once('data', () => resolve()));
      const digest = treeDigest(venv);
      const err = await rejection(relocate(venv, { newPath: 'auto' }));
      expect(err).to.be.instanceOf(RelocateError);
      expect(err.message).to.equal(`${venv}: locked by another vdeploy run: ci@web1 (pid 4242, deploy since 2026-01-01T00:00:00Z)`);
      expect(treeDigest(venv)).to.equal(digest);
      // A dry run needs no lock.
      expect((await relocate(venv, { newPath: 'auto', dryRun: true })).changes.length).to.be.greaterThan(0);
    } finally {
      holder.kill('SIGKILL');
    }
    expect((await relocate(venv, { newPath: 'auto' })).complete).to.equal(true);
    expect(JSON.parse(readFileSync(lockPath, 'utf8'))).to.include({ command: 'relocate' });
  });

  it("leaves vdeploy's own records (.vdeploy/) alone: they are history, not the venv", async () => {
    const venv = moved(template);
    mkdirSync(path.join(venv, '.vdeploy'));
    writeFileSync(path.join(venv, '.vdeploy', 'history.jsonl'), `{"venv": "${template}"}\n`);
    const r = await relocate(venv, { newPath: 'auto' });
    expect(r.leftovers.map((l) => l.path)).not.to.include('.vdeploy/history.jsonl');
    expect(readFileSync(path.join(venv, '.vdeploy', 'history.jsonl'), 'utf8')).to.include(template);
  });

  describe('finding the old path', () => {
    it('falls back to activate.fish, then pyvenv.cfg command, then the scripts\' shebangs', async () => {
      const venv = moved(template);
      unlinkSync(path.join(venv, 'bin', 'activate'));
      expect((await relocate(venv, { newPath: 'auto', dryRun: true })).markerSource).to.equal('bin/activate.fish');
      for (const f of ['activate.fish', 'activate.csh', 'activate.nu']) unlinkSync(path.join(venv, 'bin', f));
      expect((await relocate(venv, { newPath: 'auto', dryRun: true })).markerSource).to.equal('pyvenv.cfg command');
      setCfg(venv, 'command', '/usr/bin/python3 -m venv');
      const r = await relocate(venv, { newPath: 'auto', dryRun: true });
      expect(r).to.include({ markerSource: 'bin/ script shebangs', oldPath: template });
    });

    it('reads a pyvenv.cfg command with options and a path with spaces', async () => {
      const venv = moved(spaced);
      for (const f of ['activate', 'activate.fish', 'activate.csh', 'activate.nu']) unlinkSync(path.join(venv, 'bin', f));
      setCfg(venv, 'command', `/usr/bin/python3 -m venv --without-pip --prompt="my app" ${spaced}`);
      const r = await relocate(venv, { newPath: 'auto', dryRun: true });
      expect(r).to.include({ markerSource: 'pyvenv.cfg command', oldPath: spaced });
    });

    it('without any marker it asks for --old-path, and uses it when given', async () => {
      const venv = moved(template);
      for (const f of ['activate', 'activate.fish', 'activate.csh', 'activate.nu', 'tool', 'tramp-quoted', 'tramp-bare']) {
        unlinkSync(path.join(venv, 'bin', f));
      }
      setCfg(venv, 'command', 'unknown');
      const err = await rejection(relocate(venv, { newPath: 'auto' }));
      expect(err).to.be.instanceOf(RelocateError);
      expect(err.message).to.equal(`${venv}: cannot tell where the venv was built: no VIRTUAL_ENV in its activate scripts, no command in pyvenv.cfg, no script in bin/ with a venv interpreter`);
      expect((err as RelocateError).hint).to.match(/--old-path/);
      const r = await relocate(venv, { newPath: 'auto', oldPath: template });
      expect(r).to.include({ oldPath: template, markerSource: null, complete: true });
      expect(readFileSync(path.join(venv, SITE, 'extra.pth'), 'utf8')).to.include(`${venv}/src/extra`);
    });
  });

  describe('refusals', () => {
    it('refuses a new path with quotes, $, backquotes or backslashes (exit 2), and a relative one', async () => {
      const venv = moved(template);
      for (const bad of [`/tmp/it's`, '/tmp/"x"', '/tmp/$HOME', '/tmp/`id`', '/tmp/a\\b', '/tmp/a\nb', 'relative/path']) {
        const err = await rejection(relocate(venv, { newPath: bad }));
        expect(err, bad).to.be.instanceOf(ConfigError);
        expect((err as ConfigError).exitCode).to.equal(2);
      }
    });

    it('refuses a directory that is not a venv', async () => {
      const dir = path.join(root, `case${++n}`);
      mkdirSync(dir);
      const err = await rejection(relocate(dir, { newPath: 'auto' }));
      expect(err).to.be.instanceOf(RelocateError);
      expect(err.message).to.equal(`${dir}: not a virtualenv: it has no pyvenv.cfg`);
      const missing = await rejection(relocate(path.join(dir, 'nope'), { newPath: 'auto' }));
      expect(missing.message).to.equal(`${dir}/nope: no such directory`);
    });

    it('needs something to do', async () => {
      const err = await rejection(relocate(moved(template), {}));
      expect(err).to.be.instanceOf(ConfigError);
    });
  });

  describe('--reinitialize', () => {
    it('re-links an interpreter link that points nowhere to the local Python X.Y, and fixes home', async () => {
      const venv = moved(template);
      const gone = '/nonexistent/vdeploy-python/bin';
      unlinkSync(path.join(venv, 'bin', 'python3'));
      symlinkSync(`${gone}/python3`, path.join(venv, 'bin', 'python3'));
      setCfg(venv, 'home', gone);
      expect(spawnSync(path.join(venv, 'bin', 'python'), ['-c', '1']).status).not.to.equal(0);

      const r = await relocate(venv, { reinitialize: true, newPath: 'auto' });
      expect(r.reinitialize).to.include({ changed: true, xy: SITE.split('python')[1]!.split('/')[0] });
      expect(r.changes[0]).to.include({ path: 'bin/python3', kind: 'interpreter' });
      expect(r.changes[0]!.reason).to.include(`${gone}/python3, which does not exist here`);
      expect(path.isAbsolute(readlinkSync(path.join(venv, 'bin', 'python3')))).to.equal(true);
      expect(existsSync(readlinkSync(path.join(venv, 'bin', 'python3')))).to.equal(true);
      expect(readlinkSync(path.join(venv, 'bin', 'python'))).to.equal('python3');
      expect(cfgValue(venv, 'home')).to.equal(path.dirname(r.reinitialize!.python));
      expect(run([path.join(venv, 'bin', 'python'), '-c', 'import sys; print(sys.prefix)'])).to.equal(`${venv}\n`);
      expect(r.oldPath).to.equal(template);
      expect(run([path.join(venv, 'bin', 'tool')])).to.equal(`tool ${venv}\n`);
    });

    it('replaces a copied interpreter that does not run here', async () => {
      const venv = moved(template);
      const py3 = path.join(venv, 'bin', 'python3');
      unlinkSync(py3);
      writeFileSync(py3, '#!/bin/sh\necho "not for this machine" >&2\nexit 1\n', { mode: 0o755 });
      const r = await relocate(venv, { reinitialize: true });
      expect(r.changes.map((c) => c.path)).to.deep.equal(['bin/python3']);
      expect(lstatSync(py3).isFile()).to.equal(true);
      expect(run([path.join(venv, 'bin', 'python'), '-c', 'import sys; print(sys.prefix)'])).to.equal(`${venv}\n`);
    });

    it('without it, a venv whose interpreter does not run here is still relocated, with a warning saying so', async () => {
      const venv = moved(template);
      unlinkSync(path.join(venv, 'bin', 'python3'));
      symlinkSync('/nonexistent/vdeploy/python3', path.join(venv, 'bin', 'python3'));
      const r = await relocate(venv, { newPath: 'auto' });
      expect(r.complete).to.equal(true);
      expect(r.warnings).to.deep.equal([
        "bin/python does not run here (its interpreter link points to /nonexistent/vdeploy/python3): relocate with --reinitialize to re-link it to this machine's Python",
      ]);
      // The bytecode was recompiled all the same, with this machine's Python of the same X.Y.
      expect(r.changes.some((c) => c.kind === 'bytecode')).to.equal(true);
      expect(filesContaining(venv, template)).to.deep.equal(STILL_CONTAINING);
    });

    it('changes nothing when the venv already uses a local interpreter of its X.Y', async () => {
      const venv = moved(template);
      const digest = treeDigest(venv);
      const r = await relocate(venv, { reinitialize: true });
      expect(r.reinitialize).to.include({ changed: false });
      expect(r.changes).to.deep.equal([]);
      expect(treeDigest(venv)).to.equal(digest);
    });

    it('refuses a venv of another X.Y (site-packages would not match), and changes nothing', async () => {
      const venv = moved(template);
      // A Python 3.99 venv from another machine: its version, its lib/python3.99, its interpreter link.
      renameSync(path.join(venv, path.dirname(SITE)), path.join(venv, 'lib', 'python3.99'));
      setCfg(venv, 'version', '3.99.1');
      setCfg(venv, 'home', '/opt/python3.99/bin');
      unlinkSync(path.join(venv, 'bin', 'python3'));
      symlinkSync('/opt/python3.99/bin/python3.99', path.join(venv, 'bin', 'python3'));
      const digest = treeDigest(venv);
      const err = await rejection(relocate(venv, { reinitialize: true, newPath: 'auto' }));
      expect(err).to.be.instanceOf(RelocateError);
      expect((err as RelocateError).kind).to.equal('refused');
      expect((err as RelocateError).exitCode).to.equal(1);
      expect(err.message).to.match(/^\/.+: it is a Python 3\.99 venv \(pyvenv\.cfg version = 3\.99\.1\) and this machine has no Python 3\.99/);
      expect(err.message).to.match(/site-packages \(lib\/python3\.99\) would not match/);
      expect((err as RelocateError).hint).to.match(/install Python 3\.99 here, or rebuild the venv/);
      expect(treeDigest(venv)).to.equal(digest);
    });

    it('--dry-run reports the re-link without making it', async () => {
      const venv = moved(template);
      unlinkSync(path.join(venv, 'bin', 'python3'));
      symlinkSync('/nonexistent/python3', path.join(venv, 'bin', 'python3'));
      const digest = treeDigest(venv);
      const r = await relocate(venv, { reinitialize: true, dryRun: true });
      expect(r.reinitialize).to.include({ changed: true });
      expect(r.changes.map((c) => c.kind)).to.deep.equal(['interpreter']);
      expect(treeDigest(venv)).to.equal(digest);
    });
  });
});
