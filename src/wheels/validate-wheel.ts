/**
 * Checks that a file is a well-formed wheel whose contents match its RECORD, before it may enter the
 * repository. Everything is streamed: wheels can be hundreds of MB.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Readable } from 'node:stream';
import { eq } from '@renovatebot/pep440';
import yauzl, { type Entry, type ZipFile } from 'yauzl';
import { VdeployError } from '../errors.js';
import { parseMetadata, type WheelMetadata } from './metadata.js';
import { ACCEPTED_HASH_ALGORITHMS, parseRecord, type RecordRow } from './record.js';
import { expandWheelTags, normalizeName, parseWheelFilename, type WheelFilename } from './wheel-filename.js';

export interface ValidatedWheel {
  /** The path as given. */
  path: string;
  filename: string;
  /** Name and Version as the wheel's METADATA spells them. */
  name: string;
  version: string;
  /** Hex sha256 of the whole file. */
  sha256: string;
  size: number;
  metadata: WheelMetadata;
  /** Every `py-abi-plat` tag the wheel carries (compressed tag sets expanded), lowercased. */
  tags: string[];
  wheel: WheelFilename;
  /** e.g. `app-1.0.dist-info` */
  distInfo: string;
}

const REBUILD = 'Rebuild the wheel (pip wheel / python -m build) or download it again.';
/** METADATA and RECORD are read into memory; anything bigger than this is not a sane one. */
const MAX_TEXT_ENTRY_BYTES = 64 * 1024 * 1024;
/** Members hashed at once: per-entry latency (header read, inflate setup) dominates for small files. */
const VERIFY_CONCURRENCY = 8;

export async function validateWheel(path: string): Promise<ValidatedWheel> {
  const fail = (why: string, hint = REBUILD) => new VdeployError(`${path}: ${why}`, { hint });
  const wheel = parseWheelFilename(basename(path), path);

  const zip = await openZip(path, fail);
  try {
    const entries = await listFileEntries(zip, fail);
    const distInfo = findDistInfo(entries, wheel, fail);

    const metadataEntry = entries.get(`${distInfo}/METADATA`);
    if (!metadataEntry) throw fail(`no METADATA in ${distInfo}`);
    const metadata = parseMetadata(await readEntryText(zip, metadataEntry, fail), `${path}: ${distInfo}/METADATA`);
    if (normalizeName(metadata.name) !== normalizeName(wheel.name))
      throw fail(`METADATA Name "${metadata.name}" does not match the filename's "${wheel.name}"`);
    if (!eq(metadata.version, wheel.version))
      throw fail(`METADATA Version "${metadata.version}" does not match the filename's "${wheel.version}"`);
    // pip refuses to install a wheel without WHEEL; better to find out now than mid-deploy.
    if (!entries.has(`${distInfo}/WHEEL`)) throw fail(`no WHEEL file in ${distInfo}`);

    const recordPath = `${distInfo}/RECORD`;
    const recordEntry = entries.get(recordPath);
    if (!recordEntry) throw fail(`no RECORD in ${distInfo}`);
    const record = parseRecord(await readEntryText(zip, recordEntry, fail), `${path}: ${recordPath}`);
    const toVerify = checkRecordCoverage(entries, record, recordPath, fail);
    await forEachConcurrently(toVerify, VERIFY_CONCURRENCY, ({ row, entry }) => verifyEntry(zip, entry, row, fail));

    const { sha256, size } = await hashFile(path, fail);
    return {
      path,
      filename: wheel.filename,
      name: metadata.name,
      version: metadata.version,
      sha256,
      size,
      metadata,
      tags: expandWheelTags(wheel),
      wheel,
      distInfo,
    };
  } finally {
    zip.close();
  }
}

type Fail = (why: string, hint?: string) => VdeployError;

