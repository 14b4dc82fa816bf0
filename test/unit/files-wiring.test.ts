/**
 * Config files (issue 17) in plan, deploy and status: which hosts are selected for their files, and
 * how the host reports, summary lines, events and status lines read.
 */
import { expect } from 'chai';
import { stripVTControlCharacters } from 'node:util';
import { parseConfig } from '../../src/config/load-deployfile.js';
import { ConfigError } from '../../src/errors.js';
import { hostHasFiles, selectTargets } from '../../src/selectors/select-hosts.js';
import { filesReport, notApplied, type FilesWork } from '../../src/deploy/files-work.js';
import type { Report } from '../../src/deploy/report.js';
import type { Plan } from '../../src/deploy/plan.js';
import { everything } from '../../src/deploy/deploy-pipelined.js';
import type { FilesPlan } from '../../src/files/types.js';
import { renderFilesSummary } from '../../src/cli/render-files-report.js';
import { formatEvent } from '../../src/cli/render-events.js';
import { hostStatuses } from '../../src/status/fleet-status.js';
import { renderFilesStatus, renderStatus } from '../../src/cli/commands/status.js';

const plain = (lines: string[]) => lines.map((l) => stripVTControlCharacters(l));

describe('selectTargets (hosts selected for their files)', () => {
  const config = parseConfig(
    {
      hosts: [
        { name: 'web1', address: '10.0.0.1', user: 'deploy', roles: ['web'] },
        { name: 'web2', user: 'deploy', roles: ['web'] },
        { name: 'db1', user: 'root', roles: ['db'] },
        { name: 'lb1', user: 'root', roles: ['lb'], files: [{ src: 'etc/haproxy.cfg', dest: '/etc/haproxy/haproxy.cfg' }] },
      ],
      venvs: [{ host: 'web1', user: 'app', path: '/srv/app/venv' }],
      files: [{ src: 'etc/', dest: '/etc/', roles: ['web'] }],
    },
    '/p/deployfile.ts',
  );
  const select = (selectors: string[], roles: string[] = []) => {
    const t = selectTargets(config, { selectors, roles, hasFiles: (h) => hostHasFiles(config, h) });
    return { venvs: t.venvs.map((v) => v.id), hosts: t.hosts.map((h) => h.name) };
  };

  it('knows which hosts have files: their own entries, or a top-level entry naming them or their role', () => {
    expect(config.hosts.filter((h) => hostHasFiles(config, h)).map((h) => h.name)).to.deep.equal(['web1', 'web2', 'lb1']);
  });
  const table: Array<[string[], string[], { venvs: string[]; hosts: string[] }]> = [
    [[], [], { venvs: ['app@web1:/srv/app/venv'], hosts: ['web1', 'web2', 'lb1'] }],
    [['web2'], [], { venvs: [], hosts: ['web2'] }],
    [['deploy@web2'], [], { venvs: [], hosts: ['web2'] }],
    [['lb1', 'web1'], [], { venvs: ['app@web1:/srv/app/venv'], hosts: ['web1', 'lb1'] }],
    // A venv selector plans its host (and so the host's files), not the others.
    [['web1:/srv/app/venv'], [], { venvs: ['app@web1:/srv/app/venv'], hosts: ['web1'] }],
    [['app@'], [], { venvs: ['app@web1:/srv/app/venv'], hosts: ['web1'] }],
    [[], ['web'], { venvs: ['app@web1:/srv/app/venv'], hosts: ['web1', 'web2'] }],
    [[], ['lb'], { venvs: [], hosts: ['lb1'] }],
  ];
  for (const [selectors, roles, expected] of table) {
    it(`selects ${JSON.stringify(selectors)} roles=${JSON.stringify(roles)}`, () => {
      expect(select(selectors, roles)).to.deep.equal(expected);
    });
  }
  it('still refuses a selector or role that matches nothing, naming what exists', () => {
    expect(() => select(['web9'])).to.throw(ConfigError, /^selector "web9" matches no venv and no host with files$/);
    // db1 has no files and no venv: nothing to do there is an error, not a silent success.
    expect(() => select(['db1'])).to.throw(ConfigError, /selector "db1" matches no venv and no host with files/);
    expect(() => select([], ['cache'])).to.throw(ConfigError, /role "cache" matches no host/);
    expect(() => select([], ['db'])).to.throw(ConfigError, /match no venv and no host with files together/);
  });
  it('takes a deployfile with files and no venvs', () => {
    const filesOnly = parseConfig({ hosts: [{ name: 'h1' }, { name: 'h2' }], files: [{ src: 'etc/app.conf', dest: '/etc/app.conf', hosts: ['h2'] }] }, '/p/deployfile.ts');
    const t = selectTargets(filesOnly, { hasFiles: (h) => hostHasFiles(filesOnly, h) });
    expect(t.venvs).to.deep.equal([]);
    expect(t.hosts.map((h) => h.name)).to.deep.equal(['h2']);
  });
  it('keeps the old message when the deployfile has no files', () => {
    const noFiles = parseConfig({ hosts: [{ name: 'h1' }], venvs: [{ host: 'h1', path: '/srv/v' }] }, '/p/deployfile.ts');
    expect(() => selectTargets(noFiles, { selectors: ['h9'], hasFiles: () => false })).to.throw(ConfigError, /^selector "h9" matches no venv$/);
    const empty = parseConfig({ hosts: [{ name: 'h1' }] }, '/p/deployfile.ts');
    expect(() => selectTargets(empty, { hasFiles: () => false })).to.throw(ConfigError, /the deployfile declares no venvs and no files/);
  });
});

