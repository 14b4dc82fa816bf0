/**
 * The local Python `vdeploy build` runs pip with: `--python PATH`, else `python3` on PATH. Only this
 * command needs one; when it is missing, or has no pip, the error says so and how to fix it.
 */
import { ConfigError, lastLines } from '../errors.js';
import type { Connection } from '../remote/connection.js';

export interface LocalPython {
  /** As given (`python3`, or the --python path). */
  command: string;
  /** pip's version, e.g. `23.2.1`. */
  pipVersion: string;
  /** The interpreter's version as pip reports it, e.g. `3.11`. */
  pythonVersion: string;
}

/** `pip 23.2.1 from /usr/lib/python3/dist-packages/pip (python 3.11)` */
const PIP_VERSION_RE = /^pip (\S+) from .* \(python (\S+)\)\s*$/m;

export async function findLocalPython(local: Connection, python: string | undefined, signal?: AbortSignal): Promise<LocalPython> {
  const command = python ?? 'python3';
  const what = python ? `--python ${python}` : 'python3 (on PATH)';
  const result = await local.exec([command, '-m', 'pip', '--version'], { nothrow: true, env: { PIP_DISABLE_PIP_VERSION_CHECK: '1' }, ...(signal ? { signal } : {}) });
  if (result.exitCode === 127 || result.exitCode === 126) {
    throw new ConfigError(`${what}: ${result.exitCode === 127 ? 'not found' : 'not executable'}; vdeploy build needs a local Python with pip`, {
      hint: python ? 'pass --python with the path of a Python 3 interpreter that has pip' : 'install Python 3 with pip (e.g. apt install python3-pip), or pass --python PATH',
    });
  }
  const m = PIP_VERSION_RE.exec(result.stdout);
  if (result.exitCode !== 0 || !m) {
    const why = lastLines(`${result.stderr}\n${result.stdout}`, 1) || `exit ${result.exitCode ?? result.signal}`;
    throw new ConfigError(`${what} has no usable pip (${why}); vdeploy build runs \`pip wheel\``, {
      hint: `install pip for it (\`${command} -m ensurepip --upgrade\`, or your system's python3-pip package), or pass --python with an interpreter that has pip`,
    });
  }
  return { command, pipVersion: m[1]!, pythonVersion: m[2]! };
}
