/**
 * A host's config files through applyHost (issue 17), with a stand-in connection playing the host
 * apply script: the request carries the files, the `{"files": …}` line becomes the host report and
 * the files events, and a deploy stopped before the files leaves them not applied.
 */
import { expect } from 'chai';
import { applyHost, type ApplyHostContext } from '../../src/deploy/apply-host.js';
import type { DeployEvent } from '../../src/deploy/events.js';
import type { FilesWork } from '../../src/deploy/files-work.js';
import type { HostPlan } from '../../src/deploy/plan.js';
import type { ResolvedHost } from '../../src/config/resolve-config.js';
import { fakeHostApply } from '../helpers/fake-host-apply.js';

/** The script says the files started. */
const fakeHost = (lines: Parameters<typeof fakeHostApply>[0]) => fakeHostApply(lines, '@vdeploy {"files":"start"}');

const host = { name: 'host1', address: '127.0.0.2', port: 22, user: 'root', roles: [], files: [], sudo: false } as unknown as ResolvedHost;
const hostPlan: HostPlan = { name: 'host1', cacheDir: '/c', cachedWheels: [] };
const work: FilesWork = {
  plan: {
    sudo: false,
    files: [
      { dest: '/etc/a', source: 'etc/a', action: 'create', secret: false, sha256: 'a' },
      { dest: '/etc/b', source: 'etc/b', action: 'unchanged', secret: false, sha256: 'b' },
    ],
    orphans: [],
    prune: false,
    pending: [],
    handlers: ['touch /tmp/x'],
    daemonReload: false,
  },
  input: { sudo: false, request: { op: 'apply', stateDir: null, host: 'host1', write: [], meta: [], remove: [], handlers: ['touch /tmp/x'], managed: {} } },
};
const result = (over: object = {}) => ({ ok: true, written: ['/etc/a'], meta: [], removed: [], failed: null, handlers: [{ command: 'touch /tmp/x', ok: true, exitCode: 0, ms: 3, tail: '' }], pending: [], stopped: false, ...over });

function context(events: DeployEvent[], stop = false): { ctx: ApplyHostContext; failures: () => number } {
  let failures = 0;
  const ctx: ApplyHostContext = {
    settings: { migrate: 'auto', lockWaitSeconds: 0, autoRollback: true, repoDir: '/repo' },
    venvById: new Map(),
    emit: (e) => events.push(e),
    signal: undefined,
    stopStarting: () => stop,
    skipReason: () => 'not started: the deploy was interrupted',
    onFailure: () => failures++,
    base: () => {
      throw new Error('no venvs here');
    },
  };
  return { ctx, failures: () => failures };
}

describe('applyHost: config files', () => {
  it('sends the files in the run and reports what the host did', async () => {
    const conn = fakeHost(() => [{ files: { v: 1, ...result() }, exitCode: 0, ms: 12 }, { done: { started: 0, stoppedBy: null } }]);
    const events: DeployEvent[] = [];
    const { ctx, failures } = context(events);
    const done = await applyHost(conn, host, hostPlan, [], ctx, work);
    expect(conn.requests).to.have.length(1);
    expect(conn.requests[0]!.files).to.deep.equal(work.input);
    expect(done.host.files).to.include({ ok: true, unchanged: 1 });
    expect(done.host.files!.written).to.deep.equal(['/etc/a']);
    expect(events.map((e) => e.kind)).to.deep.equal(['files:start', 'files:end']);
    expect(events[1]).to.include({ ok: true, written: 1, handlers: 1 });
    expect(failures()).to.equal(0);
  });

  it('a failed validate fails the host, naming the file and the validator output', async () => {
    const failed = result({ ok: false, written: [], handlers: [], failed: { path: '/etc/a', stage: 'validate', message: 'exited with 1', output: 'bad json\n' } });
    const conn = fakeHost(() => [{ files: { v: 1, ...failed }, exitCode: 1, ms: 12 }, { done: { started: 0, stoppedBy: null } }]);
    const events: DeployEvent[] = [];
    const { ctx, failures } = context(events);
    const done = await applyHost(conn, host, hostPlan, [], ctx, work);
    expect(done.host.files).to.include({ ok: false, message: 'host1: /etc/a: validate failed: exited with 1: bad json' });
    expect(events.at(-1)).to.include({ kind: 'files:end', ok: false });
    expect(failures()).to.equal(1);
  });

  it('nothing starts once the deploy is stopping: the files are reported not applied', async () => {
    const conn = fakeHost(() => []);
    const { ctx } = context([], true);
    const done = await applyHost(conn, host, hostPlan, [], ctx, work);
    expect(conn.requests).to.have.length(0);
    expect(done.host.files).to.include({ ok: false, message: 'host1: files not started: the deploy was interrupted' });
  });

  it('a run that leaves the reload to a later one does not take the files', async () => {
    const conn = fakeHost(() => [{ done: { started: 0, stoppedBy: null } }]);
    const { ctx } = context([]);
    const done = await applyHost(conn, host, hostPlan, [], { ...ctx, ship: { inputs: () => undefined, pushFor: [], uploads: [], send: async () => {}, deferReload: true } }, work);
    expect(conn.requests).to.have.length(0);
    expect(done.host.files).to.equal(undefined);
  });
});
