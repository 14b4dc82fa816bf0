/**
 * applyHost when the host's config files come with venvs that held for them (issue 17, host_apply.py):
 * the venvs' reloads and health checks run after the files, so more than one venv may fail in one
 * run. Each is restored, in venv order, before anything else; the files' answer stands.
 */
import { expect } from 'chai';
import { applyHost, type ApplyHostContext } from '../../src/deploy/apply-host.js';
import type { DeployEvent } from '../../src/deploy/events.js';
import type { FilesWork } from '../../src/deploy/files-work.js';
import type { HostPlan, VenvPlan } from '../../src/deploy/plan.js';
import type { VenvReport } from '../../src/deploy/report.js';
import type { ResolvedHost, ResolvedVenv } from '../../src/config/resolve-config.js';
import { fakeHostApply } from '../helpers/fake-host-apply.js';

type OkPlan = Extract<VenvPlan, { status: 'ok' }>;

/** The venvs hold for the files before their reloads. */
const fakeHost = (lines: Parameters<typeof fakeHostApply>[0]) => fakeHostApply(lines, '@vdeploy {"venv":0,"step":"reload","phase":"hold"}');

const host = { name: 'host1', address: '127.0.0.2', port: 22, user: 'root', roles: [], files: [], sudo: false, reload: 'echo host-reload' } as unknown as ResolvedHost;
// The restores' wheel is in the host's cache: nothing to upload.
const hostPlan: HostPlan = { name: 'host1', cacheDir: '/c', cachedWheels: ['app-1.0-py3-none-any.whl'] };
const work: FilesWork = {
  plan: { sudo: false, files: [{ dest: '/etc/a', source: 'etc/a', action: 'create', secret: false, sha256: 'a' }], orphans: [], prune: false, pending: [], handlers: [], daemonReload: false },
  input: { sudo: false, request: { op: 'apply', stateDir: null, host: 'host1', write: [], meta: [], remove: [], handlers: [], managed: {} } },
};
const filesOk = { ok: true, written: ['/etc/a'], meta: [], removed: [], failed: null, handlers: [], pending: [], stopped: false };
const pkg = (version: string) => ({ key: 'app', name: 'app', version, filename: `app-${version}-py3-none-any.whl`, sha256: version.repeat(8), requiredBy: [] });

function plan(path: string): OkPlan {
  return {
    id: `root@host1:${path}`, host: 'host1', user: 'root', path, status: 'ok', create: null,
    changes: [{ kind: 'upgrade', key: 'app', name: 'app', from: '1.0', to: '1.1' }], unchanged: [], unneeded: [],
    desired: [pkg('1.1')], installed: [pkg('1.0')], restore: { packages: [pkg('1.0')] },
  } as unknown as OkPlan;
}
const venvOf = (p: OkPlan) => ({ id: p.id, path: p.path, user: 'root', host, reload: 'supervisorctl restart app' }) as unknown as ResolvedVenv;
const failedAt = (venv: number, step: string) => ({
  venv, exitCode: 0, ms: 5,
  output: { v: 1, outcome: 'failed', failedStep: step, steps: [{ name: step, ok: false, exitCode: 1, ms: 1, stderrTail: `${step} said no` }] },
});

describe('applyHost: venvs that held for the files', () => {
  it('two venvs whose reload and health check failed after the files are both restored, in order; the host reload runs after', async () => {
    const plans = [plan('/srv/a'), plan('/srv/b'), plan('/srv/c')];
    const conn = fakeHost((request, n) => {
      if (n === 0) {
        return [
          { files: { v: 1, ...filesOk }, exitCode: 0, ms: 3 },
          failedAt(0, 'reload'),
          { venv: 1, exitCode: 0, ms: 5, output: { v: 1, outcome: 'deployed', failedStep: null, steps: [] } },
          failedAt(2, 'healthcheck'),
          { done: { started: 3, stoppedBy: 'halted' } },
        ];
      }
      if (request.venvs.length === 1) return [{ venv: 0, exitCode: 0, ms: 5, output: { v: 1, outcome: 'deployed', failedStep: null, steps: [] } }, { done: { started: 1, stoppedBy: null } }];
      return [{ reload: { ok: true, exitCode: 0, ms: 1, tail: '' } }, { done: { started: 0, stoppedBy: null } }];
    });
    const events: DeployEvent[] = [];
    let failures = 0;
    const ctx: ApplyHostContext = {
      settings: { migrate: 'auto', lockWaitSeconds: 0, autoRollback: true, repoDir: '/repo' },
      venvById: new Map(plans.map((p) => [p.id, venvOf(p)])),
      emit: (e) => events.push(e),
      signal: undefined,
      stopStarting: () => false,
      skipReason: () => 'not started',
      onFailure: () => failures++,
      base: (v, outcome) => ({ id: v.id, host: v.host, path: v.path, outcome, steps: [], ms: 0 }) as unknown as VenvReport,
    };
    const done = await applyHost(conn, host, hostPlan, plans, ctx, work);

    // The run with the files, a restore of a, a restore of c (in that order), then the host's reload alone.
    expect(conn.requests.map((r) => [r.venvs.map((v: { input: { venv: string } }) => v.input.venv), r.files ? 'files' : null, r.reload])).to.deep.equal([
      [['/srv/a', '/srv/b', '/srv/c'], 'files', 'echo host-reload'],
      [['/srv/a'], null, null],
      [['/srv/c'], null, null],
      [[], null, 'echo host-reload'],
    ]);
    expect(conn.requests[1]!.venvs[0].input.history).to.include({ action: 'auto-rollback', reason: 'reload failed' });
    expect(conn.requests[2]!.venvs[0].input.history).to.include({ action: 'auto-rollback', reason: 'healthcheck failed' });
    expect(done.reports.map((r) => [r.outcome, r.failedStep])).to.deep.equal([['restored', 'reload'], ['deployed', undefined], ['restored', 'healthcheck']]);
    expect(done.host.files).to.include({ ok: true });
    expect(done.host.reload).to.include({ ok: true });
    expect(failures).to.equal(2);
    // b's venv:end comes with its line; a's and c's once each is restored.
    expect(events.filter((e) => e.kind === 'venv:end').map((e) => (e as { venv: string }).venv)).to.deep.equal([plans[1]!.id, plans[0]!.id, plans[2]!.id]);
    expect(events.some((e) => e.kind === 'venv:hold')).to.equal(true);
  });
});