const filesPlan = (over: Partial<FilesPlan> = {}): FilesPlan => ({
  sudo: false,
  files: [
    { dest: '/etc/app/a.conf', source: 'etc/app/a.conf', action: 'create', secret: false, sha256: 'a' },
    { dest: '/etc/app/b.conf', source: 'etc/app/b.conf.j2', action: 'update', secret: false, sha256: 'b' },
    { dest: '/etc/app/c.conf', source: 'etc/app/c.conf', action: 'unchanged', secret: false, sha256: 'c' },
  ],
  orphans: [],
  prune: false,
  pending: [],
  handlers: ['supervisorctl update'],
  daemonReload: false,
  ...over,
});
const work = (plan = filesPlan()): FilesWork => ({ plan, input: { sudo: false, request: { op: 'apply', stateDir: null, host: 'host1', write: [], meta: [], remove: [], handlers: plan.handlers, managed: {} } } });
const report = (hosts: Report['hosts']): Report => ({ venvs: [], hosts, ok: true, interrupted: false, bytesSent: { wheels: 0, artifacts: 0 } });

describe('files report and summary', () => {
  const ok = { ok: true, written: ['/etc/app/a.conf', '/etc/app/b.conf'], meta: [], removed: [], failed: null, handlers: [{ command: 'supervisorctl update', ok: true, exitCode: 0, ms: 40, tail: '' }], pending: [], stopped: false };

  it('summarizes a host whose files were applied', () => {
    const r = filesReport('host1', work(), { files: ok, exitCode: 0, ms: 120 });
    expect(r).to.include({ ok: true, unchanged: 1 });
    expect(plain(renderFilesSummary(report([{ name: 'host1', pushed: [], files: r }])))).to.deep.equal(['host1: files 2 written, 1 unchanged; handlers ran: supervisorctl update']);
  });
  it('names the file, the stage and the validator output when validate fails', () => {
    const failed = { ...ok, ok: false, written: [], handlers: [], failed: { path: '/etc/app/b.conf', stage: 'validate' as const, message: 'exited with 1', output: 'Expecting value: line 1 column 1 (char 0)\n' } };
    const r = filesReport('host1', work(), { files: failed, exitCode: 1, ms: 80 });
    expect(r.ok).to.equal(false);
    expect(r.message).to.equal('host1: /etc/app/b.conf: validate failed: exited with 1: Expecting value: line 1 column 1 (char 0)');
    expect(plain(renderFilesSummary(report([{ name: 'host1', pushed: [], files: r }])))).to.deep.equal([
      '✗ host1: /etc/app/b.conf: validate failed: exited with 1: Expecting value: line 1 column 1 (char 0)',
      '    Expecting value: line 1 column 1 (char 0)',
    ]);
  });
  it('says which handlers stay pending after a failed handler', () => {
    const failed = {
      ...ok,
      ok: false,
      handlers: [{ command: 'supervisorctl update', ok: false, exitCode: 2, ms: 30, tail: 'error: no such process' }],
      failed: { stage: 'handler' as const, message: '`supervisorctl update` exited with 2' },
      pending: ['supervisorctl update'],
    };
    const lines = plain(renderFilesSummary(report([{ name: 'host1', pushed: [], files: filesReport('host1', work(), { files: failed, exitCode: 1, ms: 80 }) }])));
    expect(lines[0]).to.equal('✗ host1: handler failed: `supervisorctl update` exited with 2');
    expect(lines).to.include('  host1: files 2 written, 1 unchanged');
    expect(lines).to.include('    error: no such process');
    expect(lines.at(-1)).to.equal('  host1: 1 handler pending (the next deploy runs them): supervisorctl update');
  });
  it('says a Ctrl-C stopped the files before their handlers, which stay pending', () => {
    const stopped = { ...ok, ok: false, handlers: [], pending: ['supervisorctl update'], stopped: true };
    const r = filesReport('host1', work(), { files: stopped, exitCode: 1, ms: 80 });
    expect(r).to.include({ ok: false, stopped: true, message: 'host1: files written, then stopped (interrupted) before the handlers supervisorctl update: the next deploy runs them' });
  });
  it('reports files that never ran, and a script that gave no answer', () => {
    expect(notApplied(work(), 'host1: files not started: the deploy was interrupted')).to.include({ ok: false, message: 'host1: files not started: the deploy was interrupted' });
    const r = filesReport('host1', work(), { files: null, exitCode: 1, stderrTail: 'sudo: a password is required', ms: 5 });
    expect(r.ok).to.equal(false);
    expect(r.message).to.equal('host1: the files apply gave no answer: sudo: a password is required');
  });
  it('formats the files events as plain lines', () => {
    expect(formatEvent({ kind: 'files:start', host: 'host1' })).to.equal('host1: applying files');
    expect(stripVTControlCharacters(formatEvent({ kind: 'files:end', host: 'host1', ok: true, written: 2, handlers: 1, ms: 1500 })!)).to.match(/^host1: files ok, 2 written, 1 handler run \(1\.5 ?s\)$/);
  });
  it('--yes confirms every venv with changes and every host with file work', () => {
    const plan: Plan = {
      venvs: [],
      hosts: [
        { name: 'h1', cacheDir: '/c', cachedWheels: [], files: filesPlan() },
        { name: 'h2', cacheDir: '/c', cachedWheels: [], files: filesPlan({ files: [], handlers: [] }) },
        { name: 'h3', cacheDir: '/c', cachedWheels: [], files: filesPlan({ error: { message: 'h3: cannot read its files' } }) },
      ],
      prune: false,
      recovered: [],
    };
    expect([...everything(plan)]).to.deep.equal(['files:h1']);
  });
});

