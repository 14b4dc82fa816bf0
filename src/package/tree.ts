/**
 * OS packages (issue 19, docs/packages.md): the types the parts share. The package command builds a
 * `PackageTree` (the files to install, with modes, plus metadata and maintainer scripts) once; the
 * .deb writer (deb.ts) and the .rpm writer (rpm.ts) each turn the same tree into their format, so
 * both packages install exactly the same files.
 */

/** One entry of the installed tree. Paths are absolute install paths (`/opt/myshop/venv/bin/python`). */
export type TreeEntry =
  | { kind: 'dir'; path: string; mode: number }
  | { kind: 'file'; path: string; mode: number; content: Buffer }
  | { kind: 'symlink'; path: string; target: string };

/** What a package is, beside its files. */
export interface PackageMeta {
  name: string;
  /** Upstream version, e.g. `1.4.2` (from --version). */
  version: string;
  /** Package release/iteration, e.g. 1 (--iteration). */
  iteration: number;
  /** Debian architecture name: `amd64`, `arm64`, or `all` (only when every wheel is pure). The rpm writer maps it (x86_64, aarch64, noarch). */
  architecture: string;
  maintainer: string;
  /** One line, then optional longer text. */
  summary: string;
  description: string;
  /** Debian dependency expressions as written in a control file (`python3 (>= 3.11)`, `libpq5`). */
  depends: string[];
  /** RPM `Requires:` in RPM syntax (`python3.11`, `libpq`). */
  requires: string[];
  homepage?: string;
  license?: string;
}

/** Shell scripts run by the package manager (sh, `set -e`), written once for both formats. */
export interface MaintainerScripts {
  /** After install/upgrade: e.g. `systemctl daemon-reload; systemctl enable --now myshop.service || true`. */
  postinst?: string;
  /** Before removal/upgrade: stop the service. */
  prerm?: string;
  /** After removal (purge: remove leftovers). */
  postrm?: string;
}

export interface PackageTree {
  meta: PackageMeta;
  /** Every entry, parents before children; writers sort by path for reproducibility. */
  entries: TreeEntry[];
  /** Absolute paths of config files: .deb `conffiles`, .rpm `%config(noreplace)`. */
  conffiles: string[];
  scripts: MaintainerScripts;
  /** Seconds since the epoch for every mtime and build time (SOURCE_DATE_EPOCH). */
  mtime: number;
}
