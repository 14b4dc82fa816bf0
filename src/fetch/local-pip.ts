/** The local Python whose pip `vdeploy fetch` runs: found, asked for its pip's version, checked. */
import { ConfigError, lastLines } from '../errors.js';
import type { Connection } from '../remote/connection.js';
import { MIN_PIP, MIN_PIP_REPORT, PIP_VERSION_SCRIPT, pipAtLeast } from './pip-command.js';

export interface LocalPip {
  /** As given (`--python`, else `python3` looked up on PATH). */
  python: string;
  pythonVersion: string;
  pipVersion: string;
}

const NEEDS = 'vdeploy fetch needs a Python with pip on this machine (for this command only; hosts need none)';

/** ConfigError (exit 2) when there is no such Python, it has no pip, or its pip is too old for what is asked. */
export async function checkLocalPip(local: Connection, python: string, options: { dryRun: boolean; signal?: AbortSignal }): Promise<LocalPip> {
  const result = await local.exec([python, '-c', PIP_VERSION_SCRIPT], { nothrow: true, timeoutMs: 60_000, ...(options.signal ? { signal: options.signal } : {}) });
  const given = python === 'python3' ? 'no `python3` on PATH' : `--python ${python}: no such program`;
  if (result.exitCode === 127 || result.exitCode === 126) {
    throw new ConfigError(`${result.exitCode === 126 ? `${python} cannot be run (permission denied)` : given}; ${NEEDS}`, {
      hint: 'install Python 3 with pip, or pass --python /path/to/python (a venv\'s bin/python will do)',
    });
  }
  let answer: { python?: unknown; pip?: unknown } | undefined;
  try {
    answer = result.exitCode === 0 ? (JSON.parse(result.stdout.trim().split('\n').pop() ?? '') as typeof answer) : undefined;
  } catch {
    answer = undefined;
  }
  if (answer === undefined || typeof answer.python !== 'string') {
    const why = lastLines(result.stderr, 2) || `it exited with ${result.exitCode}`;
    throw new ConfigError(`${python} did not answer as a Python 3 would (${why}); ${NEEDS}`, { hint: 'pass --python with a Python 3 interpreter' });
  }
  if (typeof answer.pip !== 'string') {
    throw new ConfigError(`${python} (Python ${answer.python}) has no pip; ${NEEDS}`, {
      hint: `install it (\`${python} -m ensurepip --upgrade\`, or your system's python3-pip), or pass --python with a Python that has pip`,
    });
  }
  const pip = { python, pythonVersion: answer.python, pipVersion: answer.pip };
  if (!pipAtLeast(pip.pipVersion, MIN_PIP)) {
    throw new ConfigError(`${python} has pip ${pip.pipVersion}; vdeploy fetch needs pip ${MIN_PIP.join('.')} or newer`, {
      hint: `upgrade it (\`${python} -m pip install --upgrade pip\`), or pass --python with a newer one`,
    });
  }
  if (options.dryRun && !pipAtLeast(pip.pipVersion, MIN_PIP_REPORT)) {
    throw new ConfigError(`--dry-run needs pip ${MIN_PIP_REPORT.join('.')} or newer (pip install --dry-run --report); ${python} has pip ${pip.pipVersion}`, {
      hint: `upgrade it (\`${python} -m pip install --upgrade pip\`), pass --python with a newer one, or fetch without --dry-run`,
    });
  }
  return pip;
}