describe('files in vdeploy status', () => {
  const plan: Plan = {
    venvs: [],
    hosts: [
      {
        name: 'host1',
        cacheDir: '/c',
        cachedWheels: [],
        files: filesPlan({
          files: [
            { dest: '/etc/a', source: 'etc/a', action: 'update', secret: false, sha256: 'a' },
            { dest: '/etc/b', source: 'etc/b', action: 'metadata', secret: false, sha256: 'b', meta: { mode: ['0600', '0644'] } },
            { dest: '/etc/c', source: 'etc/c', action: 'create', secret: false, sha256: 'c' },
            { dest: '/etc/d', source: 'etc/d', action: 'unchanged', secret: false, sha256: 'd' },
          ],
          pending: ['supervisorctl update'],
          orphans: ['/etc/old'],
        }),
      },
      { name: 'host2', cacheDir: '/c', cachedWheels: [], files: filesPlan({ files: [{ dest: '/etc/e', source: 'etc/e', action: 'unchanged', secret: false, sha256: 'e' }], handlers: [] }) },
      // No files of its own, nothing left there: not shown.
      { name: 'host5', cacheDir: '/c', cachedWheels: [], files: filesPlan({ files: [], handlers: [] }) },
      { name: 'host3', cacheDir: '', cachedWheels: [], files: filesPlan({ files: [], error: { message: 'host3: connect failed: timed out' } }) },
      { name: 'host4', cacheDir: '/c', cachedWheels: [] },
    ],
    prune: false,
    recovered: [],
  };
  it('reads drift, pending handlers and orphans from the plan', () => {
    expect(hostStatuses(plan)).to.deep.equal([
      {
        host: 'host1',
        files: {
          drift: [
            { dest: '/etc/a', what: ['content'] },
            { dest: '/etc/b', what: ['mode'], meta: { mode: ['0600', '0644'] } },
            { dest: '/etc/c', what: ['missing'] },
          ],
          pending: ['supervisorctl update'],
          orphans: ['/etc/old'],
        },
      },
      { host: 'host2', files: { drift: [], pending: [], orphans: [] } },
      { host: 'host3', files: { drift: [], pending: [], orphans: [], error: 'host3: connect failed: timed out' } },
    ]);
  });
  it('shows them after the matrix, one line each', () => {
    expect(plain(renderFilesStatus(hostStatuses(plan)))).to.deep.equal([
      '',
      'files drift on host1: /etc/a (content), /etc/b (mode 0600 -> 0644), /etc/c (missing)',
      'handlers pending on host1: supervisorctl update (the next deploy runs them)',
      'files on host1 no longer in the repository: /etc/old (kept; deploy --prune-files removes them)',
      'files on host2: in sync',
      'files not read: host3: connect failed: timed out',
    ]);
  });
  it('shows no venv table for a deployfile of files only', () => {
    const lines = plain(renderStatus({ venvs: [], matrix: [], hosts: hostStatuses(plan).slice(1, 2), recovered: [] }, false, 80));
    expect(lines).to.deep.equal(['', 'files on host2: in sync']);
  });
});
