// The locked venv's message: whether the vdeploy named in the lock still runs (src/deploy/lock-holder.ts).
import { expect } from 'chai';
import { hostname } from 'node:os';
import { describeHolder, lockedMessage } from '../../src/deploy/lock-holder.js';
import { processExists } from '../../src/process-exists.js';

describe('lock holder', () => {
  const here = { user: 'me', host: hostname(), pid: 4711, startedAt: '2026-01-01T00:00:00.000Z' };

  it('a holder on this machine whose pid is gone: its vdeploy ended, its apply still runs on the host', () => {
    const holder = describeHolder(here, () => false);
    expect(holder).to.deep.equal({ ...here, localProcess: 'gone' });
    const { message, hint } = lockedMessage('me@web1:/srv/v', holder);
    expect(message).to.equal(
      `me@web1:/srv/v: an apply started by a vdeploy that is no longer running (me@${hostname()}, pid 4711, since 2026-01-01T00:00:00.000Z) still holds the lock: that vdeploy was killed or lost its connection, and its apply goes on to the end on the host`,
    );
    expect(hint).to.match(/--lock-wait SECONDS.*release_log/);
  });

  it('a holder still running, or on another machine, is "another deploy"', () => {
    expect(describeHolder(here, () => true).localProcess).to.equal('running');
    const elsewhere = describeHolder({ ...here, host: 'not-this-machine.invalid' }, () => false);
    expect(elsewhere.localProcess).to.equal('unknown');
    expect(lockedMessage('v', elsewhere).message).to.equal('v: another deploy holds the lock (me@not-this-machine.invalid, pid 4711, since 2026-01-01T00:00:00.000Z)');
    expect(describeHolder({ raw: 'garbage' }).localProcess).to.equal('unknown');
  });

  it('processExists: this process is, a pid past the kernel limit is not', () => {
    expect(processExists(process.pid)).to.equal(true);
    expect(processExists(2 ** 30)).to.equal(false);
  });
});
