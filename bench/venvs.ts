/**
 * The benchmark's venvs: made fast, cloned between hosts, and checked after every run.
 *
 * `python3 -m venv` takes 3–7 s here, almost all of it ensurepip installing pip and setuptools from
 * their bundled wheels; 64 of them would cost minutes of setup. So one real venv (the template) is
 * made per fleet, and every other venv is a real `python3 -m venv --without-pip` (its own pyvenv.cfg,
 * interpreter links and activate scripts) with the template's site-packages linked in and its pip
 * scripts written with the right shebang: byte for byte what ensurepip would have produced, in ~0.1 s.
 */
import { chmodSync, existsSync, lstatSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { LocalConnection } from '../src/remote/local-connection.js';
import { deriveSnapshot, snapshotTree, type TreeSnapshot } from './tree-snapshot.js';

export const SYSTEM_PYTHON = '/usr/bin/python3';
const local = new LocalConnection();

/** A real venv with pip, the source of every other venv's pip and setuptools. */
export async function createTemplateVenv(path: string): Promise<void> {
  await local.exec([SYSTEM_PYTHON, '-m', 'venv', path]);
}

/** A venv at `path` equal to one `python3 -m venv path` would make, from the template's files. */
export async function createVenvFromTemplate(template: string, path: string): Promise<void> {
  await local.exec([SYSTEM_PYTHON, '-m', 'venv', '--without-pip', path]);
  snapshotTree(sitePackagesOf(template), sitePackagesOf(path), new Set());
  for (const script of readdirSync(join(template, 'bin')).filter((f) => /^pip[\d.]*$/.test(f))) {
    const text = readFileSync(join(template, 'bin', script), 'utf8');
    writeFileSync(join(path, 'bin', script), text.replace(/^#!.*\n/, `#!${join(path, 'bin', 'python3')}\n`));
    chmodSync(join(path, 'bin', script), 0o755);
  }
  const cfg = join(path, 'pyvenv.cfg');
  writeFileSync(cfg, readFileSync(cfg, 'utf8').replace(' --without-pip', ''));
}

/**
 * A snapshot for the venv `to` made from a snapshot of the venv `from` in some state: the same files,
 * except the few that name their venv or wheel cache by absolute path (script shebangs, pyvenv.cfg,
 * pip's direct_url.json, vdeploy's records), rewritten for `to` into `dir`. The .pyc files keep the
 * source path they were compiled at; Python corrects that on import, and pip never imports them.
 */
export function cloneSnapshot(source: TreeSnapshot, from: { venv: string; cache: string }, to: { venv: string; cache: string }, dir: string): TreeSnapshot {
  const root = source.dir;
  const candidates = [
    ...readdirSync(join(root, 'bin')).map((f) => join('bin', f)),
    'pyvenv.cfg',
    ...(existsSync(join(root, '.vdeploy')) ? readdirSync(join(root, '.vdeploy')).map((f) => join('.vdeploy', f)) : []),
    ...readdirSync(sitePackagesOf(root))
      .filter((e) => e.endsWith('.dist-info'))
      .map((e) => relative(root, join(sitePackagesOf(root), e, 'direct_url.json'))),
  ];
  const replacements = new Map<string, Buffer>();
  for (const rel of candidates) {
    const file = join(root, rel);
    if (!existsSync(file) || !lstatSync(file).isFile()) continue;
    const text = readFileSync(file, 'latin1');
    if (!text.includes(from.venv) && !text.includes(from.cache)) continue;
    replacements.set(rel, Buffer.from(text.split(from.venv).join(to.venv).split(from.cache).join(to.cache), 'latin1'));
  }
  return deriveSnapshot(source, dir, replacements);
}

export function sitePackagesOf(venv: string): string {
  const lib = join(venv, 'lib');
  const py = readdirSync(lib).find((e) => /^python3\.\d+$/.test(e));
  if (!py) throw new Error(`${venv}: no lib/python3.X directory`);
  return join(lib, py, 'site-packages');
}

/** name (lowercase, `-` for runs of `-_.`) → version of every distribution installed in a venv, read from its metadata. */
export function readInstalled(venv: string): Map<string, string> {
  const sp = sitePackagesOf(venv);
  const out = new Map<string, string>();
  for (const entry of readdirSync(sp)) {
    if (!entry.endsWith('.dist-info')) continue;
    const meta = readFileSync(join(sp, entry, 'METADATA'), 'utf8');
    const header = meta.split(/\r?\n\r?\n/, 1)[0]!;
    const name = /^Name:\s*(.+)$/m.exec(header)?.[1]?.trim();
    const version = /^Version:\s*(.+)$/m.exec(header)?.[1]?.trim();
    if (!name || !version) throw new Error(`${join(sp, entry)}: METADATA without Name/Version`);
    const key = normalizeName(name);
    if (out.has(key)) throw new Error(`${venv}: ${key} is installed twice (${out.get(key)} and ${version})`);
    out.set(key, version);
  }
  return out;
}

export function normalizeName(name: string): string {
  return name.toLowerCase().replace(/[-_.]+/g, '-');
}

/**
 * Problems with a venv's installed set against `expected` (exactly these distributions and versions,
 * nothing more), and with the app's code on disk: empty when the venv is right.
 */
export function checkVenv(venv: string, expected: ReadonlyMap<string, string>, app?: { name: string; version: string }): string[] {
  const problems: string[] = [];
  let have: Map<string, string>;
  try {
    have = readInstalled(venv);
  } catch (err) {
    return [`${venv}: ${(err as Error).message}`];
  }
  for (const [name, version] of expected) {
    if (have.get(name) !== version) problems.push(`${venv}: ${name} ${have.get(name) ?? 'missing'}, expected ${version}`);
  }
  for (const [name, version] of have) if (!expected.has(name)) problems.push(`${venv}: unexpected ${name} ${version}`);
  if (!app) return problems;
  // Metadata alone could lie about what an interrupted install left behind: check the code itself.
  const init = join(sitePackagesOf(venv), app.name, '__init__.py');
  const code = existsSync(init) ? readFileSync(init, 'utf8') : '';
  if (!code.includes(`__version__ = "${app.version}"`)) problems.push(`${venv}: ${app.name}/__init__.py is not version ${app.version}`);
  return problems;
}
