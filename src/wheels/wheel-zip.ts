/**
 * Reading a wheel's zip: opening it, listing its members, finding its `.dist-info` directory and
 * reading a small text member. Shared by validation (every member) and dependency reading (METADATA
 * only). Errors go through the caller's `fail`, so each names the file the way the caller wants.
 */
import { stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { eq } from '@renovatebot/pep440';
import yauzl, { type Entry, type ZipFile } from 'yauzl';
import { VdeployError } from '../errors.js';
import { normalizeName, type WheelFilename } from './wheel-filename.js';

/** Builds the error for one problem with the wheel (the caller prefixes the path). */
export type Fail = (why: string, hint?: string) => VdeployError;

export const REBUILD = 'Rebuild the wheel (pip wheel / python -m build) or download it again.';
/** METADATA and RECORD are read into memory; anything bigger than this is not a sane one. */
const MAX_TEXT_ENTRY_BYTES = 64 * 1024 * 1024;

export async function openZip(path: string, fail: Fail): Promise<ZipFile> {
  const info = await stat(path).catch((err: NodeJS.ErrnoException) => {
    throw err.code === 'ENOENT' ? fail('no such file', 'Check the path.') : fail(`cannot read (${err.code ?? err.message})`);
  });
  if (!info.isFile()) throw fail('not a regular file', 'Pass the .whl file itself.');
  // autoClose off: entries are opened again after the central directory has been read.
  return yauzl.openPromise(path, { lazyEntries: true, autoClose: false, validateEntrySizes: true }).catch((err: Error) => {
    throw fail(`not a readable zip archive (${err.message})`);
  });
}

/** File entries by name (directories skipped); reads only the central directory. */
export async function listFileEntries(zip: ZipFile, fail: Fail): Promise<Map<string, Entry>> {
  const entries = new Map<string, Entry>();
  try {
    for await (const entry of zip.eachEntry()) {
      if (entry.fileName.endsWith('/')) continue;
      // Which of two same-named members an installer extracts is unspecified: refuse the ambiguity.
      if (entries.has(entry.fileName)) throw fail(`duplicate zip entry ${entry.fileName}`);
      entries.set(entry.fileName, entry);
    }
  } catch (err) {
    if (err instanceof VdeployError) throw err;
    throw fail(`not a readable zip archive (${(err as Error).message})`);
  }
  return entries;
}

/** The one `<name>-<version>.dist-info` directory, which must match the filename. */
export function findDistInfo(entries: Map<string, Entry>, wheel: WheelFilename, fail: Fail): string {
  const dirs = new Set<string>();
  for (const name of entries.keys()) {
    const top = name.split('/')[0]!;
    if (name.includes('/') && top.endsWith('.dist-info')) dirs.add(top);
  }
  const hint = `A wheel needs exactly one ${wheel.name}-${wheel.version}.dist-info/ directory. ${REBUILD}`;
  if (dirs.size === 0) throw fail('no .dist-info directory', hint);
  if (dirs.size > 1) throw fail(`${dirs.size} .dist-info directories (${[...dirs].sort().join(', ')})`, hint);
  const dir = [...dirs][0]!;
  const stem = dir.slice(0, -'.dist-info'.length);
  const dash = stem.lastIndexOf('-');
  const [dname, dversion] = [stem.slice(0, dash), stem.slice(dash + 1)];
  if (dash <= 0 || normalizeName(dname) !== normalizeName(wheel.name) || !eq(dversion, wheel.version))
    throw fail(`${dir} does not match the filename's ${wheel.name} ${wheel.version}`, hint);
  return dir;
}

/** One member's text (UTF-8), refusing members too big to be metadata. */
export async function readEntryText(zip: ZipFile, entry: Entry, fail: Fail): Promise<string> {
  if (entry.uncompressedSize > MAX_TEXT_ENTRY_BYTES) throw fail(`${entry.fileName} is implausibly large`);
  try {
    return (await readAll(await zip.openReadStreamPromise(entry))).toString('utf8');
  } catch (err) {
    throw fail(`corrupt zip entry ${entry.fileName} (${(err as Error).message})`);
  }
}

/**
 * Opens the wheel at `path`, reads `<dist-info>/<member>` (e.g. METADATA) and closes it again.
 * Returns the text and the dist-info directory it came from.
 */
export async function readDistInfoText(
  path: string,
  wheel: WheelFilename,
  member: string,
  fail: Fail,
): Promise<{ distInfo: string; text: string }> {
  const zip = await openZip(path, fail);
  try {
    const entries = await listFileEntries(zip, fail);
    const distInfo = findDistInfo(entries, wheel, fail);
    const entry = entries.get(`${distInfo}/${member}`);
    if (!entry) throw fail(`no ${member} in ${distInfo}`);
    return { distInfo, text: await readEntryText(zip, entry, fail) };
  } finally {
    zip.close();
  }
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

