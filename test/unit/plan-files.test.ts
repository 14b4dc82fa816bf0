import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { applyFilesRequest, planHostFiles } from '../../src/files/plan-files.js';
import { filesNeedApply, type DesiredFile, type FileFact, type HostFileFacts, type HostFiles } from '../../src/files/types.js';

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

function file(dest: string, content: string | Buffer, extra: Partial<DesiredFile> = {}): DesiredFile {
  const bytes = Buffer.from(content);
  return { dest, source: `etc${dest}`, entry: 'files[0]', content: bytes, sha256: sha(bytes), mode: 0o644, onChange: [], secret: false, ...extra };
}

/** The host has `content` at `path` (sent back, as files.py does when it differs and is small). */
function has(path: string, content: string | Buffer, extra: Partial<FileFact> = {}): FileFact {
  const bytes = Buffer.from(content);
  return { path, state: 'file', sha256: sha(bytes), mode: 0o644, owner: 'root', group: 'root', size: bytes.length, content: bytes.toString('base64'), ...extra };
}

function desired(files: DesiredFile[], extra: Partial<HostFiles> = {}): HostFiles {
  return { host: 'web1', sudo: false, files, ...extra };
}

function facts(files: FileFact[], extra: Partial<HostFileFacts> = {}): HostFileFacts {
  return { files, managed: {}, pending: [], user: 'root', ...extra };
}

