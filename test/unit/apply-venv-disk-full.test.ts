/** A full disk on the host is said as such, whichever command ran into it (issue 14). */
import { expect } from 'chai';
import type { ResolvedHost, ResolvedVenv } from '../../src/config/resolve-config.js';
import type { ApplyStep } from '../../src/deploy/apply-contract.js';
import { venvOutcome } from '../../src/deploy/apply-venv.js';

const host = { name: 'web1', user: 'deploy' } as unknown as ResolvedHost;
const venv = { id: 'deploy@web1:/srv/app/venv', path: '/srv/app/venv', user: 'deploy' } as unknown as ResolvedVenv;
type Line = Parameters<typeof venvOutcome>[2];

const failed = (steps: ApplyStep[], failedStep: string): Line =>
  ({ v: 1, venv: 0, exitCode: 0, ms: 1, output: { v: 1, outcome: 'failed', failedStep, steps } }) as Line;

describe('venvOutcome: a full disk', () => {
  it('ensurepip out of space under `python -m venv`: disk full, not the command line that hid it', () => {
    const tail = "Error: Command '[..., '-m', 'ensurepip']' returned non-zero exit status 1.\nensurepip: ERROR: Could not install packages due to an OSError: [Errno 28] No space left on device";
    const r = venvOutcome(venv, host, failed([{ name: 'create', ok: false, exitCode: 1, ms: 5, stderrTail: tail }], 'create'));
    expect(r).to.deep.include({
      outcome: 'failed',
      failedStep: 'create',
      message: 'deploy@web1:/srv/app/venv: disk full on web1 (Errno 28 No space left on device): free space at /srv/app/venv',
    });
    expect(r.hint).to.match(/^free space on the filesystem holding \/srv\/app\/venv on web1 \(df \/srv\/app\/venv\), then deploy again$/);
  });

  it('an apply script that died of it gets no PATH hint', () => {
    const line = { v: 1, venv: 0, exitCode: 1, ms: 1, output: null, stderrTail: "OSError: [Errno 28] No space left on device: '/srv/app/venv/.vdeploy/lock'" } as Line;
    const r = venvOutcome(venv, host, line);
    expect(r.message).to.equal("deploy@web1:/srv/app/venv: disk full on web1 (Errno 28 No space left on device: '/srv/app/venv/.vdeploy/lock'): free space at /srv/app/venv");
    expect(r.hint).not.to.match(/PATH/);
  });

  it('any other failure keeps its own message', () => {
    const r = venvOutcome(venv, host, failed([{ name: 'install', ok: false, exitCode: 1, ms: 5, stderrTail: 'ERROR: No matching distribution' }], 'install'));
    expect(r.message).to.equal('deploy@web1:/srv/app/venv: install failed (exit 1): ERROR: No matching distribution');
  });
});
