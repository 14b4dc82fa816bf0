/**
 * Working on a venv owned by another user than the SSH login user: commands are prefixed with
 * `sudo -n -u OWNER` (-n: fail at once instead of prompting for a password nobody can type), and
 * when sudo itself refuses, the error says where, for whom, and which sudoers rule would allow it.
 */

/** The argv prefix that runs a command as `owner`, never prompting. */
export function sudoArgv(owner: string): string[] {
  return ['sudo', '-n', '-u', owner];
}

export interface SudoContext {
  /** The host's name (as the deployfile calls it) or address. */
  host: string;
  /** The SSH login user, who runs sudo. */
  login: string;
  /** The venv's owner, whom sudo should run the command as. */
  owner: string;
  /** What was to run, for the message: "the apply script", "the relocate script". */
  what: string;
  /** The other way out, for the hint (default: make the login user the venv's user). */
  instead?: string;
}

/**
 * When a command started under sudoArgv() failed because of sudo itself (no rule, a password wanted,
 * an unknown user, no sudo at all): the message and hint to report. Undefined when sudo is not to
 * blame (its own messages start with "sudo: "; a missing sudo is the shell's or Python's complaint).
 */
export function sudoRefusal(stderr: string, ctx: SudoContext): { message: string; hint: string } | undefined {
  const lines = stderr.split('\n').map((l) => l.trim());
  const rule = `\`${ctx.login} ALL=(${ctx.owner}) NOPASSWD: ALL\``;
  if (lines.some((l) => /\bsudo: (command )?not found$|No such file or directory: '?sudo'?$/.test(l))) {
    return {
      message: `sudo is not installed on ${ctx.host}, and ${ctx.login} needs it to run ${ctx.what} as ${ctx.owner}`,
      hint: `install sudo on ${ctx.host} and let ${ctx.login} run commands as ${ctx.owner} without a password: ${rule} in /etc/sudoers.d/vdeploy (edit it with visudo -f)`,
    };
  }
  const said = lines.find((l) => l.startsWith('sudo: '));
  if (!said) return undefined;
  return {
    message: `sudo refused to run ${ctx.what} as ${ctx.owner} for ${ctx.login} on ${ctx.host}: ${said}`,
    hint: `on ${ctx.host}, let ${ctx.login} run commands as ${ctx.owner} without a password: add ${rule} to /etc/sudoers.d/vdeploy (edit it with visudo -f), or ${ctx.instead ?? `make ${ctx.login} the venv's user`}`,
  };
}
