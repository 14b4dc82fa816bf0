import { expect } from 'chai';
import { renderFilesPlan } from '../../src/cli/render-files.js';
import type { FileChange, FilesPlan } from '../../src/files/types.js';

function change(dest: string, action: FileChange['action'], extra: Partial<FileChange> = {}): FileChange {
  return { dest, source: `etc${dest}`, action, secret: false, sha256: 'abc', mode: '0644', ...extra };
}

function plan(files: FileChange[], extra: Partial<FilesPlan> = {}): FilesPlan {
  return { sudo: false, files, orphans: [], prune: false, pending: [], handlers: [], daemonReload: false, ...extra };
}

const DIFF = '--- /etc/b (host)\n+++ /etc/b (repository)\n@@ -1,2 +1,2 @@\n-workers = 2\n+workers = 4\n port = 80\n';
// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*m/g;

describe('renderFilesPlan (issue 17)', () => {
  const full = plan(
    [
      change('/etc/a', 'create', { owner: 'root', group: 'root' }),
      change('/etc/b', 'update', { diff: DIFF }),
      change('/etc/c', 'metadata', { mode: '0600', meta: { mode: ['0644', '0600'], owner: ['app', 'root'] } }),
      change('/etc/d', 'unchanged'),
      change('/etc/e', 'unchanged'),
      change('/etc/secret', 'update', { secret: true, noDiff: 'secret' }),
    ],
    { orphans: ['/etc/old'], pending: ['old cmd'], handlers: ['old cmd', 'supervisorctl update'], daemonReload: true },
  );

  it('lists creates, updates with their diff, metadata, unchanged count, orphans, handlers and pending', () => {
    expect(renderFilesPlan('host1', full, false)).to.deep.equal([
      'files on host1:',
      '  + /etc/a (create, 0644 root:root)',
      '  ~ /etc/b',
      '    --- /etc/b (host)',
      '    +++ /etc/b (repository)',
      '    @@ -1,2 +1,2 @@',
      '    -workers = 2',
      '    +workers = 4',
      '     port = 80',
      '  = /etc/c (mode 0644 -> 0600, owner app -> root)',
      '  ~ /etc/secret (secret: no diff shown)',
      '  2 files unchanged',
      '  - /etc/old (not in the repository; kept — --prune-files removes it)',
      '  handlers: systemctl daemon-reload (a unit changed), old cmd, supervisorctl update',
      '  pending from an earlier run: old cmd',
    ]);
  });

  it('colours + green, - red, @@ cyan only when asked', () => {
    const lines = renderFilesPlan('host1', full, true);
    expect(lines.join('\n')).to.match(ANSI);
    expect(lines.map((l) => l.replace(ANSI, ''))).to.deep.equal(renderFilesPlan('host1', full, false));
    const plus = lines.find((l) => l.replace(ANSI, '') === '    +workers = 4')!;
    const minus = lines.find((l) => l.replace(ANSI, '') === '    -workers = 2')!;
    const hunk = lines.find((l) => l.replace(ANSI, '').startsWith('    @@'))!;
    expect(plus).to.include('\u001b[32m');
    expect(minus).to.include('\u001b[31m');
    expect(hunk).to.include('\u001b[36m');
    expect(renderFilesPlan('host1', full, false).join('\n')).to.not.match(ANSI);
  });

  it('never shows a secret diff, even if one slipped into the plan', () => {
    const lines = renderFilesPlan('h', plan([change('/etc/s', 'update', { secret: true, diff: '--- a\n+++ b\n-password=1\n+password=2\n' })]), false);
    expect(lines.join('\n')).to.not.include('password');
  });

  it('shows control characters from the host in caret notation', () => {
    const lines = renderFilesPlan('h', plan([change('/etc/x', 'update', { diff: '--- x\n+++ y\n@@ -1 +1 @@\n-\u001b[2Jold\r\n+new\n' })]), false);
    expect(lines).to.include('    -^[[2Jold^M');
    expect(lines.join('\n')).to.not.include('\u001b');
  });

  it('pruned orphans, binary and too big updates, blocked plans, sudo, and a host with nothing to do', () => {
    const lines = renderFilesPlan('h', plan([change('/etc/bin', 'update', { noDiff: 'binary', meta: { mode: ['0600', '0644'] } }), change('/etc/big', 'update', { noDiff: 'too big' })], { orphans: ['/etc/old'], prune: true, sudo: true }), false);
    expect(lines).to.deep.equal([
      'files on h (through sudo):',
      '  ~ /etc/bin (binary: no diff shown; mode 0600 -> 0644)',
      '  ~ /etc/big (too big: no diff shown)',
      '  - /etc/old (not in the repository; removed: --prune-files)',
    ]);
    expect(renderFilesPlan('h', plan([change('/etc/a', 'blocked')], { error: { message: '/etc/a on the host is a directory', hint: 'move it' } }), false)).to.deep.equal([
      'files on h: error: /etc/a on the host is a directory',
      '  hint: move it',
    ]);
    expect(renderFilesPlan('h', plan([change('/etc/a', 'unchanged')]), false)).to.deep.equal(['files on h:', '  1 file unchanged']);
    expect(renderFilesPlan('h', plan([]), false)).to.deep.equal(['files on h: nothing']);
    expect(renderFilesPlan('h', plan([change('/etc/k', 'create', { secret: true, mode: '0600' })]), false)).to.deep.equal(['files on h:', '  + /etc/k (create, secret, 0600)']);
  });
});
