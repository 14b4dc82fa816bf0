/**
 * Rewrites a freshly built wheel's zip container so that the same source gives the same bytes.
 *
 * SOURCE_DATE_EPOCH alone is not enough: setuptools/wheel (and other backends) store each member's
 * permission bits as they are on disk, and those depend on the umask of whoever checked out and
 * built (0644 under umask 022, 0664 under 002: a different wheel from the same commit). Other
 * backends may also keep extra fields (e.g. extended timestamps) or write members in directory
 * order. So every member gets: the time of SOURCE_DATE_EPOCH (clamped to the zip range; the
 * member's own time when there is none), mode 0644 or 0755 (executable bit kept) made on Unix, no
 * extra fields or comments, and a fixed order (the package first, then `.dist-info/` with RECORD
 * last, as PEP 427 recommends). The compressed data is copied as is, never recompressed, so the
 * contents and RECORD's hashes are untouched; validation runs on the result as on any wheel.
 */
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Entry, ZipFile } from 'yauzl';
import { VdeployError } from '../errors.js';
import { openZip } from '../wheels/wheel-zip.js';

export type NormalizeResult = { normalized: true } | { normalized: false; reason: string };

const LOCAL_HEADER = 0x04034b50;
const CENTRAL_HEADER = 0x02014b50;
const END_OF_CENTRAL_DIR = 0x06054b50;
/** Zip 2.0, made on Unix (3): what Python's zipfile writes. */
const VERSION_MADE_BY = (3 << 8) | 20;
const VERSION_NEEDED = 20;
const UTF8_FLAG = 1 << 11;
const ZIP32_LIMIT = 0xffffffff;
/** 1980-01-01T00:00:00Z and 2107-12-31T23:59:58Z: what a DOS date can say. */
const DOS_MIN = 315532800;
const DOS_MAX = 4354819198;

interface Member {
  entry: Entry;
  name: Buffer;
  flags: number;
  time: number;
  date: number;
  external: number;
}

export async function normalizeWheel(path: string, sourceDateEpoch: number | undefined): Promise<NormalizeResult> {
  const fail = (why: string) => new VdeployError(`${path}: ${why}`, { hint: 'the build produced a broken wheel; run with --verbose to see the build output' });
  const zip = await openZip(path, fail);
  try {
    const entries: Entry[] = [];
    for await (const entry of zip.eachEntry()) entries.push(entry);
    const unsupported = entries.find((e) => e.isEncrypted() || (e.compressionMethod !== 0 && e.compressionMethod !== 8));
    if (unsupported) return { normalized: false, reason: `${unsupported.fileName} uses compression method ${unsupported.compressionMethod} or encryption` };
    const total = entries.reduce((n, e) => n + 30 + 46 + 2 * e.fileNameRaw.length + e.compressedSize, 22);
    if (entries.length >= 0xffff || total >= ZIP32_LIMIT) return { normalized: false, reason: 'too big for a zip without zip64 extensions' };
    const members = sortMembers(entries).map((entry) => member(entry, sourceDateEpoch));
    const temp = join(dirname(path), `.${basename(path)}.${process.pid}.normalize`);
    try {
      await writeZip(zip, members, temp);
      await rename(temp, path);
    } catch (err) {
      await unlink(temp).catch(() => {});
      throw err instanceof VdeployError ? err : fail(`cannot rewrite it (${(err as Error).message})`);
    }
    return { normalized: true };
  } finally {
    zip.close();
  }
}

/** The package first, then `*.dist-info/` members, its RECORD last; by name within each. */
export function sortMembers<T extends { fileName: string }>(entries: readonly T[]): T[] {
  const rank = (name: string) => {
    const top = name.split('/')[0]!;
    if (!name.includes('/') || !top.endsWith('.dist-info')) return 0;
    return name === `${top}/RECORD` ? 2 : 1;
  };
  return [...entries].sort((a, b) => rank(a.fileName) - rank(b.fileName) || (a.fileName < b.fileName ? -1 : a.fileName > b.fileName ? 1 : 0));
}

