#!/usr/bin/env node
// npm run test:python: the Python vdeploy runs on hosts (src/remote/python/) and its tests
// (test/python/), checked the way every host will see them:
//   1. pyflakes3 over both folders: any message fails;
//   2. under every host Python we support (the pyenv 3.x builds and Debian's /usr/bin/python3), every
//      file under src/remote/python/ must compile (a 3.8-only construct in a module no test imports
//      would otherwise reach a 3.6 host first), then `python -B -m unittest discover` in test/python/
//      (run through a few lines that also print exact counts).
// One line per interpreter, the output of failing runs, and a summary. Arguments, if any, replace
// `discover` (e.g. `npm run test:python -- test_contracts`). VDEPLOY_PYTHONS=path:path limits the
// interpreters (the expected ones are not then reported missing).
// Under scripts/test.mjs, VDEPLOY_TEST_STATS names a file for the counts (as the mocha reporter does).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const SOURCES = join(root, 'src', 'remote', 'python');
const TESTS = join(root, 'test', 'python');
const PYENV = '/root/.pyenv/versions';
/** The host Pythons vdeploy supports; each should be here (a missing one is reported; in CI it fails the run). */
const EXPECTED = ['3.6.15', '3.7.16', '3.8.18', '3.9.18', '3.10.13', '3.11.7', '3.12.1', '3.13.0'].map((v) => `${PYENV}/${v}/bin/python3`);
const SYSTEM = '/usr/bin/python3';
const PARALLEL = 2;
const TIMEOUT_MS = 10 * 60_000;
const COUNTS = '@vdeploy-test-counts';

/** The environment of every Python we start: no PYTHON* variable (PYTHONPATH, PYTHONHOME, ...) leaks in. */
const pythonEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PYTHON')));

function interpreters() {
  if (process.env.VDEPLOY_PYTHONS) return { found: process.env.VDEPLOY_PYTHONS.split(':').filter(Boolean), missing: [] };
  const pyenv = existsSync(PYENV)
    ? readdirSync(PYENV).filter((v) => /^3\./.test(v)).map((v) => `${PYENV}/${v}/bin/python3`)
    : [];
  const found = [...new Set([...pyenv.sort(byVersion), SYSTEM])].filter((p) => existsSync(p));
  return { found, missing: EXPECTED.filter((p) => !existsSync(p)) };
}

/** .../versions/3.6.15/bin/python3 before .../versions/3.10.13/bin/python3. */
function byVersion(a, b) {
  const parts = (p) => (/\/(\d+)\.(\d+)\.(\d+)\//.exec(p) ?? []).slice(1).map(Number);
  const [x, y] = [parts(a), parts(b)];
  for (let i = 0; i < 3; i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
  return 0;
}

/** Runs a command; resolves with its exit code and output (killed, with everything it started, after TIMEOUT_MS). */
const running = new Set();
function run(cmd, args, options = {}) {
  return new Promise((resolve) => {
    const started = Date.now();
    // Its own process group, so a timeout or our Ctrl-C can end the child and whatever it started.
    const child = spawn(cmd, args, { env: pythonEnv, stdio: ['ignore', 'pipe', 'pipe'], detached: true, ...options });
    running.add(child);
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (output += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (output += d));
    const timer = setTimeout(() => {
      output += `\n(killed after ${TIMEOUT_MS / 1000} s)\n`;
      killGroup(child);
    }, TIMEOUT_MS);
    const done = (code, error) => {
      clearTimeout(timer);
      running.delete(child);
      resolve({ code, output: error ? `${output}${error.message}\n` : output, seconds: (Date.now() - started) / 1000 });
    };
    child.on('error', (error) => done(null, error));
    child.on('close', (code, signal) => done(code ?? (signal ? `signal ${signal}` : null)));
  });
}

function killGroup(child) {
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    for (const child of running) killGroup(child);
    process.exit(130);
  });
}

async function lint() {
  const targets = [relative(root, SOURCES), relative(root, TESTS)];
  const r = await run('pyflakes3', targets, { cwd: root });
  if (r.code === null) return { ok: false, text: `pyflakes3: could not run it (${r.output.trim()}); run \`node scripts/ensure-test-deps.mjs\` (apt-get install pyflakes3)` };
  const messages = r.output.trim();
  if (r.code === 0 && messages === '') return { ok: true, text: `pyflakes3 ${targets.join(' ')}: clean (${r.seconds.toFixed(1)} s)` };
  return { ok: false, text: `pyflakes3 ${targets.join(' ')}: FAILED (exit ${r.code})\n${messages}` };
}

/** Every .py file vdeploy ships, compiled (not run) by `python`: a syntax error is one failure. */
const COMPILE = `import sys
bad = 0
for path in sys.argv[1:]:
    try:
        with open(path, 'rb') as f:
            compile(f.read(), path, 'exec', dont_inherit=True)
    except SyntaxError as e:
        bad += 1
        print('%s:%s: %s' % (path, e.lineno, e.msg))
sys.exit(1 if bad else 0)
`;
const shippedPython = readdirSync(SOURCES, { recursive: true })
  .map(String)
  .filter((n) => n.endsWith('.py') && !n.includes('__pycache__'))
  .map((n) => join(SOURCES, n));

/**
 * `python -m unittest ARGS`, plus one closing line of counts that do not depend on the Python version
 * (3.12.1 neither starts nor counts skipped tests): tests run, skipped, and tests (not subtests)
 * that failed, errored or succeeded unexpectedly, including modules that did not import.
 */
