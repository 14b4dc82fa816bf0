/**
 * Runs Debian's `lintian` on a .deb and parses its tags (issue 19). The tags vdeploy's packages carry
 * by design are suppressed, each with its reason here and in docs/packages.md ("lintian"); any other
 * error or warning fails the tests that use this.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

/** Tags every vdeploy .deb carries on purpose, with why (kept in step with docs/packages.md). */
export const ACCEPTED_LINTIAN_TAGS: Record<string, string> = {
  'dir-or-file-in-opt': 'the app installs under its own prefix in /opt, as an add-on package (FHS 3.13); Debian\'s own archive forbids that, a site package is what /opt is for',
  'no-copyright-file': 'a site package, not for Debian\'s archive; the .deb and .rpm install the same files, and the rpm has no /usr/share/doc convention to match',
  'no-changelog': 'the same: the release history lives in vdeploy\'s release log, not in /usr/share/doc/NAME/changelog.Debian.gz',
};

/**
 * Tags a package with a real venv adds, each by design (docs/packages.md "lintian"): pass
 * `[...Object.keys(ACCEPTED_LINTIAN_TAGS), ...Object.keys(VENV_LINTIAN_TAGS)]` for such a package.
 */
export const VENV_LINTIAN_TAGS: Record<string, string> = {
  'package-installs-python-pycache-dir': 'the venv\'s bytecode is compiled at build time for the final prefix, so no build path and no install-time compile; dpkg owns and removes it',
  'wrong-path-for-interpreter': 'the venv\'s scripts must run <prefix>/venv/bin/python, not /usr/bin/python3: that is what makes them use the venv',
  'unstripped-binary-or-object': 'extension modules ship as their wheels built them (their hashes are in the venv\'s RECORD files)',
  'missing-dependency-on-libc': 'extension modules link libc; the package depends on python3.X (which depends on libc6), and vdeploy runs no dpkg-shlibdeps on the controller',
  'script-not-executable': 'wheels ship some modules with a #! line but without the executable bit (requests/certs.py); kept as the wheel has them',
  'unusual-interpreter': 'the same modules name `python` in their #! line; they are imported, not run',
  'executable-not-elf-or-script': 'a wheel file with an executable bit and no #! line (certifi\'s tests); kept as the wheel has it',
};

/** Tags a package with a systemd service adds (docs/packages.md "lintian"). */
export const SERVICE_LINTIAN_TAGS: Record<string, string> = {
  'maintainer-script-calls-systemctl': 'the maintainer scripts are written once for the .deb and the .rpm; Debian\'s deb-systemd-helper/deb-systemd-invoke do not exist on RPM systems, so they call systemctl, only when systemd runs (/run/systemd/system)',
};

export interface LintianTag {
  severity: string;
  tag: string;
  detail: string;
}

/** The tags lintian reports for `deb` (errors, warnings, info, pedantic, experimental), accepted ones suppressed. */
export async function lintian(deb: string, accepted: string[] = Object.keys(ACCEPTED_LINTIAN_TAGS)): Promise<{ tags: LintianTag[]; output: string }> {
  const args = ['--tag-display-limit', '0', '--display-info', '--pedantic', '--display-experimental', '--fail-on', 'none'];
  if (accepted.length > 0) args.push('--suppress-tags', accepted.join(','));
  const { stdout, stderr } = await promisify(execFile)('lintian', [...args, deb], { maxBuffer: 64 * 1024 * 1024 });
  const tags: LintianTag[] = [];
  for (const line of stdout.split('\n')) {
    const m = /^([EWIPXOCNM]): [^:\s]+(?: [^:\s]+)?: (\S+)\s*(.*)$/.exec(line);
    if (m) tags.push({ severity: m[1]!, tag: m[2]!, detail: m[3]! });
  }
  return { tags, output: stdout + stderr };
}
