#!/usr/bin/env node
// npm test: installs what the tests need (scripts/ensure-test-deps.mjs), builds, then runs every tier:
//   python       pyflakes3 + the Python tests under every host Python (scripts/test-python.mjs)
//   unit         test/unit: pure TypeScript, no process, no Python
//   integration  test/integration: runs Python, shells, builds venvs
//   e2e          test/e2e: real sshd hosts, through the built CLI
//   node22       unit + the npm package smoke (test/e2e/npm-package.test.ts) under Node 22, and
//   node24       under Node 24, both from the npm registry (scripts/test-on-node.mjs)
// Two at a time (VDEPLOY_TEST_JOBS, default 2; 1 runs them one after another as before), longest
// first, and the e2e tier as VDEPLOY_E2E_SHARDS (default 2) mocha processes, each a fixed share of
// the files (balanced by scripts/e2e-weights.json): much of an end-to-end test is waiting (for
// sshd, timeouts, health checks, gunicorn), and the tests share no state (each fleet has its own
// directory, known_hosts, keys, free ports and wheel caches; each mocha its own VDEPLOY_CACHE_DIR).
// Each tier's output is kept and printed whole when it ends, so that two tiers never interleave.
// A failing tier does not stop the others. The output ends with each tier's wall time and then ONE
// plain line, "N passed, N failed[, N skipped]", that counts every tier (what .ci/run reads); the
// tiers label their own lines ("unit: ...") so that they are not taken for it. The exit code is 1
// when anything failed. `node scripts/test.mjs unit python` runs only those tiers (still building).
// A tier that has reported but does not exit (a child process, socket or timer some test left
// behind) is stopped after GRACE_MS, with everything it started, and counted as one failure.
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
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
/** Rough seconds per tier (the e2e tier: per file, scripts/e2e-weights.json), to start the longest first. */
const TIER_SECONDS = { python: 135, unit: 12, integration: 50, node22: 35, node24: 41 };

const wanted = process.argv.slice(2);
const unknown = wanted.filter((t) => !(t in TIERS));
if (unknown.length > 0) {
  console.error(`error: unknown test tier ${unknown.join(', ')}\nhint: the tiers are ${Object.keys(TIERS).join(', ')}`);
  process.exit(2);
}
const tiers = wanted.length > 0 ? Object.keys(TIERS).filter((t) => wanted.includes(t)) : Object.keys(TIERS);

const GRACE_MS = 30_000;

function positiveInt(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^[1-9]\d*$/.test(raw)) {
    console.error(`error: ${name}=${raw} is not a positive whole number\nhint: e.g. ${name}=1 (one at a time)`);
    process.exit(2);
  }
  return Number(raw);
}
const JOBS = positiveInt('VDEPLOY_TEST_JOBS', 2);
const E2E_SHARDS = positiveInt('VDEPLOY_E2E_SHARDS', 2);

/**
 * The e2e files in `shards` groups of about equal expected time (longest first, each to the lightest
 * group). A file not in the weights (a new one) counts as the median file. Deterministic: the same
 * files always land in the same shard, so that a failure can be rerun the same way.
 */
function e2eShards(shards) {
  const files = readdirSync(join(root, 'test', 'e2e')).filter((f) => f.endsWith('.test.ts')).sort();
  const weights = JSON.parse(readFileSync(join(root, 'scripts', 'e2e-weights.json'), 'utf8')).seconds;
  const known = Object.values(weights).sort((a, b) => a - b);
  const median = known[Math.floor(known.length / 2)] ?? 30;
  const weightOf = (f) => weights[f] ?? median;
  const groups = Array.from({ length: Math.min(shards, files.length) }, () => ({ files: [], seconds: 0 }));
  for (const f of [...files].sort((a, b) => weightOf(b) - weightOf(a) || a.localeCompare(b))) {
    const lightest = groups.reduce((a, b) => (b.seconds < a.seconds ? b : a));
    lightest.files.push(`test/e2e/${f}`);
    lightest.seconds += weightOf(f);
  }
  return groups.map((g) => ({ ...g, files: g.files.sort() }));
}

/** What to run: one job per tier, the e2e tier as its shards. */
function jobsFor(selected) {
  const jobs = [];
  for (const tier of selected) {
    if (tier === 'e2e' && E2E_SHARDS > 1) {
      e2eShards(E2E_SHARDS).forEach((g, i, all) => {
        jobs.push({ tier, name: `e2e#${i + 1}`, argv: [mocha, ...g.files], seconds: g.seconds, note: `${g.files.length} of the e2e files` });
        if (i === all.length - 1) jobs.at(-1).shards = all.length;
      });
    } else {
      jobs.push({ tier, name: tier, argv: TIERS[tier], seconds: tier === 'e2e' ? 1200 : TIER_SECONDS[tier] ?? 60 });
    }
  }
  return jobs;
}

