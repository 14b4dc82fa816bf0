/**
 * Synthetic package trees for the .deb tests (issue 19): files, directories, a symlink, an
 * executable, a conffile, maintainer scripts and a path too long for a plain ustar header — what a
 * real package has, without building a venv.
 */
import type { PackageMeta, PackageTree, TreeEntry } from '../../src/package/tree.js';

export const TEST_EPOCH = 1_700_000_000;

export function testMeta(overrides: Partial<PackageMeta> = {}): PackageMeta {
  return {
    name: 'vdeploy-test-pkg',
    version: '1.0',
    iteration: 1,
    architecture: 'all',
    maintainer: 'vdeploy tests <tests@example.com>',
    summary: 'Synthetic package for the vdeploy tests',
    description: 'A tree with files, a symlink, a config file and\nmaintainer scripts.\n\nSecond paragraph.',
    depends: [],
    requires: [],
    homepage: 'https://example.com/vdeploy',
    license: 'MIT',
    ...overrides,
  };
}

export interface SyntheticOptions {
  name?: string;
  version?: string;
  prefix?: string;
  /** Where the conffile goes (default /etc/NAME/app.conf). */
  conffile?: string;
  confText?: string;
  /** Text the `bin/hello` executable prints. */
  hello?: string;
  scripts?: PackageTree['scripts'];
  /** A 0750 directory and a 0640 file (lintian warns about those: the mode tests use them, the lintian tests not). */
  oddModes?: boolean;
}

/** A long directory chain: past ustar's 100+155-character name limit, so tar-stream writes a pax header. */
export const LONG_DIR = `lib/${'deep-directory-name-'.repeat(8)}/${'nested-'.repeat(25)}`;

export function syntheticTree(o: SyntheticOptions = {}): PackageTree {
  const name = o.name ?? 'vdeploy-test-pkg';
  const prefix = o.prefix ?? `/opt/${name}`;
  const conffile = o.conffile ?? `/etc/${name}/app.conf`;
  const text = (s: string) => Buffer.from(s, 'utf8');
  const entries: TreeEntry[] = [
    { kind: 'dir', path: prefix, mode: 0o755 },
    { kind: 'dir', path: `${prefix}/bin`, mode: 0o755 },
    { kind: 'file', path: `${prefix}/bin/hello`, mode: 0o755, content: text(`#!/bin/sh\necho '${o.hello ?? 'hello v1'}'\n`) },
    { kind: 'dir', path: `${prefix}/share`, mode: o.oddModes ? 0o750 : 0o755 },
    { kind: 'file', path: `${prefix}/share/data.txt`, mode: o.oddModes ? 0o640 : 0o644, content: text('data\n'.repeat(700)) },
    { kind: 'file', path: `${prefix}/share/empty`, mode: 0o644, content: Buffer.alloc(0) },
    { kind: 'symlink', path: `${prefix}/current`, target: 'bin/hello' },
    { kind: 'dir', path: `${prefix}/${LONG_DIR}`, mode: 0o755 },
    { kind: 'file', path: `${prefix}/${LONG_DIR}/long-file-name.txt`, mode: 0o644, content: text('long\n') },
    // A link target past ustar's 100 bytes (a GNU `K` entry) and a name that is not ASCII.
    { kind: 'symlink', path: `${prefix}/long-link`, target: `${LONG_DIR}/long-file-name.txt` },
    { kind: 'file', path: `${prefix}/share/café.txt`, mode: 0o644, content: text('crème\n') },
    { kind: 'file', path: conffile, mode: 0o644, content: text(o.confText ?? 'greeting=hello\n') },
  ];
  return {
    meta: testMeta({ name, version: o.version ?? '1.0' }),
    entries,
    conffiles: [conffile],
    scripts: o.scripts ?? { postinst: 'echo postinst "$@"\n', prerm: 'echo prerm "$@"\n', postrm: 'echo postrm "$@"\n' },
    mtime: TEST_EPOCH,
  };
}
