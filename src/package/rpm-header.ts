/**
 * The two binary structures inside an .rpm (issue 19, docs/packages.md): an rpm "header" (an index of
 * typed tags plus a data store, used for both the signature header and the main header) and the cpio
 * "newc" archive the payload is made of. Written from rpm's own format description (rpm's
 * docs/manual/format.md, include/rpm/rpmtag.h), not copied from any implementation.
 */

/** Tag data types (rpmtag.h `rpmTagType`). */
export const T = { INT16: 3, INT32: 4, STRING: 6, BIN: 7, STRING_ARRAY: 8, I18NSTRING: 9 } as const;

export type TagValue =
  | { type: typeof T.INT16 | typeof T.INT32; values: number[] }
  | { type: typeof T.STRING | typeof T.I18NSTRING; value: string }
  | { type: typeof T.STRING_ARRAY; values: string[] }
  | { type: typeof T.BIN; value: Buffer };

const HEADER_MAGIC = Buffer.from([0x8e, 0xad, 0xe8, 0x01, 0, 0, 0, 0]);
const ALIGN: Record<number, number> = { [T.INT16]: 2, [T.INT32]: 4 };

function encode(v: TagValue): { data: Buffer; count: number } {
  switch (v.type) {
    case T.INT16: {
      const b = Buffer.alloc(2 * v.values.length);
      v.values.forEach((n, i) => b.writeUInt16BE(n & 0xffff, 2 * i));
      return { data: b, count: v.values.length };
    }
    case T.INT32: {
      const b = Buffer.alloc(4 * v.values.length);
      v.values.forEach((n, i) => b.writeUInt32BE(n >>> 0, 4 * i));
      return { data: b, count: v.values.length };
    }
    case T.STRING:
    case T.I18NSTRING:
      return { data: Buffer.from(`${v.value}\0`, 'utf8'), count: 1 };
    case T.STRING_ARRAY:
      return { data: Buffer.from(v.values.map((s) => `${s}\0`).join(''), 'utf8'), count: v.values.length };
    case T.BIN:
      return { data: v.value, count: v.value.length };
  }
}

/**
 * One header blob. `region` is 62 (HEADER_SIGNATURES) for the signature header or 63
 * (HEADER_IMMUTABLE) for the main header: rpm >= 4.14 refuses headers without that first index entry,
 * whose data (a 16-byte trailer at the end of the store) points back at the start of the index.
 * Entries are sorted by tag and their data laid out in the same order, which rpm's checks require.
 */
export function headerBlob(region: number, tags: Map<number, TagValue>): Buffer {
  const sorted = [...tags.entries()].sort((a, b) => a[0] - b[0]);
  const count = sorted.length + 1;
  const index: Buffer[] = [];
  const store: Buffer[] = [];
  let size = 0;
  for (const [tag, value] of sorted) {
    const { data, count: n } = encode(value);
    const align = ALIGN[value.type] ?? 1;
    const pad = (align - (size % align)) % align;
    if (pad) store.push(Buffer.alloc(pad));
    size += pad;
    index.push(entry(tag, value.type, size, n));
    store.push(data);
    size += data.length;
  }
  const trailer = entry(region, T.BIN, -16 * count, 16);
  const regionEntry = entry(region, T.BIN, size, 16);
  const head = Buffer.alloc(8);
  head.writeUInt32BE(count, 0);
  head.writeUInt32BE(size + 16, 4);
  return Buffer.concat([HEADER_MAGIC, head, regionEntry, ...index, ...store, trailer]);
}

function entry(tag: number, type: number, offset: number, count: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt32BE(tag, 0);
  b.writeUInt32BE(type, 4);
  b.writeInt32BE(offset, 8);
  b.writeUInt32BE(count, 12);
  return b;
}

/** One cpio member: `name` as stored (`./opt/x`), full st_mode, content (a symlink's is its target). */
export interface CpioMember {
  name: string;
  mode: number;
  content: Buffer;
  ino: number;
  nlink: number;
  mtime: number;
}

const pad4 = (n: number) => Buffer.alloc((4 - (n % 4)) % 4);

function cpioHeader(m: Omit<CpioMember, 'content'>, size: number): Buffer {
  const name = Buffer.from(`${m.name}\0`, 'utf8');
  // ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor namesize check
  const fields = [m.ino, m.mode, 0, 0, m.nlink, m.mtime, size, 0, 0, 0, 0, name.length, 0];
  const head = Buffer.from(`070701${fields.map((f) => (f >>> 0).toString(16).padStart(8, '0')).join('')}`, 'ascii');
  return Buffer.concat([head, name, pad4(head.length + name.length)]);
}

/** A cpio "newc" archive (magic 070701, what rpm's payload format `cpio` means), with its trailer. */
export function cpioNewc(members: CpioMember[]): Buffer {
  const parts: Buffer[] = [];
  for (const m of members) {
    parts.push(cpioHeader(m, m.content.length), m.content, pad4(m.content.length));
  }
  parts.push(cpioHeader({ name: 'TRAILER!!!', mode: 0, ino: 0, nlink: 1, mtime: 0 }, 0));
  return Buffer.concat(parts);
}