const UNITTEST = `import json, sys, unittest

class Result(unittest.TextTestResult):
    started = ()

    def startTest(self, test):
        self.started += (test.id(),)
        super(Result, self).startTest(test)

class Runner(unittest.TextTestRunner):
    resultclass = Result

program = unittest.main(module=None, argv=['python -m unittest'] + sys.argv[1:], testRunner=Runner, exit=False)
r = program.result
bad = r.failures + r.errors + [(t, None) for t in r.unexpectedSuccesses]
failed = set(getattr(t, 'test_case', t).id() for t, _ in bad)
skipped = set(t.id() for t, _ in r.skipped)
# 3.12.1 skips without startTest: count what started, was skipped or failed.
counts = {'run': len(set(r.started) | skipped | failed), 'failed': len(failed), 'skipped': len(skipped)}
sys.stderr.write('\\n${COUNTS} %s\\n' % json.dumps(counts))
sys.exit(0 if r.wasSuccessful() and not failed else 1)
`;

/** The counts line UNITTEST ends with, and the output without it. */
function parseCounts(text) {
  const m = new RegExp(`^${COUNTS} (.*)$`, 'm').exec(text);
  if (!m) return { counts: null, output: text };
  const c = JSON.parse(m[1]);
  const passed = Math.max(0, c.run - c.skipped - c.failed);
  return { counts: { ...c, passed }, output: text.replace(m[0], '').trimEnd() + '\n' };
}

async function testUnder(python, testArgs) {
  const version = spawnSync(python, ['--version'], { env: pythonEnv, encoding: 'utf8' });
  const name = `${(version.stdout || version.stderr || '').trim().replace(/^Python /, '') || '?'} ${python}`;
  const compiled = await run(python, ['-B', '-c', COMPILE, ...shippedPython], { cwd: root });
  const tests = await run(python, ['-B', '-c', UNITTEST, ...testArgs], { cwd: TESTS });
  const parsed = parseCounts(tests.output);
  tests.output = parsed.output;
  const counts = parsed.counts ?? { run: 0, failed: 0, skipped: 0, passed: 0 };
  const problems = [];
  if (compiled.code !== 0) problems.push(`does not compile every file:\n${compiled.output.trim()}`);
  if (counts.run === 0) problems.push(`ran no tests (or stopped before saying how many; exit ${tests.code})`);
  else if (tests.code !== 0 && counts.failed === 0) problems.push(`unittest exited with ${tests.code}`);
  const failed = counts.failed + problems.length;
  const line =
    `${failed > 0 ? 'FAIL' : 'ok  '} python ${name.padEnd(50)} ${String(counts.run).padStart(4)} tests, ` +
    `${failed} failed${counts.skipped ? `, ${counts.skipped} skipped` : ''}, ${(compiled.seconds + tests.seconds).toFixed(1)} s`;
  // "test_x (module.Class)" before 3.11, "test_x (module.Class.test_x)" after: the same test.
  const failures = [...tests.output.matchAll(/^(?:FAIL|ERROR): (\w+) \(([\w.]+?)(?:\.\1)?\)/gm)]
    .map((m) => `${m[2]}.${m[1]}`)
    .sort()
    .join('\n');
  return { name, line, passed: counts.passed, failed, skipped: counts.skipped, problems, output: tests.output, failures };
}

async function pool(items, limit, fn) {
  const results = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]);
      console.log(results[i].line);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** The output of each failing run; one whose failures repeat an earlier run's is only named. */
function showFailures(results) {
  const shown = new Map();
  for (const r of results.filter((x) => x.failed > 0)) {
    console.log(`\n--- python ${r.name} ---`);
    for (const p of r.problems) console.log(p);
    // The same failing tests, or (when unittest named none) the same output once the timings are removed.
    const key = r.failures || r.output.replace(/\d+(\.\d+)?s\b/g, '');
    if (shown.has(key)) {
      console.log(`(the same failures as under python ${shown.get(key)})`);
      continue;
    }
    shown.set(key, r.name);
    console.log(r.output.trimEnd());
  }
}

async function main() {
  const started = Date.now();
  const testArgs = process.argv.length > 2 ? process.argv.slice(2) : ['discover', '-s', '.', '-t', '.'];
  const { found, missing } = interpreters();
  // CI's machine image has them all: there a missing one is a failure, not a quieter run.
  const missingFails = process.env.CI === 'true' ? missing.length : 0;
  for (const m of missing) console.log(`missing: ${m} (an expected host Python; its tests are not run${missingFails ? ': a failure in CI' : ''})`);
  const linted = await lint();
  console.log(linted.text);
  const results = found.length > 0 ? await pool(found, PARALLEL, (p) => testUnder(p, testArgs)) : [];
  if (found.length === 0) console.log(`no Python 3 found (looked for ${PYENV}/3.*/bin/python3 and ${SYSTEM})`);
  showFailures(results);

  const sum = (k) => results.reduce((n, r) => n + r[k], 0);
  const counts = { passed: sum('passed'), failed: sum('failed') + (linted.ok ? 0 : 1) + (found.length === 0 ? 1 : 0) + missingFails, skipped: sum('skipped') };
  let line = `${counts.passed} passed, ${counts.failed} failed`;
  if (counts.skipped) line += `, ${counts.skipped} skipped`;
  console.log(`\npython: ${results.length} interpreters, ${linted.ok ? 'pyflakes clean' : 'pyflakes FAILED'}, ${((Date.now() - started) / 1000).toFixed(1)} s`);
  if (process.env.VDEPLOY_TEST_STATS) {
    writeFileSync(process.env.VDEPLOY_TEST_STATS, JSON.stringify(counts));
    console.log(`python: ${line}`);
  } else {
    console.log(line);
  }
  process.exitCode = counts.failed > 0 ? 1 : 0;
}

await main();