async function openZip(path: string, fail: Fail): Promise<ZipFile> {
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
async function listFileEntries(zip: ZipFile, fail: Fail): Promise<Map<string, Entry>> {
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

function findDistInfo(entries: Map<string, Entry>, wheel: WheelFilename, fail: Fail): string {
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

/**
 * Every member must be in RECORD (else it went in unverified) and every hashed row must be in the zip.
 * Returns the pairs whose contents must be hashed.
 */
function checkRecordCoverage(
  entries: Map<string, Entry>,
  record: RecordRow[],
  recordPath: string,
  fail: Fail,
): Array<{ row: RecordRow; entry: Entry }> {
  const rows = new Map(record.map((row) => [row.path, row]));
  // RECORD can't hash itself; signatures are computed over RECORD after it is written.
  const unhashable = new Set([recordPath, `${recordPath}.jws`, `${recordPath}.p7s`]);
  for (const name of entries.keys()) {
    if (!rows.has(name) && !unhashable.has(name)) throw fail(`file not listed in RECORD: ${name}`);
  }
  const toVerify: Array<{ row: RecordRow; entry: Entry }> = [];
  for (const row of rows.values()) {
    const entry = entries.get(row.path);
    if (unhashable.has(row.path)) continue;
    if (!row.hash) {
      if (entry) throw fail(`RECORD has no hash for ${row.path}`);
      continue; // e.g. a .pyc an installer will create
    }
    if (!entry) throw fail(`RECORD lists ${row.path} but the wheel does not contain it`);
    if (!ACCEPTED_HASH_ALGORITHMS.includes(row.hash.algorithm))
      throw fail(`RECORD uses ${row.hash.algorithm} for ${row.path}; only ${ACCEPTED_HASH_ALGORITHMS.join(', ')} are accepted`);
    toVerify.push({ row, entry });
  }
  return toVerify;
}

async function verifyEntry(zip: ZipFile, entry: Entry, row: RecordRow, fail: Fail): Promise<void> {
  const sizeMismatch = (actual: number) =>
    fail(`RECORD size mismatch for ${row.path} (RECORD says ${row.size} bytes, the wheel has ${actual})`);
  if (row.size !== undefined && row.size !== entry.uncompressedSize) throw sizeMismatch(entry.uncompressedSize);
  const hash = createHash(row.hash!.algorithm);
  let size = 0;
  try {
    for await (const chunk of await zip.openReadStreamPromise(entry)) {
      hash.update(chunk as Buffer);
      size += (chunk as Buffer).length;
    }
  } catch (err) {
    throw fail(`corrupt zip entry ${row.path} (${(err as Error).message})`);
  }
  if (row.size !== undefined && row.size !== size) throw sizeMismatch(size);
  // Some tools pad the base64; the digest is the same either way.
  if (hash.digest('base64url') !== row.hash!.digest.replace(/=+$/, ''))
    throw fail(`RECORD hash mismatch for ${row.path}`, `The wheel was changed after it was built, or is damaged. ${REBUILD}`);
}

/** Runs `fn` over `items` with at most `limit` in flight; the first failure wins. */
async function forEachConcurrently<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (next < items.length && !failed) {
      await fn(items[next++]!).catch((err: unknown) => {
        failed = true; // the others stop taking items: the zip is about to be closed
        throw err;
      });
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

async function readEntryText(zip: ZipFile, entry: Entry, fail: Fail): Promise<string> {
  if (entry.uncompressedSize > MAX_TEXT_ENTRY_BYTES) throw fail(`${entry.fileName} is implausibly large`);
  try {
    return (await readAll(await zip.openReadStreamPromise(entry))).toString('utf8');
  } catch (err) {
    throw fail(`corrupt zip entry ${entry.fileName} (${(err as Error).message})`);
  }
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Hex sha256 and size of a whole file, streamed. */
export async function hashFile(path: string, fail?: Fail): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  try {
    for await (const chunk of createReadStream(path)) {
      hash.update(chunk as Buffer);
      size += (chunk as Buffer).length;
    }
  } catch (err) {
    if (!fail) throw err;
    throw fail(`cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  return { sha256: hash.digest('hex'), size };
}
