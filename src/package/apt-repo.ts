/**
 * A flat apt repository (issue 19, docs/packages.md "The apt repository"): a directory of .deb files
 * with `Packages`, `Packages.gz` and `Release` beside them, which hosts use with a sources entry
 * `deb [trusted=yes] http://HOST/DIR/ ./`. Hosts then `apt-get install` the app as any other package,
 * and the serving scales as any web server does.
 *
 * The index is rebuilt from every *.deb in the directory, so adding a new version keeps the older
 * ones installable (apt picks the newest; `apt-get install name=version` the others).
 */
import { createHash } from 'node:crypto';
import { copyFile, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { VdeployError } from '../errors.js';
import { readDebControl } from './deb.js';

export interface AptRepoOptions {
  /** The Release file's Date, in seconds since the epoch; default SOURCE_DATE_EPOCH, else now (never before the previous Release's). */
  epoch?: number;
}

export interface AptRepoPackage {
  /** The file name inside the repository directory. */
  file: string;
  name: string;
  version: string;
  architecture: string;
  size: number;
  sha256: string;
}

export interface AptRepoResult {
  dir: string;
  /** Every package the index lists, in index order. */
  packages: AptRepoPackage[];
  /** The index files written: Packages, Packages.gz, Release (absolute paths). */
  files: string[];
}

/**
 * Copies `debs` into `dir` (creating it) and rewrites the index over every .deb there. Each file is
 * written to a temporary name and renamed, Release last, so a host never reads a half-written index.
 */
export async function updateAptRepo(dir: string, debs: string[], options: AptRepoOptions = {}): Promise<AptRepoResult> {
  const repo = resolve(dir);
  await mkdir(repo, { recursive: true });
  // Every new .deb is read before any is copied: one that apt could not use leaves DIR as it was.
  for (const deb of debs) await readDebControl(await readDeb(deb), deb);
  for (const deb of debs) {
    const dest = join(repo, basename(deb));
    if (resolve(deb) !== dest) await atomicCopy(deb, dest);
  }
  const names = (await readdir(repo)).filter((n) => n.endsWith('.deb')).sort();
  const packages: AptRepoPackage[] = [];
  const paragraphs: string[] = [];
  for (const name of names) {
    const { paragraph, pkg } = await indexEntry(repo, name);
    paragraphs.push(paragraph);
    packages.push(pkg);
  }
  const packagesText = Buffer.from(paragraphs.join('\n'), 'utf8');
  const packagesGz = gzipSync(packagesText, { level: 9 });
  packagesGz[9] = 3; // the OS byte, as in deb.ts: the same bytes on every controller
  // apt ignores, without a word, a Release dated before the one it has: the date never goes back.
  const epoch = Math.max(options.epoch ?? defaultEpoch(), await previousReleaseEpoch(repo));
  const release = Buffer.from(releaseText(epoch, { Packages: packagesText, 'Packages.gz': packagesGz }), 'utf8');
  const files: string[] = [];
  for (const [file, data] of [['Packages', packagesText], ['Packages.gz', packagesGz], ['Release', release]] as const) {
    await atomicWrite(join(repo, file), data);
    files.push(join(repo, file));
  }
  return { dir: repo, packages, files };
}

/** One paragraph of `Packages`: the .deb's control fields, then where it is and its checksums. */
async function indexEntry(repo: string, name: string): Promise<{ paragraph: string; pkg: AptRepoPackage }> {
  const data = await readFile(join(repo, name));
  const control = (await readDebControl(data, join(repo, name))).replace(/\n+$/, '');
  const field = (f: string) => new RegExp(`^${f}:[ \\t]*(.*)$`, 'm').exec(control)?.[1]?.trim() ?? '';
  const digest = (algo: string) => createHash(algo).update(data).digest('hex');
  const sha256 = digest('sha256');
  const paragraph =
    `${control}\nFilename: ./${name}\nSize: ${data.length}\n` + `MD5sum: ${digest('md5')}\nSHA1: ${digest('sha1')}\nSHA256: ${sha256}\n`;
  const pkg = { file: name, name: field('Package'), version: field('Version'), architecture: field('Architecture'), size: data.length, sha256 };
  if (!pkg.name || !pkg.version || !pkg.architecture) {
    throw new VdeployError(`${join(repo, name)} has no Package, Version or Architecture in its control file`, { hint: 'remove the file from the repository directory, or rebuild it with `vdeploy package`' });
  }
  return { paragraph, pkg };
}

/** The Release file: a date and each index file's checksums, which apt checks against what it downloads. */
export function releaseText(epoch: number, indexes: Record<string, Buffer>): string {
  const sums = (title: string, algo: string) =>
    `${title}:\n` +
    Object.entries(indexes)
      .map(([name, data]) => ` ${createHash(algo).update(data).digest('hex')} ${String(data.length).padStart(16)} ${name}\n`)
      .join('');
  const date = new Date(epoch * 1000).toUTCString().replace(/GMT$/, 'UTC');
  return `Origin: vdeploy\nLabel: vdeploy\nDate: ${date}\n${sums('MD5Sum', 'md5')}${sums('SHA1', 'sha1')}${sums('SHA256', 'sha256')}`;
}

/** The Date of the Release already in `repo`, in seconds; 0 without one. */
async function previousReleaseEpoch(repo: string): Promise<number> {
  const text = await readFile(join(repo, 'Release'), 'utf8').catch(() => '');
  const date = /^Date: (.+)$/m.exec(text)?.[1];
  const ms = date === undefined ? Number.NaN : Date.parse(date.replace(/ UTC$/, ' GMT'));
  return Number.isFinite(ms) ? Math.floor(ms / 1000) : 0;
}

function defaultEpoch(): number {
  const env = process.env.SOURCE_DATE_EPOCH;
  if (env !== undefined && /^\d+$/.test(env)) return Number(env);
  return Math.floor(Date.now() / 1000);
}

/** Writes `data` to a temp name beside `path`, then renames it: readers never see half a file. */
export async function atomicWrite(path: string, data: Buffer): Promise<void> {
  await replaceAtomically(path, (tmp) => writeFile(tmp, data));
}

async function readDeb(path: string): Promise<Buffer> {
  if (!path.endsWith('.deb') || !(await stat(path).catch(() => undefined))?.isFile()) {
    throw new VdeployError(`${path} is not a .deb file`, { hint: 'give the path of a .deb that `vdeploy package` wrote' });
  }
  return readFile(path);
}

async function atomicCopy(from: string, to: string): Promise<void> {
  await replaceAtomically(to, (tmp) => copyFile(from, tmp));
}

/** `write` fills a temp name beside `path`, which is then renamed over it (or removed if anything fails). */
async function replaceAtomically(path: string, write: (tmp: string) => Promise<void>): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    await write(tmp);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}
