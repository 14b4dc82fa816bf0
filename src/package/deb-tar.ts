/**
 * The tar archives inside a .deb (issue 19), written with tar-stream and gzipped with node:zlib.
 *
 * Long names: tar-stream writes a pax `x` header for a name that does not fit ustar's fields, and
 * dpkg refuses those ("unsupported PAX tar header type 'x'"); dpkg reads GNU `././@LongLink` entries,
 * as dpkg-deb itself writes them. tar-stream has no type for those, so a name longer than 100 bytes
 * (or not ASCII) gets a `././@LongLink` entry written as a plain file, whose type byte is then set to
 * `L` (name) or `K` (link target) here, and the entry itself carries an ASCII cut of the name.
 */
import { gzipSync } from 'node:zlib';
import { pack, type Header } from 'tar-stream';

export type TarHeader = Partial<Header> & Pick<Header, 'name'>;

export interface TarItem {
  header: TarHeader;
  content?: Buffer;
}

const LONG_LINK = '././@LongLink';
const BLOCK = 512;

/** A gzip of a tar of `items`, in order, all owned by root:root with the same mtime. */
export async function tarGz(items: TarItem[], mtime: number): Promise<Buffer> {
  const expanded: TarItem[] = [];
  const longKinds: ('L' | 'K')[] = [];
  for (const item of items) {
    const header = { ...item.header };
    if (!fitsUstar(header.name)) {
      expanded.push(longLink(header.name));
      longKinds.push('L');
      header.name = asciiCut(header.name);
    }
    if (header.linkname !== undefined && !fitsUstar(header.linkname)) {
      expanded.push(longLink(header.linkname));
      longKinds.push('K');
      header.linkname = asciiCut(header.linkname);
    }
    expanded.push({ header, content: item.content });
  }
  const tar = await packTar(expanded, mtime);
  markLongLinks(tar, longKinds);
  const gz = gzipSync(tar, { level: 9 });
  // The gzip header's OS byte is zlib's build platform (3 Unix, 19 macOS): fix it so every controller writes the same bytes.
  gz[9] = 3;
  return gz;
}

/** Fits a plain ustar name field without the prefix field (GNU tar's rule too): ASCII, at most 100 bytes. */
function fitsUstar(name: string): boolean {
  return name.length <= 100 && /^[\x20-\x7e]*$/.test(name);
}

function asciiCut(name: string): string {
  return name.replace(/[^\x20-\x7e]/g, '_').slice(0, 100);
}

function longLink(name: string): TarItem {
  return { header: { name: LONG_LINK, type: 'file', mode: 0o644 }, content: Buffer.from(`${name}\0`, 'utf8') };
}

async function packTar(items: TarItem[], mtime: number): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const chunk of p) chunks.push(chunk as Buffer);
  })();
  for (const { header, content } of items) {
    const h: TarHeader = { ...header, uid: 0, gid: 0, uname: 'root', gname: 'root', mtime: new Date(mtime * 1000) };
    await new Promise<void>((resolve, reject) => {
      p.entry(h, content ?? Buffer.alloc(0), (err) => (err ? reject(err) : resolve()));
    });
  }
  p.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** Sets the type byte of the n-th `././@LongLink` header to kinds[n] and fixes its checksum. */
function markLongLinks(tar: Buffer, kinds: ('L' | 'K')[]): void {
  let n = 0;
  for (let at = 0; n < kinds.length && at + BLOCK <= tar.length; ) {
    const size = Number.parseInt(tar.subarray(at + 124, at + 136).toString('latin1').replace(/\0.*$/s, '').trim() || '0', 8);
    if (tar.subarray(at, at + LONG_LINK.length + 1).toString('latin1') === `${LONG_LINK}\0`) {
      tar[at + 156] = kinds[n++]!.charCodeAt(0);
      tar.fill(0x20, at + 148, at + 156);
      let sum = 0;
      for (let i = at; i < at + BLOCK; i++) sum += tar[i]!;
      tar.write(`${sum.toString(8).padStart(6, '0')}\0 `, at + 148, 'latin1');
    }
    at += BLOCK + Math.ceil(size / BLOCK) * BLOCK;
  }
  if (n !== kinds.length) throw new Error(`tar writer: found ${n} of ${kinds.length} long-name entries (a vdeploy bug)`);
}
