#!/usr/bin/env node
// npm test: installs what the tests need (scripts/ensure-test-deps.mjs), builds, then runs every tier:
//   python       pyflakes3 + the Python tests under every host Python (scripts/test-python.mjs)
//   unit         test/unit: pure TypeScript, no process, no Python
//   integration  test/integration: runs Python, shells, builds venvs
//   e2e          test/e2e: real sshd hosts, through the built CLI
//   node22       unit + the npm package smoke (test/e2e/npm-package.test.ts) under Node 22, and
//   node24       under Node 24, both from the npm registry (scripts/test-on-node.mjs)
// A failing tier does not stop the others. The output ends with each tier's wall time and then ONE
// plain line, "N passed, N failed[, N skipped]", that counts every tier (what .ci/run reads); the
// tiers label their own lines ("unit: ...") so that they are not taken for it. The exit code is 1
// when anything failed. `node scripts/test.mjs unit python` runs only those tiers (still building).
// A tier that has reported but does not exit (a child process, socket or timer some test left
// behind) is stopped after GRACE_MS, with everything it started, and counted as one failure.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const mocha = join(root, 'node_modules', '.bin', 'mocha');
const TIERS = {
  python: [process.execPath, join(root, 'scripts', 'test-python.mjs')],
  unit: [mocha, 'test/unit/**/*.test.ts'],
  integration: [mocha, 'test/integration/**/*.test.ts'],
  e2e: [mocha, 'test/e2e/**/*.test.ts'],
  node22: [process.execPath, join(root, 'scripts', 'test-on-node.mjs'), '22'],
  node24: [process.execPath, join(root, 'scripts', 'test-on-node.mjs'), '24'],
};

const wanted = process.argv.slice(2);
const unknown = wanted.filter((t) => !(t in TIERS));
if (unknown.length > 0) {
  console.error(`error: unknown test tier ${unknown.join(', ')}\nhint: the tiers are ${Object.keys(TIERS).join(', ')}`);
  process.exit(2);
}
const tiers = wanted.length > 0 ? Object.keys(TIERS).filter((t) => wanted.includes(t)) : Object.keys(TIERS);

const GRACE_MS = 30_000;

/** A tier in its own process group; resolves when it exits (stopped GRACE_MS after it wrote its counts, if need be). */
function runTier(argv, env, statsFile) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(argv[0], argv.slice(1), { cwd: root, env, stdio: 'inherit', detached: true });
    const signalGroup = (signal) => {
      try {
        process.kill(-child.pid, signal);
      } catch {
        // already gone
      }
    };
    // Detached, it no longer gets the terminal's Ctrl-C: pass it on, then stop as interrupted.
    const onSignal = (signal) => {
      signalGroup(signal);
      child.once('exit', () => process.exit(130));
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    let hung = false;
    let grace;
    const poll = setInterval(() => {
      if (grace || !existsSync(statsFile)) return;
      grace = setTimeout(() => {
        hung = true;
        console.log(`\n${env.VDEPLOY_TEST_TIER}: reported but did not exit within ${GRACE_MS / 1000} s (a child process, socket or timer left open?): stopping it`);
        signalGroup('SIGTERM');
        setTimeout(() => signalGroup('SIGKILL'), 5000).unref();
      }, GRACE_MS);
    }, 1000);
    const done = (status) => {
      clearInterval(poll);
      clearTimeout(grace);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      resolve({ ok: status === 0 && !hung, hung, status, seconds: (Date.now() - started) / 1000 });
    };
    child.once('error', (error) => done(error.message));
    child.once('exit', (code, signal) => done(code ?? signal));
  });
}

function run(argv, env = process.env) {
  const started = Date.now();
  const r = spawnSync(argv[0], argv.slice(1), { cwd: root, env, stdio: 'inherit' });
  return { ok: r.status === 0, status: r.status ?? r.signal ?? r.error?.message, seconds: (Date.now() - started) / 1000 };
}

function finish(totals, failedSetup) {
  let line = `${totals.passed} passed, ${totals.failed + failedSetup} failed`;
  if (totals.skipped) line += `, ${totals.skipped} skipped`;
  console.log(line);
  process.exit(totals.failed + failedSetup > 0 ? 1 : 0);
}

const totals = { passed: 0, failed: 0, skipped: 0 };
let setupSeconds = 0;
for (const [name, argv] of [
  ['test prerequisites', [process.execPath, join(root, 'scripts', 'ensure-test-deps.mjs')]],
  ['build', ['npm', 'run', '--silent', 'build']],
]) {
  const r = run(argv);
  setupSeconds += r.seconds;
  if (!r.ok) {
    console.log(`\n${name} failed (${r.status}): no test ran`);
    finish(totals, 1);
  }
}

const dir = mkdtempSync(join(tmpdir(), 'vdeploy-test-stats-'));
const times = [];
for (const tier of tiers) {
  console.log(`\n=== ${tier} ===`);
  const statsFile = join(dir, `${tier}.json`);
  const r = await runTier(TIERS[tier], { ...process.env, VDEPLOY_TEST_STATS: statsFile, VDEPLOY_TEST_TIER: tier }, statsFile);
  let counts;
  try {
    counts = JSON.parse(readFileSync(statsFile, 'utf8'));
  } catch {
    // It stopped before reporting (a file that does not load, a crash): one failure, said as such.
    counts = { passed: 0, failed: 1, skipped: 0 };
    console.log(`${tier}: stopped without a summary (exit ${r.status})`);
  }
  // A non-zero exit with no failure counted (mocha's own error, a lint problem) is still a failure;
  // so is a tier that would not exit.
  if ((!r.ok && counts.failed === 0) || r.hung) counts.failed += 1;
  for (const k of Object.keys(totals)) totals[k] += counts[k] ?? 0;
  times.push({ tier, seconds: r.seconds, counts });
}
rmSync(dir, { recursive: true, force: true });

console.log('\nwall time per tier:');
console.log(`  ${'(deps+build)'.padEnd(12)} ${setupSeconds.toFixed(1).padStart(7)} s`);
for (const { tier, seconds, counts } of times) {
  const skipped = counts.skipped ? `, ${counts.skipped} skipped` : '';
  console.log(`  ${tier.padEnd(12)} ${seconds.toFixed(1).padStart(7)} s   ${counts.passed} passed, ${counts.failed} failed${skipped}`);
}
finish(totals, 0);
