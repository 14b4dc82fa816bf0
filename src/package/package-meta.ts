/**
 * The pure parts of a package's metadata (docs/packages.md): its architecture from the wheels, its
 * dependencies from the interpreter choice, and the maintainer scripts of its service.
 */
import { ConfigError } from '../errors.js';
import { parseWheelFilename } from '../wheels/wheel-filename.js';
import type { MaintainerScripts } from './tree.js';

/** Machine names (wheel platform tags, platform.machine()) → Debian architectures. */
const DEBIAN_ARCH: Record<string, string> = {
  x86_64: 'amd64',
  amd64: 'amd64',
  aarch64: 'arm64',
  arm64: 'arm64',
  i686: 'i386',
  i386: 'i386',
  armv7l: 'armhf',
  ppc64le: 'ppc64el',
  s390x: 's390x',
  riscv64: 'riscv64',
};

/** The machine a platform tag is for (`manylinux_2_17_x86_64` → x86_64), undefined for `any`. */
export function tagMachine(tag: string): string | undefined {
  if (tag === 'any') return undefined;
  const m = /^(?:many|musl)?linux(?:_\d+_\d+|1|2010|2014)?_(.+)$/.exec(tag);
  if (!m) return tag;
  return m[1];
}

/**
 * `all` when every wheel is pure and no interpreter is shipped; else the one Debian architecture the
 * binary wheels (and a shipped interpreter's machine) are for. ConfigError for mixed or unknown ones.
 */
export function packageArchitecture(wheelFiles: readonly string[], shippedMachine?: string): string {
  const found = new Map<string, string>();
  const add = (machine: string, why: string) => {
    const arch = DEBIAN_ARCH[machine];
    if (arch === undefined) throw new ConfigError(`${why} is for ${machine}, which vdeploy package cannot name as a Debian architecture`, { hint: 'package wheels for x86_64 or aarch64 (or pure wheels)' });
    if (!found.has(arch)) found.set(arch, why);
  };
  if (shippedMachine !== undefined) add(shippedMachine, 'the shipped interpreter');
  for (const file of wheelFiles) {
    const machines = new Set(parseWheelFilename(file).platformTags.map(tagMachine).filter((m) => m !== undefined));
    for (const machine of machines) add(machine, file);
  }
  if (found.size === 0) return 'all';
  if (found.size > 1) {
    const list = [...found].map(([arch, why]) => `${arch} (${why})`).join(', ');
    throw new ConfigError(`the package would mix architectures: ${list}`, { hint: 'release wheels of one architecture for the venv (the one of the hosts that will install the package)' });
  }
  return [...found.keys()][0]!;
}

/** The python dependency of a venv on the system interpreter X.Y (none for a shipped one). */
export function pythonDepends(xy: string | undefined): { depends: string[]; requires: string[] } {
  if (xy === undefined) return { depends: [], requires: [] };
  const [major, minor] = xy.split('.').map(Number) as [number, number];
  return {
    // python3.X alone would do, but python3 (>= X, << X+1) says it is the distribution's default python3 that must match.
    depends: [`python${xy}`, `python3 (>= ${xy})`, `python3 (<< ${major}.${minor + 1})`],
    requires: [`python${xy}`],
  };
}

/** Maintainer scripts for a systemd unit: enabled and restarted after install, stopped before removal. */
export function serviceScripts(unit: string | undefined): MaintainerScripts {
  if (unit === undefined) return {};
  // Only where systemd runs (not in a container or chroot without it); a failed restart fails the install.
  const guard = 'if [ -d /run/systemd/system ]; then';
  return {
    postinst: [guard, '  systemctl daemon-reload', `  systemctl enable ${unit}`, `  systemctl restart ${unit}`, 'fi', ''].join('\n'),
    // $1: `remove` (dpkg) or 0 (rpm %preun) on removal, `upgrade` / 1 on an upgrade (then only stopped: postinst starts the new one).
    prerm: [guard, `  systemctl stop ${unit} || true`, `  case "$1" in remove|0) systemctl disable ${unit} || true ;; esac`, 'fi', ''].join('\n'),
    postrm: [guard, '  systemctl daemon-reload || true', 'fi', ''].join('\n'),
  };
}