describe('planHostFiles and applyFilesRequest (issue 17)', () => {
  it('create, update with a unified diff, metadata, unchanged; handlers of changed files in declared order, once', () => {
    const d = desired([
      file('/etc/new.conf', 'new\n', { owner: 'root', group: 'root', onChange: ['b', 'a'] }),
      file('/etc/app.conf', 'workers = 4\nport = 80\n', { onChange: ['a', 'c'] }),
      file('/etc/meta.conf', 'same\n', { mode: 0o600, owner: 'app', onChange: ['d'] }),
      file('/etc/same.conf', 'same\n', { onChange: ['never'] }),
    ]);
    const f = facts([
      { path: '/etc/new.conf', state: 'missing' },
      has('/etc/app.conf', 'workers = 2\nport = 80\n'),
      has('/etc/meta.conf', 'same\n', { content: undefined }),
      has('/etc/same.conf', 'same\n', { content: undefined }),
    ]);
    const plan = planHostFiles(d, f, { prune: false });
    expect(plan.files.map((c) => c.action)).to.deep.equal(['create', 'update', 'metadata', 'unchanged']);
    expect(plan.files[0]).to.deep.include({ dest: '/etc/new.conf', mode: '0644', owner: 'root', group: 'root', secret: false, sha256: sha('new\n') });
    expect(plan.files[1]!.diff).to.equal(
      '--- /etc/app.conf (host)\n+++ /etc/app.conf (repository)\n@@ -1,2 +1,2 @@\n-workers = 2\n+workers = 4\n port = 80\n',
    );
    expect(plan.files[1]).to.not.have.property('meta');
    expect(plan.files[2]!.meta).to.deep.equal({ mode: ['0644', '0600'], owner: ['root', 'app'] });
    expect(plan.handlers).to.deep.equal(['b', 'a', 'c', 'd']);
    expect(plan).to.deep.include({ sudo: false, orphans: [], prune: false, pending: [], daemonReload: false });
    expect(plan).to.not.have.property('error');
    expect(filesNeedApply(plan)).to.equal(true);
  });

  it('group and owner are compared only when the entry sets them', () => {
    const plan = planHostFiles(desired([file('/etc/a', 'a')]), facts([has('/etc/a', 'a', { owner: 'someone', group: 'else' })]), { prune: false });
    expect(plan.files[0]!.action).to.equal('unchanged');
    expect(filesNeedApply(plan)).to.equal(false);
  });

  it('no diff for a secret, a binary file or one the host did not send (too big); meta beside the content change', () => {
    const d = desired([
      file('/etc/secret', 'password=new\n', { secret: true }),
      file('/etc/bin', Buffer.from([1, 0, 2])),
      file('/etc/latin1', 'caf\u00e9\n'),
      file('/etc/big', 'x'.repeat(10)),
    ]);
    const plan = planHostFiles(
      d,
      facts([has('/etc/secret', 'password=old\n'), has('/etc/bin', Buffer.from([1, 0, 3])), has('/etc/latin1', Buffer.from('caf\xe9\n', 'latin1')), has('/etc/big', 'y', { content: undefined, mode: 0o640 })]),
      { prune: false },
    );
    expect(plan.files.map((c) => [c.action, c.noDiff, c.diff])).to.deep.equal([
      ['update', 'secret', undefined],
      ['update', 'binary', undefined],
      ['update', 'binary', undefined],
      ['update', 'too big', undefined],
    ]);
    expect(plan.files[3]!.meta).to.deep.equal({ mode: ['0640', '0644'] });
    expect(JSON.stringify(plan)).to.not.include('password');
  });

  it('pending handlers first, then triggered ones, deduped; pending alone needs an apply', () => {
    const d = desired([file('/etc/a', 'a', { onChange: ['reload app', 'reload web'] })]);
    const plan = planHostFiles(d, facts([{ path: '/etc/a', state: 'missing' }], { pending: ['reload web', 'old'] }), { prune: false });
    expect(plan.handlers).to.deep.equal(['reload web', 'old', 'reload app']);
    expect(plan.pending).to.deep.equal(['reload web', 'old']);
    const idle = planHostFiles(desired([file('/etc/a', 'a', { onChange: ['x'] })]), facts([has('/etc/a', 'a')], { pending: ['x'] }), { prune: false });
    expect(idle.files[0]!.action).to.equal('unchanged');
    expect(idle.handlers).to.deep.equal(['x']);
    expect(filesNeedApply(idle)).to.equal(true);
  });

  it('a unit under systemd/system/ changing: daemonReload, and systemctl daemon-reload first in the request', () => {
    const d = desired([file('/etc/systemd/system/app.service', '[Service]\n', { onChange: ['systemctl restart app'] })]);
    const plan = planHostFiles(d, facts([{ path: '/etc/systemd/system/app.service', state: 'missing' }], { pending: ['old'] }), { prune: false });
    expect(plan.daemonReload).to.equal(true);
    expect(plan.handlers).to.deep.equal(['old', 'systemctl restart app']);
    expect(applyFilesRequest(plan, d, facts([])).handlers).to.deep.equal(['systemctl daemon-reload', 'old', 'systemctl restart app']);
    // Metadata only: no daemon-reload. A daemon-reload left pending is not run twice.
    const meta = planHostFiles(d, facts([has('/etc/systemd/system/app.service', '[Service]\n', { mode: 0o600 })], { pending: ['systemctl daemon-reload'] }), { prune: false });
    expect(meta.daemonReload).to.equal(false);
    const again = planHostFiles(d, facts([{ path: '/etc/systemd/system/app.service', state: 'missing' }], { pending: ['systemctl daemon-reload'] }), { prune: false });
    expect(applyFilesRequest(again, d, facts([])).handlers).to.deep.equal(['systemctl daemon-reload', 'systemctl restart app']);
  });

  it('orphans: managed paths no longer desired, kept in the record unless pruned', () => {
    const d = desired([file('/etc/a', 'a')]);
    const managed = { '/etc/a': sha('old a'), '/etc/old': 'abc', '/etc/systemd/system/gone.service': 'def' };
    const kept = planHostFiles(d, facts([has('/etc/a', 'a')], { managed }), { prune: false });
    expect(kept.orphans).to.deep.equal(['/etc/old', '/etc/systemd/system/gone.service']);
    expect(kept.daemonReload).to.equal(false);
    expect(filesNeedApply(kept)).to.equal(false);
    const keptRequest = applyFilesRequest(kept, d, facts([], { managed }));
    expect(keptRequest.remove).to.deep.equal([]);
    expect(keptRequest.managed).to.deep.equal({ '/etc/old': 'abc', '/etc/systemd/system/gone.service': 'def', '/etc/a': sha('a') });
    const pruned = planHostFiles(d, facts([has('/etc/a', 'a')], { managed }), { prune: true });
    expect(pruned.daemonReload).to.equal(true);
    expect(filesNeedApply(pruned)).to.equal(true);
    const prunedRequest = applyFilesRequest(pruned, d, facts([], { managed }));
    expect(prunedRequest.remove).to.deep.equal(['/etc/old', '/etc/systemd/system/gone.service']);
    expect(prunedRequest.managed).to.deep.equal({ '/etc/a': sha('a') });
  });

  it('something that is not a regular file at a dest blocks the host (plan.error)', () => {
    const d = desired([file('/etc/a', 'a'), file('/etc/b', 'b'), file('/etc/c', 'c')]);
    const plan = planHostFiles(d, facts([{ path: '/etc/a', state: 'other' }, { path: '/etc/b', state: 'other' }, { path: '/etc/c', state: 'missing' }]), { prune: false });
    expect(plan.files.map((c) => c.action)).to.deep.equal(['blocked', 'blocked', 'create']);
    expect(plan.error!.message).to.match(/^\/etc\/a on the host is not a regular file .* \(and 1 more: \/etc\/b\)$/);
    expect(plan.error!.hint).to.be.a('string');
    expect(filesNeedApply(plan)).to.equal(false);
    expect(() => applyFilesRequest(plan, d, facts([]))).to.throw(/bug/);
  });

  it('the request: writes (base64, mode, owner, validate) for create/update, meta for metadata, field names as files.py reads them', () => {
    const d = desired(
      [
        file('/etc/a', 'A', { owner: 'root', group: 'adm', mode: 0o640, validate: 'check {path}' }),
        file('/etc/b', 'B', { mode: 0o600, group: 'adm' }),
        file('/etc/c', 'C'),
      ],
      { sudo: true, stateDir: '/var/lib/vd' },
    );
    const f = facts([{ path: '/etc/a', state: 'missing' }, has('/etc/b', 'B'), has('/etc/c', 'C')]);
    const plan = planHostFiles(d, f, { prune: false });
    expect(plan).to.include({ sudo: true, stateDir: '/var/lib/vd' });
    expect(applyFilesRequest(plan, d, f)).to.deep.equal({
      op: 'apply',
      stateDir: '/var/lib/vd',
      host: 'web1',
      write: [{ path: '/etc/a', content: Buffer.from('A').toString('base64'), sha256: sha('A'), mode: 0o640, owner: 'root', group: 'adm', validate: 'check {path}' }],
      meta: [{ path: '/etc/b', mode: 0o600, group: 'adm' }],
      remove: [],
      handlers: [],
      managed: { '/etc/a': sha('A'), '/etc/b': sha('B'), '/etc/c': sha('C') },
    });
    expect(applyFilesRequest(planHostFiles(desired([]), facts([]), { prune: false }), desired([]), facts([])).stateDir).to.equal(null);
  });

  it('a path the facts do not mention counts as missing', () => {
    expect(planHostFiles(desired([file('/etc/a', 'a')]), facts([]), { prune: false }).files[0]!.action).to.equal('create');
  });
});
