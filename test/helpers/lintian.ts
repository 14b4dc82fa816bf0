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
