/** Commands of a package's venv build, run over a Connection (here, or on the buildOn host). */
import { lastLines, VdeployError } from '../errors.js';
import type { Connection } from '../remote/connection.js';

/**
 * Bytecode recorded for the final path (-s/-p), its validity checked by source hash, not mtime: the
 * package's files all get SOURCE_DATE_EPOCH as mtime, and an unchecked-hash .pyc stays valid.
 */
export async function compile(local: Connection, python: string, dir: string, final: string, signal?: AbortSignal): Promise<void> {
  await run(local, [python, '-I', '-m', 'compileall', '-q', '-f', '-j', '0', '--invalidation-mode', 'unchecked-hash', '-s', dir, '-p', final, dir], 'compiling bytecode', signal);
}

export async function run(local: Connection, argv: string[], what: string, signal?: AbortSignal): Promise<void> {
  const r = await local.exec(argv, { nothrow: true, env: { PIP_DISABLE_PIP_VERSION_CHECK: '1', PYTHONDONTWRITEBYTECODE: '1' }, ...(signal ? { signal } : {}) });
  if (r.exitCode !== 0) {
    throw new VdeployError(`${what} failed (${r.signal ?? `exit ${r.exitCode}`}): ${lastLines(`${r.stderr}\n${r.stdout}`, 4)}`, { hint: 'see the error above; the staging directory was removed' });
  }
}
