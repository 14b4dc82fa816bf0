/**
 * The .rpm writer (issue 19, docs/packages.md "The .rpm"): a `PackageTree` → an RPM v4 package,
 * written here so that a controller without rpmbuild (macOS) can make one. Layout: a 96-byte lead, the
 * signature header (sizes, SHA-256/SHA-1 of the main header, MD5 of header+payload), padding to 8, the
 * main header (metadata, the file list, scriptlets, dependencies, the payload's SHA-256), then the
 * payload: a gzip'd cpio "newc" archive of `./`-prefixed paths. Reproducible: no clock, no host name,
 * every mtime and the build time are `tree.mtime`, files sorted by path, gzip without name or time.
 */
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { ConfigError } from '../errors.js';
import { cpioNewc, headerBlob, T, type CpioMember, type TagValue } from './rpm-header.js';
import type { PackageMeta, PackageTree, TreeEntry } from './tree.js';

// Tag numbers from rpm's include/rpm/rpmtag.h (RPMTAG_*, RPMSIGTAG_*).
const SIG = { SHA1: 269, SHA256: 273, SIZE: 1000, MD5: 1004, PAYLOADSIZE: 1007 } as const;
const TAG = {
  I18NTABLE: 100, NAME: 1000, VERSION: 1001, RELEASE: 1002, SUMMARY: 1004, DESCRIPTION: 1005,
  BUILDTIME: 1006, BUILDHOST: 1007, SIZE: 1009, LICENSE: 1014, PACKAGER: 1015, GROUP: 1016, URL: 1020,
  OS: 1021, ARCH: 1022, PREIN: 1023, POSTIN: 1024, PREUN: 1025, POSTUN: 1026, FILESIZES: 1028,
  FILEMODES: 1030, FILERDEVS: 1033, FILEMTIMES: 1034, FILEDIGESTS: 1035, FILELINKTOS: 1036,
  FILEFLAGS: 1037, FILEUSERNAME: 1039, FILEGROUPNAME: 1040, SOURCERPM: 1044, FILEVERIFYFLAGS: 1045,
  PROVIDENAME: 1047, REQUIREFLAGS: 1048, REQUIRENAME: 1049, REQUIREVERSION: 1050, RPMVERSION: 1064,
  PREUNPROG: 1087, POSTINPROG: 1086, POSTUNPROG: 1088, FILEDEVICES: 1095, FILEINODES: 1096,
  FILELANGS: 1097, PROVIDEFLAGS: 1112, PROVIDEVERSION: 1113, DIRINDEXES: 1116, BASENAMES: 1117,
  DIRNAMES: 1118, PAYLOADFORMAT: 1124, PAYLOADCOMPRESSOR: 1125, PAYLOADFLAGS: 1126,
  FILEDIGESTALGO: 5011, ENCODING: 5062, PAYLOADDIGEST: 5092, PAYLOADDIGESTALGO: 5093,
} as const;

/** rpmds.h sense flags. */
const SENSE = { LESS: 2, GREATER: 4, EQUAL: 8, INTERP: 1 << 8, POST: 1 << 10, PREUN: 1 << 11, POSTUN: 1 << 12, RPMLIB: 1 << 24 };
const FILE_CONFIG = 1;
const FILE_NOREPLACE = 1 << 4;
const DIGEST_SHA256 = 8;

/** Debian architecture names (the tree's) → rpm's. */
const ARCH: Record<string, string> = { all: 'noarch', amd64: 'x86_64', arm64: 'aarch64', i386: 'i686', armhf: 'armv7hl', ppc64el: 'ppc64le', s390x: 's390x' };

/**
 * Directories every system already has (the `filesystem` package owns them on rpm distributions).
 * The package does not own them, so that installing it never conflicts over their modes and removing
 * it never tries to remove them.
 */
const SYSTEM_DIRS = new Set(['/', '/etc', '/opt', '/usr', '/usr/bin', '/usr/lib', '/usr/local', '/usr/share',
  '/lib', '/lib/systemd', '/lib/systemd/system', '/usr/lib/systemd', '/usr/lib/systemd/system', '/var', '/var/lib', '/srv',
  '/etc/systemd', '/etc/systemd/system', '/etc/default', '/etc/sysconfig']);

