/**
 * Checks that a file is a well-formed wheel whose contents match its RECORD, before it may enter the
 * repository. Everything is streamed: wheels can be hundreds of MB.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { basename } from 'node:path';
import { eq } from '@renovatebot/pep440';
import type { Entry, ZipFile } from 'yauzl';
import { VdeployError } from '../errors.js';
import { parseMetadata, type WheelMetadata } from './metadata.js';
import { ACCEPTED_HASH_ALGORITHMS, parseRecord, type RecordRow } from './record.js';
import { expandWheelTags, normalizeName, parseWheelFilename, type WheelFilename } from './wheel-filename.js';
import { findDistInfo, listFileEntries, openZip, readEntryText, REBUILD, type Fail } from './wheel-zip.js';

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

/** Hex digest (any node:crypto algorithm) and size of a whole file, streamed. */
export async function digestFile(path: string, algorithm: string, fail?: Fail): Promise<{ digest: string; size: number }> {
  const hash = createHash(algorithm);
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
  return { digest: hash.digest('hex'), size };
}

/** Hex sha256 and size of a whole file, streamed. */
export async function hashFile(path: string, fail?: Fail): Promise<{ sha256: string; size: number }> {
  const { digest, size } = await digestFile(path, 'sha256', fail);
  return { sha256: digest, size };
}
