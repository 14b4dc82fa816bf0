// Which history entries release_log lacks (src/deploy/reconcile-log.ts), table-tested without SSH.
import { expect } from 'chai';
import { readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { findUnrecorded, recordUnrecorded, type VenvWithHistory } from '../../src/deploy/reconcile-log.js';
import { parseHistory } from '../../src/history/history-entry.js';
import { parseReleaseLog } from '../../src/wheels/release-log.js';
import { makeTempDir } from '../helpers/cli.js';

const W1 = 'app-1.0-py3-none-any.whl';
const W2 = 'app-2.0-py3-none-any.whl';
const LIB = 'lib-1.0-py3-none-any.whl';
const released = `release: app==1.0 ${W1} at 2026-01-01T00:00:00.000Z\nrelease: lib==1.0 ${LIB} at 2026-01-01T00:00:00.000Z\nrelease: app==2.0 ${W2} at 2026-01-02T00:00:00.000Z\n`;

function entry(time: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    action: 'deploy', time, finishedAt: time.replace(/\.\d+Z$/, 'Z'), localUser: 'me', localHost: 'elsewhere', outcome: 'deployed',
    packages: [{ name: 'app', version: '2.0', wheel: W2, sha256: 'x' }, { name: 'lib', version: '1.0', wheel: LIB, sha256: 'y' }],
    changes: [{ kind: 'upgrade', key: 'app', name: 'app', from: '1.0', to: '2.0' }],
    ...over,
  };
}

function venv(...raw: Array<Record<string, unknown>>): VenvWithHistory {
  return { id: 'me@web1:/srv/v', host: 'web1', path: '/srv/v', history: parseHistory(raw) };
}

const find = (v: VenvWithHistory, log: string, alive: (pid: number) => boolean = () => false) => findUnrecorded([v], parseReleaseLog(log, 'release_log').entries, alive);

describe('release_log reconcile: history entries the log lacks', () => {
  const T = '2026-01-03T10:00:00.000Z';

  it('a deployed entry with no install line after its start is recovered, with the wheels it changed only', () => {
    expect(find(venv(entry(T)), released)).to.deep.equal([
      { venv: 'me@web1:/srv/v', host: 'web1', path: '/srv/v', history: 1, action: 'deploy', time: T, finishedAt: '2026-01-03T10:00:00Z', wheels: [W2] },
    ]);
  });

  it('an entry recorded by its run (install lines at or after its start), or recovered before, is not', () => {
    expect(find(venv(entry(T)), `${released}install: web1:/srv/v: ${W2} at 2026-01-03T10:00:09.000Z\n`)).to.deep.equal([]);
    expect(find(venv(entry(T)), `${released}install: web1:/srv/v: ${W2} at ${T} (recovered from history #1)\n`)).to.deep.equal([]);
  });

  it('an install line of the same wheel from before the entry, or for another venv, does not count', () => {
    const log = `${released}install: web1:/srv/v: ${W2} at 2026-01-02T10:00:00.000Z\ninstall: web2:/srv/v: ${W2} at 2026-01-03T11:00:00.000Z\n`;
    expect(find(venv(entry(T)), log).map((r) => r.wheels)).to.deep.equal([[W2]]);
  });

  it('failed, interrupted and automatic-rollback entries, and removals only, are not installs', () => {
    expect(find(venv(entry(T, { outcome: 'failed' }), entry(T, { outcome: 'interrupted' }), entry(T, { action: 'auto-rollback' })), released)).to.deep.equal([]);
    expect(find(venv(entry(T, { changes: [{ kind: 'remove', key: 'lib', name: 'lib', from: '1.0' }] })), released)).to.deep.equal([]);
  });

  it('a rollback that deployed is recovered; a created venv records every package', () => {
    const rollback = entry(T, { action: 'rollback', packages: [{ name: 'app', version: '1.0', wheel: W1, sha256: 'x' }], changes: [{ kind: 'downgrade', key: 'app', name: 'app', from: '2.0', to: '1.0' }] });
    expect(find(venv(rollback), released).map((r) => [r.action, r.wheels])).to.deep.equal([['rollback', [W1]]]);
    const created = entry(T, { changes: [{ kind: 'install', key: 'app', name: 'app', to: '2.0' }, { kind: 'install', key: 'lib', name: 'lib', to: '1.0' }] });
    expect(find(venv(created), released)[0]!.wheels).to.deep.equal([W2, LIB]);
  });

  it('an entry older than a release of a wheel it installed did not come from this repository', () => {
    expect(find(venv(entry('2026-01-01T12:00:00.000Z')), released)).to.deep.equal([]);
    expect(find(venv(entry(T)), '')).to.deep.equal([]);
  });

  it('an entry whose vdeploy still runs on this machine is left to it', () => {
    const mine = entry(T, { localHost: hostname(), localPid: 999_999 });
    expect(find(venv(mine), released, () => true)).to.deep.equal([]);
    expect(find(venv(mine), released, () => false)).to.have.length(1);
    expect(find(venv(entry(T, { localPid: 999_999 })), released, () => true), 'another machine: its pid means nothing here').to.have.length(1);
  });

  it('PEP 503 names: a package listed as Foo_Bar matches the change key foo-bar', () => {
    const w = 'foo_bar-1.0-py3-none-any.whl';
    const e = entry(T, { packages: [{ name: 'Foo_Bar', version: '1.0', wheel: w, sha256: 'z' }], changes: [{ kind: 'install', key: 'foo-bar', name: 'Foo_Bar', to: '1.0' }] });
    expect(find(venv(e), `release: Foo_Bar==1.0 ${w} at 2026-01-01T00:00:00.000Z\n`)[0]!.wheels).to.deep.equal([w]);
  });
});

describe('release_log reconcile: recording', () => {
  it('appends the missing lines once, marked recovered, with one event per entry', async () => {
    const repo = await makeTempDir('vdeploy-reconcile-');
    await writeFile(join(repo, 'release_log'), released);
    const T = '2026-01-03T10:00:00.000Z';
    const events: unknown[] = [];
    const first = await recordUnrecorded(repo, [venv(entry(T))], (e) => events.push(e));
    expect(first.map((r) => [r.history, r.wheels, r.notRecorded])).to.deep.equal([[1, [W2], undefined]]);
    expect(events).to.deep.equal([{ kind: 'log:recovered', ...first[0] }]);
    const log = await readFile(join(repo, 'release_log'), 'utf8');
    expect(log).to.equal(`${released}install: web1:/srv/v: ${W2} at ${T} (recovered from history #1)\n`);
    expect(await recordUnrecorded(repo, [venv(entry(T))])).to.deep.equal([]);
    expect(await readFile(join(repo, 'release_log'), 'utf8')).to.equal(log);
  });
});