export function rpmArch(meta: PackageMeta): string {
  return ARCH[meta.architecture] ?? meta.architecture;
}

/** `name-version-iteration.arch.rpm`, e.g. `myshop-1.4.2-1.x86_64.rpm`. */
export function rpmFileName(meta: PackageMeta): string {
  return `${meta.name}-${meta.version}-${meta.iteration}.${rpmArch(meta)}.rpm`;
}

/** The complete .rpm for `tree`; the same tree gives the same bytes. */
export function writeRpm(tree: PackageTree): Buffer {
  checkMeta(tree.meta);
  const entries = packagedEntries(tree);
  const cpio = cpioNewc(entries.map((e, i) => cpioMember(e, i + 1, tree.mtime)));
  const payload = gzipSync(cpio, { level: 9 });
  const header = headerBlob(63, mainTags(tree, entries, sha256(payload)));
  const signature = headerBlob(62, signatureTags(header, payload, cpio.length));
  const sigPad = Buffer.alloc((8 - (signature.length % 8)) % 8);
  return Buffer.concat([lead(tree.meta), signature, sigPad, header, payload]);
}

function checkMeta(meta: PackageMeta): void {
  for (const [field, value] of [['version', meta.version], ['iteration', String(meta.iteration)]] as const) {
    if (!/^[A-Za-z0-9._+~^]+$/.test(value)) {
      throw new ConfigError(`package ${meta.name}: ${field} "${value}" cannot be an rpm ${field === 'version' ? 'Version' : 'Release'}`, {
        hint: 'use letters, digits and . _ + ~ ^ only (no "-")',
      });
    }
  }
}

/** The entries the package owns, sorted by path (rpm looks files up by binary search). */
function packagedEntries(tree: PackageTree): TreeEntry[] {
  const keep = tree.entries.filter((e) => !(e.kind === 'dir' && SYSTEM_DIRS.has(e.path)));
  return keep.sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
}

function stMode(e: TreeEntry): number {
  if (e.kind === 'dir') return 0o040000 | (e.mode & 0o7777);
  if (e.kind === 'file') return 0o100000 | (e.mode & 0o7777);
  return 0o120777;
}

const content = (e: TreeEntry): Buffer =>
  e.kind === 'file' ? e.content : e.kind === 'symlink' ? Buffer.from(e.target, 'utf8') : Buffer.alloc(0);