function member(entry: Entry, epoch: number | undefined): Member {
  const madeOnUnix = entry.versionMadeBy >> 8 === 3;
  const executable = madeOnUnix && ((entry.externalFileAttributes >>> 16) & 0o111) !== 0;
  const directory = entry.fileName.endsWith('/');
  const mode = directory ? 0o40755 : executable ? 0o100755 : 0o100644;
  const utf8 = (entry.generalPurposeBitFlag & UTF8_FLAG) !== 0 || /[^\x00-\x7f]/.test(entry.fileName);
  const { time, date } = epoch === undefined ? { time: entry.lastModFileTime, date: entry.lastModFileDate } : dosDateTime(epoch);
  return {
    entry,
    // yauzl decodes CP437 names; a non-UTF-8 name keeps its raw bytes.
    name: utf8 ? Buffer.from(entry.fileName, 'utf8') : entry.fileNameRaw,
    flags: utf8 ? UTF8_FLAG : 0,
    time,
    date,
    external: ((mode << 16) | (directory ? 0x10 : 0)) >>> 0,
  };
}

/** A DOS date and time (UTC, 2-second steps) for a Unix time, clamped to what they can hold. */
export function dosDateTime(epochSeconds: number): { time: number; date: number } {
  const d = new Date(Math.min(Math.max(epochSeconds, DOS_MIN), DOS_MAX) * 1000);
  return {
    time: (d.getUTCHours() << 11) | (d.getUTCMinutes() << 5) | (d.getUTCSeconds() >> 1),
    date: ((d.getUTCFullYear() - 1980) << 9) | ((d.getUTCMonth() + 1) << 5) | d.getUTCDate(),
  };
}

async function writeZip(zip: ZipFile, members: readonly Member[], dest: string): Promise<void> {
  const out = await open(dest, 'wx', 0o644);
  try {
    let offset = 0;
    const central: Buffer[] = [];
    for (const m of members) {
      const e = m.entry;
      const header = Buffer.alloc(30);
      header.writeUInt32LE(LOCAL_HEADER, 0);
      header.writeUInt16LE(VERSION_NEEDED, 4);
      header.writeUInt16LE(m.flags, 6);
      header.writeUInt16LE(e.compressionMethod, 8);
      header.writeUInt16LE(m.time, 10);
      header.writeUInt16LE(m.date, 12);
      header.writeUInt32LE(e.crc32, 14);
      header.writeUInt32LE(e.compressedSize, 18);
      header.writeUInt32LE(e.uncompressedSize, 22);
      header.writeUInt16LE(m.name.length, 26);
      await out.write(Buffer.concat([header, m.name]));
      // Raw compressed bytes: `decompress: false` is only allowed (and only needed) for deflated members.
      const data = await zip.openReadStreamPromise(e, e.compressionMethod === 8 ? { decompress: false } : {});
      let written = 0;
      for await (const chunk of data) {
        await out.write(chunk as Buffer);
        written += (chunk as Buffer).length;
      }
      if (written !== e.compressedSize) throw new VdeployError(`${e.fileName}: read ${written} bytes, its header says ${e.compressedSize}`);
      central.push(centralHeader(m, offset));
      offset += header.length + m.name.length + written;
    }
    const directory = Buffer.concat(central);
    const end = Buffer.alloc(22);
    end.writeUInt32LE(END_OF_CENTRAL_DIR, 0);
    end.writeUInt16LE(members.length, 8);
    end.writeUInt16LE(members.length, 10);
    end.writeUInt32LE(directory.length, 12);
    end.writeUInt32LE(offset, 16);
    await out.write(Buffer.concat([directory, end]));
    await out.sync();
  } finally {
    await out.close();
  }
}

function centralHeader(m: Member, offset: number): Buffer {
  const e = m.entry;
  const header = Buffer.alloc(46);
  header.writeUInt32LE(CENTRAL_HEADER, 0);
  header.writeUInt16LE(VERSION_MADE_BY, 4);
  header.writeUInt16LE(VERSION_NEEDED, 6);
  header.writeUInt16LE(m.flags, 8);
  header.writeUInt16LE(e.compressionMethod, 10);
  header.writeUInt16LE(m.time, 12);
  header.writeUInt16LE(m.date, 14);
  header.writeUInt32LE(e.crc32, 16);
  header.writeUInt32LE(e.compressedSize, 20);
  header.writeUInt32LE(e.uncompressedSize, 24);
  header.writeUInt16LE(m.name.length, 28);
  header.writeUInt32LE(m.external, 38);
  header.writeUInt32LE(offset, 42);
  return Buffer.concat([header, m.name]);
}
