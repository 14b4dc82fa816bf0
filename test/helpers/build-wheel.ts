/**
 * Builds real, pip-installable wheels for tests in pure TypeScript (no Python needed), and broken ones
 * for the validation tests. Output is deterministic: same options, same bytes.
 */
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32, deflateRawSync } from 'node:zlib';

export type WheelCorruption = 'record-hash' | 'no-record' | 'metadata-version' | 'metadata-name' | 'not-zip' | 'unlisted-file';

export interface BuildWheelOptions {
  name: string;
  version: string;
  /** Package files by archive path; default `<name>/__init__.py` setting `__version__`. */
  files?: Record<string, string>;
  requiresDist?: string[];
  /** The wheel's `Requires-Python` header, e.g. '>=3.8'. */
  requiresPython?: string;
  /** console_scripts: command name → `module:function` */
  entryPoints?: Record<string, string>;
  /** `py-abi-plat`, default `py3-none-any`. */
  tag?: string;
  corrupt?: WheelCorruption;
}

/** Writes the wheel into `outDir` (created if needed) and returns its path. */
export async function buildWheel(outDir: string, options: BuildWheelOptions): Promise<string> {
  const { name, version, tag = 'py3-none-any', corrupt } = options;
  // PEP 427 escaping of the distribution part of the filename and the .dist-info directory.
  const dist = name.replace(/[^\w\d.]+/g, '_');
  const distInfo = `${dist}-${version}.dist-info`;
  const importName = dist.toLowerCase().replace(/\./g, '_');
  const files = options.files ?? { [`${importName}/__init__.py`]: `__version__ = "${version}"\n` };

  const metadata = [
    'Metadata-Version: 2.1',
    `Name: ${corrupt === 'metadata-name' ? `${name}-impostor` : name}`,
    `Version: ${corrupt === 'metadata-version' ? `${version}.post99` : version}`,
    ...(options.requiresPython ? [`Requires-Python: ${options.requiresPython}`] : []),
    ...(options.requiresDist ?? []).map((r) => `Requires-Dist: ${r}`),
    '',
    `The ${name} test package.`,
    '',
  ].join('\n');
  const [py, abi, plat] = tag.split('-') as [string, string, string];
  const tagLines = py.split('.').flatMap((p) => abi.split('.').flatMap((a) => plat.split('.').map((pl) => `Tag: ${p}-${a}-${pl}`)));
  const purelib = abi === 'none' && plat === 'any';
  const wheelFile = ['Wheel-Version: 1.0', 'Generator: vdeploy-test-build-wheel', `Root-Is-Purelib: ${purelib}`, ...tagLines, ''].join('\n');

  const members: Array<[string, Buffer]> = Object.entries(files).map(([path, text]) => [path, Buffer.from(text)]);
  if (options.entryPoints) {
    const scripts = Object.entries(options.entryPoints).map(([cmd, target]) => `${cmd} = ${target}`);
    members.push([`${distInfo}/entry_points.txt`, Buffer.from(['[console_scripts]', ...scripts, ''].join('\n'))]);
  }
  members.push([`${distInfo}/METADATA`, Buffer.from(metadata)], [`${distInfo}/WHEEL`, Buffer.from(wheelFile)]);

  const record = members.map(([path, data]) => `${path},sha256=${createHash('sha256').update(data).digest('base64url')},${data.length}`);
  if (corrupt === 'record-hash') record[0] = record[0]!.replace(/sha256=[^,]+/, `sha256=${createHash('sha256').update('tampered').digest('base64url')}`);
  if (corrupt === 'unlisted-file') members.push([`${importName}/sneaky.py`, Buffer.from('print("not in RECORD")\n')]);
  if (corrupt !== 'no-record') members.push([`${distInfo}/RECORD`, Buffer.from([...record, `${distInfo}/RECORD,,`, ''].join('\n'))]);

  await mkdir(outDir, { recursive: true });
  const path = join(outDir, `${dist}-${version}-${tag}.whl`);
  if (corrupt === 'not-zip') await writeFile(path, `this is not a zip file but ${name} ${version}\n`);
  else await writeZip(path, members);
  return path;
}

/** A minimal deflate zip writer (no zip64, fixed 1980-01-01 timestamps so output is reproducible). */
export async function writeZip(path: string, members: ReadonlyArray<readonly [string, Buffer | string]>): Promise<void> {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const [name, content] of members) {
    const data = Buffer.from(content);
    const packed = deflateRawSync(data);
    const nameBytes = Buffer.from(name, 'utf8');
    const fields = { crc: crc32(data), csize: packed.length, usize: data.length, nlen: nameBytes.length };

    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    writeCommon(local, 4, fields);
    locals.push(local, nameBytes, packed);

    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE((3 << 8) | 20, 4); // made by: Unix, zip 2.0
    writeCommon(central, 6, fields);
    central.writeUInt32LE((0o100644 << 16) >>> 0, 38); // regular file, rw-r--r--
    central.writeUInt32LE(offset, 42);
    centrals.push(central, nameBytes);

    offset += local.length + nameBytes.length + packed.length;
  }
  const cdSize = centrals.reduce((n, b) => n + b.length, 0);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(members.length, 8);
  end.writeUInt16LE(members.length, 10);
  end.writeUInt32LE(cdSize, 12);
  end.writeUInt32LE(offset, 16);
  await writeFile(path, Buffer.concat([...locals, ...centrals, end]));
}

/** The part local and central headers share: version needed, flags, method, time, date, crc, sizes, name length. */
function writeCommon(buf: Buffer, at: number, f: { crc: number; csize: number; usize: number; nlen: number }): void {
  buf.writeUInt16LE(20, at); // version needed: 2.0 (deflate)
  buf.writeUInt16LE(0x0800, at + 2); // names are UTF-8
  buf.writeUInt16LE(8, at + 4); // deflate
  buf.writeUInt16LE(0, at + 6); // 00:00:00
  buf.writeUInt16LE((0 << 9) | (1 << 5) | 1, at + 8); // 1980-01-01
  buf.writeUInt32LE(f.crc, at + 10);
  buf.writeUInt32LE(f.csize, at + 14);
  buf.writeUInt32LE(f.usize, at + 18);
  buf.writeUInt16LE(f.nlen, at + 22);
}