function cpioMember(e: TreeEntry, ino: number, mtime: number): CpioMember {
  return { name: `.${e.path}`, mode: stMode(e), content: content(e), ino, nlink: e.kind === 'dir' ? 2 : 1, mtime };
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function lead(meta: PackageMeta): Buffer {
  const b = Buffer.alloc(96);
  b.set([0xed, 0xab, 0xee, 0xdb, 3, 0], 0);
  b.writeUInt16BE(0, 6); // binary package
  b.writeUInt16BE(rpmArch(meta) === 'aarch64' ? 19 : 1, 8);
  b.write(`${meta.name}-${meta.version}-${meta.iteration}`.slice(0, 65), 10, 'utf8');
  b.writeUInt16BE(1, 76); // Linux
  b.writeUInt16BE(5, 78); // the signature is a header
  return b;
}

function signatureTags(header: Buffer, payload: Buffer, cpioSize: number): Map<number, TagValue> {
  const total = header.length + payload.length;
  if (total > 0xffffffff || cpioSize > 0xffffffff) {
    throw new ConfigError('the package is larger than 4 GiB, which this .rpm writer does not support', { hint: 'ship fewer files' });
  }
  return new Map<number, TagValue>([
    [SIG.SHA1, { type: T.STRING, value: createHash('sha1').update(header).digest('hex') }],
    [SIG.SHA256, { type: T.STRING, value: sha256(header) }],
    [SIG.SIZE, { type: T.INT32, values: [total] }],
    [SIG.MD5, { type: T.BIN, value: createHash('md5').update(header).update(payload).digest() }],
    [SIG.PAYLOADSIZE, { type: T.INT32, values: [cpioSize] }],
  ]);
}

const str = (value: string): TagValue => ({ type: T.STRING, value });
const i18n = (value: string): TagValue => ({ type: T.I18NSTRING, value });
const int32 = (values: number[]): TagValue => ({ type: T.INT32, values });
const strs = (values: string[]): TagValue => ({ type: T.STRING_ARRAY, values });

function mainTags(tree: PackageTree, entries: TreeEntry[], payloadSha256: string): Map<number, TagValue> {
  const m = tree.meta;
  const evr = `${m.version}-${m.iteration}`;
  const tags = new Map<number, TagValue>([
    [TAG.I18NTABLE, strs(['C'])],
    [TAG.NAME, str(m.name)],
    [TAG.VERSION, str(m.version)],
    [TAG.RELEASE, str(String(m.iteration))],
    [TAG.SUMMARY, i18n(m.summary)],
    [TAG.DESCRIPTION, i18n(m.description || m.summary)],
    [TAG.BUILDTIME, int32([tree.mtime])],
    [TAG.BUILDHOST, str('vdeploy')],
    [TAG.LICENSE, str(m.license ?? 'unknown')],
    [TAG.PACKAGER, str(m.maintainer)],
    [TAG.GROUP, i18n('Applications/System')],
    [TAG.OS, str('linux')],
    [TAG.ARCH, str(rpmArch(m))],
    [TAG.SOURCERPM, str(`${m.name}-${evr}.src.rpm`)], // its presence is what marks a binary package
    [TAG.RPMVERSION, str('4.18.0')],
    [TAG.PROVIDENAME, strs([m.name])],
    [TAG.PROVIDEFLAGS, int32([SENSE.EQUAL])],
    [TAG.PROVIDEVERSION, strs([evr])],
    [TAG.PAYLOADFORMAT, str('cpio')],
    [TAG.PAYLOADCOMPRESSOR, str('gzip')],
    [TAG.PAYLOADFLAGS, str('9')],
    [TAG.ENCODING, str('utf-8')],
    [TAG.PAYLOADDIGEST, strs([payloadSha256])],
    [TAG.PAYLOADDIGESTALGO, int32([DIGEST_SHA256])],
  ]);
  if (m.homepage) tags.set(TAG.URL, str(m.homepage));
  // rpm rejects a tag with no values, so a package owning no path has no file list at all.
  if (entries.length) for (const [tag, value] of fileTags(tree, entries)) tags.set(tag, value);
  else tags.set(TAG.SIZE, int32([0]));
  for (const [tag, value] of scriptTags(tree)) tags.set(tag, value);
  for (const [tag, value] of requireTags(tree)) tags.set(tag, value);
  return tags;
}

function fileTags(tree: PackageTree, entries: TreeEntry[]): Map<number, TagValue> {
  const dirs: string[] = [];
  const dirIndexes = entries.map((e) => {
    const dir = e.path.slice(0, e.path.lastIndexOf('/') + 1);
    if (!dirs.includes(dir)) dirs.push(dir);
    return dirs.indexOf(dir);
  });
  const conf = new Set(tree.conffiles);
  const sizes = entries.map((e) => (e.kind === 'dir' ? 0 : content(e).length));
  const total = sizes.reduce((a, b) => a + b, 0);
  return new Map<number, TagValue>([
    [TAG.SIZE, int32([Math.min(total, 0xffffffff)])],
    [TAG.FILESIZES, int32(sizes)],
    [TAG.FILEMODES, { type: T.INT16, values: entries.map(stMode) }],
    [TAG.FILERDEVS, { type: T.INT16, values: entries.map(() => 0) }],
    [TAG.FILEMTIMES, int32(entries.map(() => tree.mtime))],
    [TAG.FILEDIGESTS, strs(entries.map((e) => (e.kind === 'file' ? sha256(e.content) : '')))],
    [TAG.FILELINKTOS, strs(entries.map((e) => (e.kind === 'symlink' ? e.target : '')))],
    [TAG.FILEFLAGS, int32(entries.map((e) => (conf.has(e.path) ? FILE_CONFIG | FILE_NOREPLACE : 0)))],
    [TAG.FILEUSERNAME, strs(entries.map(() => 'root'))],
    [TAG.FILEGROUPNAME, strs(entries.map(() => 'root'))],
    [TAG.FILEVERIFYFLAGS, int32(entries.map(() => 0xffffffff))],
    [TAG.FILEDEVICES, int32(entries.map(() => 1))],
    [TAG.FILEINODES, int32(entries.map((_, i) => i + 1))],
    [TAG.FILELANGS, strs(entries.map(() => ''))],
    [TAG.DIRINDEXES, int32(dirIndexes)],
    [TAG.BASENAMES, strs(entries.map((e) => e.path.slice(e.path.lastIndexOf('/') + 1)))],
    [TAG.DIRNAMES, strs(dirs)],
    [TAG.FILEDIGESTALGO, int32([DIGEST_SHA256])],
  ]);
}

/**
 * The maintainer scripts as scriptlets: postinst → %post, prerm → %preun, postrm → %postun. rpm runs
 * the OLD package's %preun/%postun after the NEW one's %post on an upgrade (dpkg runs prerm first), so
 * those two run only on a real removal ($1 = 0); otherwise an upgrade would stop the service the new
 * version just restarted.
 */
function scriptTags(tree: PackageTree): Map<number, TagValue> {
  const s = tree.scripts;
  const tags = new Map<number, TagValue>();
  const onErase = (body: string) => `if [ "$1" = 0 ]; then\n${body.trimEnd()}\nfi\n`;
  if (s.postinst) tags.set(TAG.POSTIN, str(`set -e\n${s.postinst.trimEnd()}\n`)).set(TAG.POSTINPROG, str('/bin/sh'));
  if (s.prerm) tags.set(TAG.PREUN, str(`set -e\n${onErase(s.prerm)}`)).set(TAG.PREUNPROG, str('/bin/sh'));
  if (s.postrm) tags.set(TAG.POSTUN, str(`set -e\n${onErase(s.postrm)}`)).set(TAG.POSTUNPROG, str('/bin/sh'));
  return tags;
}

const RPMLIB_FEATURES: [string, string][] = [
  ['rpmlib(CompressedFileNames)', '3.0.4-1'], // BASENAMES/DIRNAMES/DIRINDEXES
  ['rpmlib(FileDigests)', '4.6.0-1'], // FILEDIGESTALGO (sha256)
  ['rpmlib(PayloadFilesHavePrefix)', '4.0-1'], // "./" names in the cpio
];

const OPS: Record<string, number> = { '<': SENSE.LESS, '<=': SENSE.LESS | SENSE.EQUAL, '=': SENSE.EQUAL, '==': SENSE.EQUAL, '>=': SENSE.GREATER | SENSE.EQUAL, '>': SENSE.GREATER };

/** meta.requires (`python3.11`, `libpq >= 13`), /bin/sh for the scriptlets, then the rpmlib() features used. */
function requireTags(tree: PackageTree): Map<number, TagValue> {
  const reqs: { name: string; flags: number; version: string }[] = [];
  for (const r of tree.meta.requires) {
    const m = /^\s*(\S+)\s*(?:(<=|>=|==|=|<|>)\s*(\S+))?\s*$/.exec(r);
    if (!m) throw new ConfigError(`package ${tree.meta.name}: rpm requirement "${r}" is not "name" or "name OP version"`, { hint: 'e.g. "libpq >= 13"' });
    reqs.push({ name: m[1]!, flags: m[2] ? OPS[m[2]]! : 0, version: m[3] ?? '' });
  }
  const s = tree.scripts;
  const shFlags = (s.postinst ? SENSE.POST : 0) | (s.prerm ? SENSE.PREUN : 0) | (s.postrm ? SENSE.POSTUN : 0);
  if (shFlags) reqs.push({ name: '/bin/sh', flags: SENSE.INTERP | shFlags, version: '' });
  // Sorted, as rpmbuild does, so that the order of the config's list does not matter.
  reqs.sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
  for (const [name, version] of RPMLIB_FEATURES) {
    reqs.push({ name, flags: SENSE.RPMLIB | SENSE.LESS | SENSE.EQUAL, version });
  }
  return new Map<number, TagValue>([
    [TAG.REQUIREFLAGS, int32(reqs.map((r) => r.flags))],
    [TAG.REQUIRENAME, strs(reqs.map((r) => r.name))],
    [TAG.REQUIREVERSION, strs(reqs.map((r) => r.version))],
  ]);
}
