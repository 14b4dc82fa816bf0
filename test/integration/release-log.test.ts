import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { VdeployError } from '../../src/errors.js';
import {
  appendReleaseLog,
  formatAbortingLine,
  formatErrorLine,
  formatInstallLine,
  formatReleaseLine,
  parseReleaseLogLine,
  readReleaseLog,
  type ReleaseLogEntry,
} from '../../src/wheels/release-log.js';
import { makeTempDir } from '../helpers/cli.js';
import { REPO_ROOT } from '../helpers/paths.js';

const SHA = 'f04fb3b36ee119e1af4fa1d397d5fd6cf12700f49321e84d4f4c642c5b1973db';
const T = '2025-03-01T10:20:30.123Z';
/** An entry minus its line number (distributes over the union, unlike a bare Omit). */
type EntryBody<E = ReleaseLogEntry> = E extends unknown ? Omit<E, 'lineNumber'> : never;

const REL = `release: app==1.0 app-1.0-py3-none-any.whl at ${T} sha256=${SHA}`;
/** A git commit (vdeploy build): the optional `commit=` field after `sha256=`. */
const COMMIT = '3b18e512dba79e4c8300dd08aeb37f8e728b8dad';

describe('release_log', () => {
  describe('line parsing', () => {
    const good: Array<[string, EntryBody]> = [
      [REL, { kind: 'release', name: 'app', version: '1.0', filename: 'app-1.0-py3-none-any.whl', time: T, sha256: SHA }],
      [
        `${REL} commit=${COMMIT}`,
        { kind: 'release', name: 'app', version: '1.0', filename: 'app-1.0-py3-none-any.whl', time: T, sha256: SHA, commit: COMMIT },
      ],
      [
        `release: app==1.0 app-1.0-py3-none-any.whl at ${T} commit=${'a'.repeat(64)}`,
        { kind: 'release', name: 'app', version: '1.0', filename: 'app-1.0-py3-none-any.whl', time: T, commit: 'a'.repeat(64) },
      ],
      [
        'release: Django==5.2.17 django-5.2.17-py3-none-any.whl at 2024-05-01T12:00:00.123456+00:00',
        { kind: 'release', name: 'Django', version: '5.2.17', filename: 'django-5.2.17-py3-none-any.whl', time: '2024-05-01T12:00:00.123456+00:00' },
      ],
      [
        'release: app==1.0 app-1.0-py3-none-any.whl at 2024-05-01 12:00:00',
        { kind: 'release', name: 'app', version: '1.0', filename: 'app-1.0-py3-none-any.whl', time: '2024-05-01 12:00:00' },
      ],
      [
        `install: web1:/srv/app/venv: app-1.0-py3-none-any.whl at ${T}`,
        { kind: 'install', host: 'web1', path: '/srv/app/venv', filename: 'app-1.0-py3-none-any.whl', time: T },
      ],
      [
        `install: deploy@web2.example:/srv/a:b/venv: app-1.0-1-py3-none-any.whl at ${T}`,
        { kind: 'install', host: 'deploy@web2.example', path: '/srv/a:b/venv', filename: 'app-1.0-1-py3-none-any.whl', time: T },
      ],
      [
        `install: web1:/srv/app/venv: app-1.0-py3-none-any.whl at ${T} (recovered from history #12)`,
        { kind: 'install', host: 'web1', path: '/srv/app/venv', filename: 'app-1.0-py3-none-any.whl', time: T, recovered: 12 },
      ],
      ['error: pip install failed on web1: exit 1', { kind: 'error', text: 'pip install failed on web1: exit 1' }],
      ['error:', { kind: 'error', text: '' }],
      ['aborting: 2 of 5 hosts failed', { kind: 'aborting', text: '2 of 5 hosts failed' }],
    ];
    for (const [line, entry] of good) {
      it(`parses ${line.slice(0, 60)}…`, () => {
        expect(parseReleaseLogLine(line, 7)).to.deep.equal({ ...entry, lineNumber: 7 });
      });
    }

    const bad: Array<[string, string]> = [
      ['an unknown kind', `deploy: app==1.0 app-1.0-py3-none-any.whl at ${T}`],
      ['a release without ==', `release: app 1.0 app-1.0-py3-none-any.whl at ${T}`],
      ['a release with a bad version', `release: app==one app-1.0-py3-none-any.whl at ${T}`],
      ['a release of a non-wheel', `release: app==1.0 app-1.0.tar.gz at ${T}`],
      ['a release with a bad time', 'release: app==1.0 app-1.0-py3-none-any.whl at yesterday'],
      ['a release with a short sha256', `release: app==1.0 app-1.0-py3-none-any.whl at ${T} sha256=abc123`],
      ['a release with a non-hex sha256', `release: app==1.0 app-1.0-py3-none-any.whl at ${T} sha256=${'z'.repeat(64)}`],
      ['a release with an empty sha256', `release: app==1.0 app-1.0-py3-none-any.whl at ${T} sha256=`],
      ['a release with a short commit', `${REL} commit=3b18e51`],
      ['a release with an upper-case commit', `${REL} commit=${COMMIT.toUpperCase()}`],
      ['a release with an empty commit', `${REL} commit=`],
      ['a release with commit before sha256', `release: app==1.0 app-1.0-py3-none-any.whl at ${T} commit=${COMMIT} sha256=${SHA}`],
      ['an install without a path', `install: web1: app-1.0-py3-none-any.whl at ${T}`],
      ['a kind without its space', 'error:oops'],
      ['a kind in the wrong case', 'Error: oops'],
    ];
    for (const [what, line] of bad) {
      it(`rejects ${what}`, () => expect(parseReleaseLogLine(line, 1)).to.equal(undefined));
    }
  });

  describe('formatters', () => {
    const at = new Date(T);
    it('write lines the parser reads back, byte for byte in the old format', () => {
      const lines = [
        formatReleaseLine({ name: 'app', version: '1.0', filename: 'app-1.0-py3-none-any.whl', time: at, sha256: SHA }),
        formatReleaseLine({ name: 'app', version: '1.0', filename: 'app-1.0-py3-none-any.whl', time: at }),
        formatReleaseLine({ name: 'app', version: '1.0', filename: 'app-1.0-py3-none-any.whl', time: at, sha256: SHA, commit: COMMIT }),
        formatInstallLine({ host: 'web1', path: '/srv/app/venv', filename: 'app-1.0-py3-none-any.whl', time: at }),
        formatInstallLine({ host: 'web1', path: '/srv/app/venv', filename: 'app-1.0-py3-none-any.whl', time: T, recovered: 3 }),
        formatErrorLine('boom'),
        formatAbortingLine('stopping'),
      ];
      expect(lines).to.deep.equal([
        REL,
        `release: app==1.0 app-1.0-py3-none-any.whl at ${T}`,
        `${REL} commit=${COMMIT}`,
        `install: web1:/srv/app/venv: app-1.0-py3-none-any.whl at ${T}`,
        `install: web1:/srv/app/venv: app-1.0-py3-none-any.whl at ${T} (recovered from history #3)`,
        'error: boom',
        'aborting: stopping',
      ]);
      for (const line of lines) expect(parseReleaseLogLine(line, 1), line).to.not.equal(undefined);
    });
    it('fold free text onto one line so it cannot forge records', () => {
      expect(formatErrorLine('pip failed:\n  release: evil==6.6.6 x-6.6.6-py3-none-any.whl at 2025-01-01T00:00:00Z\n')).to.equal(
        'error: pip failed: release: evil==6.6.6 x-6.6.6-py3-none-any.whl at 2025-01-01T00:00:00Z',
      );
      expect(formatAbortingLine('a\r\nb')).to.equal('aborting: a b');
    });
  });

  describe('reading and appending', () => {
    let repo: string;
    let log: string;
    beforeEach(async () => {
      repo = await makeTempDir('vdeploy-release-log-');
      log = join(repo, 'release_log');
    });
    afterEach(async () => {
      await rm(repo, { recursive: true, force: true });
    });

    it('a missing file is an empty log', async () => {
      expect(await readReleaseLog(join(repo, 'nowhere'))).to.deep.equal({ entries: [] });
    });

    it('reads every kind, old release lines without sha256 included, with line numbers', async () => {
      const old = `release: app==0.9 app-0.9-py3-none-any.whl at 2024-01-01T00:00:00`;
      await writeFile(log, `${old}\n${REL}\ninstall: web1:/srv/v: app-1.0-py3-none-any.whl at ${T}\nerror: x\n\naborting: y\n`);
      const { entries, tornTail } = await readReleaseLog(repo);
      expect(tornTail).to.equal(undefined);
      expect(entries.map((e) => [e.kind, e.lineNumber])).to.deep.equal([
        ['release', 1],
        ['release', 2],
        ['install', 3],
        ['error', 4],
        ['aborting', 6],
      ]);
      expect(entries[0]).not.to.have.property('sha256');
    });

    it('reports a last line without its newline as a torn tail, not an entry or an error', async () => {
      await writeFile(log, `${REL}\nrelease: app==1.1 app-1.1-py3-no`);
      const { entries, tornTail } = await readReleaseLog(repo);
      expect(entries).to.have.length(1);
      expect(tornTail).to.deep.equal({ lineNumber: 2, text: 'release: app==1.1 app-1.1-py3-no' });
    });

    for (const [where, text, lineNumber] of [
      ['in the middle', `${REL}\n${REL}\nthis is not a log line\n${REL}\n`, 3],
      ['as the last complete line', `${REL}\nrelease: app==1.0 app-1.0-py3-none-any.whl at ${T} sha256=123\n`, 2],
      ['before a torn tail', `garbage\n${REL}`, 1],
    ] as const) {
      it(`a corrupt line ${where} is a hard error naming file and line`, async () => {
        await writeFile(log, text);
        const err = await readReleaseLog(repo).then(
          () => expect.fail('should throw'),
          (e: unknown) => e as VdeployError,
        );
        expect(err).to.be.instanceOf(VdeployError);
        expect(err.message).to.match(new RegExp(`^${log.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:${lineNumber}: unrecognised line ".*"$`));
        expect(err.hint).to.include(`line ${lineNumber}`);
      });
    }

    it('appends whole lines, creating the file', async () => {
      expect(await appendReleaseLog(repo, [REL, formatErrorLine('e')])).to.deep.equal({});
      expect(await appendReleaseLog(repo, [formatAbortingLine('a')])).to.deep.equal({});
      expect(await readFile(log, 'utf8')).to.equal(`${REL}\nerror: e\naborting: a\n`);
    });

    it('refuses to append a malformed line, and writes nothing', async () => {
      await writeFile(log, `${REL}\n`);
      for (const lines of [[REL, 'nonsense'], [`${REL}\n${REL}`], [`error: a\nerror: b`]]) {
        await appendReleaseLog(repo, lines).then(
          () => expect.fail(`appended ${JSON.stringify(lines)}`),
          (e: unknown) => expect(e).to.be.instanceOf(VdeployError),
        );
      }
      expect(await readFile(log, 'utf8')).to.equal(`${REL}\n`);
    });

    for (const [what, good, torn] of [
      ['a torn line after good ones', `${REL}\nerror: one\n`, 'release: app==1.1 app-1.1-py3-no'],
      ['a log that is only a torn line', '', 'rel'],
      ['a torn tail longer than the read-back chunk', `${REL}\n`, `error: ${'x'.repeat(70_000)}`],
    ] as const) {
      it(`repairs ${what} before appending, losing nothing`, async () => {
        await writeFile(log, good + torn);
        const result = await appendReleaseLog(repo, ['error: after']);
        expect(result.repairedTornTail?.text).to.equal(torn);
        const savedTo = result.repairedTornTail!.savedTo;
        expect(savedTo.startsWith(`${log}.torn-`)).to.equal(true);
        expect(await readFile(savedTo, 'utf8')).to.equal(torn);
        expect(await readFile(log, 'utf8')).to.equal(`${good}error: after\n`);
        expect((await readdir(repo)).filter((f) => f.startsWith('release_log.torn-'))).to.have.length(1);
        expect((await readReleaseLog(repo)).tornTail).to.equal(undefined);
      });
    }

    it('two concurrent writer processes (200 lines each, under the repo lock) interleave and lose nothing', async function () {
      // Each writer reads the log under the lock and records how many entries it saw: if the lock
      // serialises read-modify-append, line k says it saw k entries.
      const script = join(repo, 'writer.mts');
      const src = (m: string) => pathToFileURL(join(REPO_ROOT, 'src', 'wheels', m)).href;
      await writeFile(
        script,
        `import { appendReleaseLog, formatErrorLine, formatReleaseLine, readReleaseLog } from ${JSON.stringify(src('release-log.ts'))};
import { withRepoLock } from ${JSON.stringify(src('repo-lock.ts'))};
const [repo, who, count] = process.argv.slice(2);
for (let i = 0; i < Number(count); i++) {
  await withRepoLock(repo, async () => {
    const seen = (await readReleaseLog(repo)).entries.length;
    const line = i % 2 === 0
      ? formatReleaseLine({ name: 'pkg_' + who, version: i + '.0', filename: 'pkg_' + who + '-' + i + '.0-py3-none-any.whl', time: new Date(), sha256: String(seen).padStart(64, '0') })
      : formatErrorLine(who + ' ' + i + ' saw ' + seen);
    await appendReleaseLog(repo, [line]);
  });
}
`,
      );
      const run = (who: string) =>
        new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
          const child = spawn(process.execPath, ['--import', 'tsx', script, repo, who, '200'], { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
          let stderr = '';
          child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
          child.on('error', reject);
          child.on('close', (code) => resolve({ code, stderr }));
        });
      const results = await Promise.all([run('a'), run('b')]);
      for (const r of results) expect(r.code, r.stderr).to.equal(0);

      const text = await readFile(log, 'utf8');
      const { entries, tornTail } = await readReleaseLog(repo);
      expect(tornTail).to.equal(undefined);
      expect(entries).to.have.length(400);
      expect(text.split('\n')).to.have.length(401); // 400 lines + '' after the last '\n': no stray blank lines
      for (const [k, e] of entries.entries()) {
        const seen = e.kind === 'release' ? Number(e.sha256) : e.kind === 'error' ? Number(e.text.split(' saw ')[1]) : NaN;
        expect(seen, `line ${k + 1}: ${JSON.stringify(e)}`).to.equal(k);
      }
      for (const who of ['a', 'b']) {
        // Each writer's own lines appear complete and in its order.
        const mine = entries
          .map((e) => (e.kind === 'release' && e.name === `pkg_${who}` ? Number.parseInt(e.version) : e.kind === 'error' && e.text.startsWith(`${who} `) ? Number(e.text.split(' ')[1]) : undefined))
          .filter((i) => i !== undefined);
        expect(mine).to.deep.equal(Array.from({ length: 200 }, (_, i) => i));
      }
    });
  });
});