const running = new Set();
let interrupted = false;
function signalGroup(child, signal) {
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}
// Detached, the tiers no longer get the terminal's Ctrl-C: pass it on, then stop as interrupted.
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    interrupted = true;
    for (const child of running) signalGroup(child, signal);
    if (running.size === 0) process.exit(130);
  });
}

/** A job in its own process group, its output to `logFile`; resolves when it exits (stopped GRACE_MS after it wrote its counts, if need be). */
function runJob(job, env, statsFile, logFile) {
  return new Promise((resolve) => {
    const started = Date.now();
    const out = openSync(logFile, 'w');
    const child = spawn(job.argv[0], job.argv.slice(1), { cwd: root, env, stdio: ['ignore', out, out], detached: true });
    closeSync(out);
    running.add(child);
    let hung = false;
    let grace;
    const poll = setInterval(() => {
      if (grace || !existsSync(statsFile)) return;
      grace = setTimeout(() => {
        hung = true;
        console.log(`\n${job.name}: reported but did not exit within ${GRACE_MS / 1000} s (a child process, socket or timer left open?): stopping it`);
        signalGroup(child, 'SIGTERM');
        setTimeout(() => signalGroup(child, 'SIGKILL'), 5000).unref();
      }, GRACE_MS);
    }, 1000);
    const done = (status) => {
      clearInterval(poll);
      clearTimeout(grace);
      running.delete(child);
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
const queue = jobsFor(tiers).sort((a, b) => b.seconds - a.seconds);
const results = new Map();
const testsStarted = Date.now();
const stamp = () => `${((Date.now() - testsStarted) / 1000).toFixed(0).padStart(5)} s`;

async function worker() {
  for (let job = queue.shift(); job && !interrupted; job = queue.shift()) {
    console.log(`[${stamp()}] ${job.name} started${job.note ? ` (${job.note})` : ''}`);
    const statsFile = join(dir, `${job.name}.json`);
    const logFile = join(dir, `${job.name}.log`);
    const r = await runJob(job, { ...process.env, VDEPLOY_TEST_STATS: statsFile, VDEPLOY_TEST_TIER: job.name }, statsFile, logFile);
    console.log(`\n=== ${job.name} === (ended at ${stamp()}, took ${r.seconds.toFixed(1)} s)`);
    process.stdout.write(readFileSync(logFile, 'utf8'));
    let counts;
    try {
      counts = JSON.parse(readFileSync(statsFile, 'utf8'));
    } catch {
      // It stopped before reporting (a file that does not load, a crash): one failure, said as such.
      counts = { passed: 0, failed: 1, skipped: 0 };
      console.log(`${job.name}: stopped without a summary (exit ${r.status})`);
    }
    // A non-zero exit with no failure counted (mocha's own error, a lint problem) is still a failure;
    // so is a tier that would not exit.
    if ((!r.ok && counts.failed === 0) || r.hung) counts.failed += 1;
    results.set(job.name, { job, seconds: r.seconds, counts });
  }
}
await Promise.all(Array.from({ length: JOBS }, worker));
// Interrupted: what the stopped tiers printed so far has been shown; stop as interrupted.
if (interrupted) {
  rmSync(dir, { recursive: true, force: true });
  process.exit(130);
}
const wall = (Date.now() - testsStarted) / 1000;
rmSync(dir, { recursive: true, force: true });

const countsText = (c) => `${c.passed} passed, ${c.failed} failed${c.skipped ? `, ${c.skipped} skipped` : ''}`;
console.log(`\nwall time per tier (${JOBS} at a time${tiers.includes('e2e') && E2E_SHARDS > 1 ? `, e2e in ${E2E_SHARDS} shards` : ''}):`);
console.log(`  ${'(deps+build)'.padEnd(12)} ${setupSeconds.toFixed(1).padStart(7)} s`);
for (const tier of tiers) {
  const parts = [...results.values()].filter((r) => r.job.tier === tier);
  const counts = { passed: 0, failed: 0, skipped: 0 };
  for (const p of parts) for (const k of Object.keys(counts)) counts[k] += p.counts[k] ?? 0;
  for (const k of Object.keys(totals)) totals[k] += counts[k];
  const seconds = Math.max(...parts.map((p) => p.seconds));
  const shards = parts.length > 1 ? `   (${parts.map((p) => `${p.job.name} ${p.seconds.toFixed(1)} s: ${countsText(p.counts)}`).join('; ')})` : '';
  console.log(`  ${tier.padEnd(12)} ${seconds.toFixed(1).padStart(7)} s   ${countsText(counts)}${shards}`);
}
console.log(`  ${'(all tiers)'.padEnd(12)} ${wall.toFixed(1).padStart(7)} s`);
finish(totals, 0);
