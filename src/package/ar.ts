/**
 * A small Unix `ar` archive writer and reader, enough for .deb files (issue 19, docs/packages.md): a
 * .deb is an ar archive of `debian-binary`, `control.tar.*` and `data.tar.*`. Written here (some
 * fifty lines) so a .deb builds on any controller, macOS included, without binutils or dpkg-deb.
 *
 * Format: the magic `!<arch>\n`, then per member a 60-byte ASCII header (name 16, mtime 12, uid 6,
 * gid 6, octal mode 8, size 10, "`\n") and the data, padded to an even length with "\n".
 */
import { VdeployError } from '../errors.js';

export interface ArMember {
  /** At most 15 characters (dpkg reads only the plain System V form, no long-name table). */
  name: string;
  data: Buffer;
  /** Seconds since the epoch; 0 unless given (reproducible). */
  mtime?: number;
  /** Permission bits; 0o644 unless given. */
  mode?: number;
}

const MAGIC = '!<arch>\n';
const HEADER_SIZE = 60;

function field(value: string, width: number, what: string): string {
  if (value.length > width) throw new VdeployError(`ar member ${what} "${value}" is longer than ${width} characters`);
  return value.padEnd(width, ' ');
}

/** The archive of `members`, in the given order (dpkg requires debian-binary, control, data). */
export function writeAr(members: ArMember[]): Buffer {
  const parts: Buffer[] = [Buffer.from(MAGIC, 'ascii')];
  for (const m of members) {
    if (m.name.length === 0 || m.name.length > 15 || /[/\s]/.test(m.name)) {
      throw new VdeployError(`ar member name "${m.name}" must be 1–15 characters without "/" or spaces`);
    }
    const header =
      field(m.name, 16, 'name') +
      field(String(m.mtime ?? 0), 12, 'mtime') +
      field('0', 6, 'uid') +
      field('0', 6, 'gid') +
      field(`100${(m.mode ?? 0o644).toString(8).padStart(3, '0')}`, 8, 'mode') +
      field(String(m.data.length), 10, 'size') +
      '`\n';
    parts.push(Buffer.from(header, 'ascii'), m.data);
    if (m.data.length % 2 === 1) parts.push(Buffer.from('\n', 'ascii'));
  }
  return Buffer.concat(parts);
}

/** The members of an ar archive (System V/GNU names; a trailing "/" is dropped). `what` names it in errors. */
export function readAr(archive: Buffer, what: string): ArMember[] {
  if (archive.subarray(0, MAGIC.length).toString('latin1') !== MAGIC) {
    throw new VdeployError(`${what} is not an ar archive (a .deb starts with "!<arch>")`, { hint: 'check that the file is a .deb package' });
  }
  const members: ArMember[] = [];
  let at = MAGIC.length;
  while (at < archive.length) {
    if (archive.length - at < HEADER_SIZE) throw new VdeployError(`${what} is truncated (a partial ar header at byte ${at})`);
    const h = archive.subarray(at, at + HEADER_SIZE).toString('latin1');
    if (h.slice(58, 60) !== '`\n') throw new VdeployError(`${what} has a damaged ar header at byte ${at}`);
    const size = Number.parseInt(h.slice(48, 58).trim(), 10);
    const start = at + HEADER_SIZE;
    if (!Number.isFinite(size) || start + size > archive.length) throw new VdeployError(`${what} is truncated (member at byte ${at})`);
    members.push({
      name: h.slice(0, 16).trim().replace(/\/$/, ''),
      mtime: Number.parseInt(h.slice(16, 28).trim(), 10) || 0,
      mode: Number.parseInt(h.slice(40, 48).trim(), 8) & 0o7777,
      data: archive.subarray(start, start + size),
    });
    at = start + size + (size % 2);
  }
  return members;
}
