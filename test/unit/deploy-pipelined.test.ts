/**
 * deploy --yes with no barrier between hosts (issue 16): the reports of the parts applied one after
 * another (each host as soon as it was planned, the shipping venvs at the end) merge into one.
 */
import { expect } from 'chai';
import { mergeReports } from '../../src/deploy/deploy-pipelined.js';
import type { Plan, VenvPlan } from '../../src/deploy/plan.js';
import type { Report, VenvReport } from '../../src/deploy/report.js';

const target = (host: string) => ({ id: `u@${host}:/srv/app`, host, user: 'u', path: '/srv/app' });
const errorPlan = (host: string): VenvPlan => ({ ...target(host), status: 'error', stage: 'connect', message: `${host}: down` });
const plan: Plan = { venvs: ['h1', 'h2', 'h3'].map(errorPlan), hosts: [], prune: false, recovered: [] };
const venvReport = (host: string, outcome: VenvReport['outcome']): VenvReport => ({ ...target(host), outcome, changes: [], created: false, ms: 1, steps: [] });
const report = (over: Partial<Report>): Report => ({ venvs: [], hosts: [], ok: true, interrupted: false, bytesSent: { wheels: 0, artifacts: 0 }, ...over });

describe('mergeReports (deploy --yes in parts)', () => {
  it('puts the venvs in plan order, hosts by name, and sums the bytes sent', () => {
    const merged = mergeReports(
      plan,
      [
        report({ venvs: [venvReport('h3', 'deployed')], hosts: [{ name: 'h3', pushed: ['a.whl'] }], bytesSent: { wheels: 10, artifacts: 0 } }),
        report({ venvs: [venvReport('h1', 'deployed')], hosts: [{ name: 'h1', pushed: [] }], bytesSent: { wheels: 5, artifacts: 7 } }),
        report({ venvs: [venvReport('h2', 'unchanged')], bytesSent: { wheels: 0, artifacts: 100 } }),
      ],
      false,
    );
    expect(merged.venvs.map((v) => v.host)).to.deep.equal(['h1', 'h2', 'h3']);
    expect(merged.hosts.map((h) => h.name)).to.deep.equal(['h1', 'h3']);
    expect(merged.bytesSent).to.deep.equal({ wheels: 15, artifacts: 107 });
    expect(merged).to.include({ ok: true, interrupted: false });
  });

  it('is not ok when any part failed, and interrupted when any part was (or the signal says so)', () => {
    const parts = [report({ venvs: [venvReport('h1', 'deployed')] }), report({ venvs: [venvReport('h2', 'failed')], ok: false })];
    expect(mergeReports(plan, parts, false)).to.include({ ok: false, interrupted: false });
    expect(mergeReports(plan, [report({ interrupted: true }), report({})], false).interrupted).to.equal(true);
    expect(mergeReports(plan, [report({})], true).interrupted).to.equal(true);
  });

  it('leaves out nothing and adds nothing: a venv no part reported is not made up', () => {
    const merged = mergeReports(plan, [report({ venvs: [venvReport('h2', 'deployed')] })], false);
    expect(merged.venvs.map((v) => v.id)).to.deep.equal(['u@h2:/srv/app']);
  });
});
