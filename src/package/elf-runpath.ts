/**
 * Rewrites an ELF file's DT_RUNPATH / DT_RPATH in place, as `chrpath` does: a CPython built with
 * `--enable-shared` (pyenv's builds) finds libpython through an absolute RUNPATH of its build
 * prefix; shipped elsewhere, it must look relative to itself (`$ORIGIN/../lib`). The new string must
 * not be longer than the old one (it overwrites it in the dynamic string table, padded with NULs).
 */

const DT_NULL = 0n;
const DT_RPATH = 15n;
const DT_RUNPATH = 29n;
const SHT_DYNAMIC = 6;

/** The run paths of an ELF64 little-endian file (undefined: not such a file). */
export function readRunpaths(elf: Buffer): Array<{ offset: number; value: string }> | undefined {
  const dyn = dynamicEntries(elf);
  if (!dyn) return undefined;
  return dyn.paths.map((p) => {
    const end = elf.indexOf(0, p);
    return { offset: p, value: elf.subarray(p, end).toString('latin1') };
  });
}

/**
 * Replaces each run path by `rewrite(old)` (undefined: keep). Returns the new bytes (a copy), or
 * throws when a new value is longer than the old.
 */
export function rewriteRunpaths(elf: Buffer, rewrite: (old: string) => string | undefined): Buffer {
  const paths = readRunpaths(elf);
  if (!paths) return elf;
  const out = Buffer.from(elf);
  for (const { offset, value } of paths) {
    const next = rewrite(value);
    if (next === undefined || next === value) continue;
    if (next.length > value.length) throw new Error(`the new run path ${next} is longer than the old ${value}`);
    out.fill(0, offset, offset + value.length);
    out.write(next, offset, 'latin1');
  }
  return out;
}

/** File offsets of the RUNPATH/RPATH strings, found through the section headers. */
function dynamicEntries(elf: Buffer): { paths: number[] } | undefined {
  // \x7fELF, class 2 (64-bit), data 1 (little-endian)
  if (elf.length < 64 || elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2 || elf[5] !== 1) return undefined;
  const shoff = Number(elf.readBigUInt64LE(0x28));
  const shentsize = elf.readUInt16LE(0x3a);
  const shnum = elf.readUInt16LE(0x3c);
  if (shoff === 0 || shoff + shnum * shentsize > elf.length) return undefined;
  const section = (i: number) => {
    const at = shoff + i * shentsize;
    return { type: elf.readUInt32LE(at + 4), offset: Number(elf.readBigUInt64LE(at + 0x18)), size: Number(elf.readBigUInt64LE(at + 0x20)), link: elf.readUInt32LE(at + 0x28) };
  };
  for (let i = 0; i < shnum; i++) {
    const s = section(i);
    if (s.type !== SHT_DYNAMIC) continue;
    const strtab = section(s.link);
    const paths: number[] = [];
    for (let at = s.offset; at + 16 <= s.offset + s.size; at += 16) {
      const tag = elf.readBigInt64LE(at);
      if (tag === DT_NULL) break;
      if (tag === DT_RPATH || tag === DT_RUNPATH) paths.push(strtab.offset + Number(elf.readBigUInt64LE(at + 8)));
    }
    return { paths };
  }
  return { paths: [] };
}
