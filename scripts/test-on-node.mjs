#!/usr/bin/env node
// The node22 and node24 tiers of npm test (scripts/test.mjs): the unit tier and the package smoke
// (test/e2e/npm-package.test.ts: npm pack, npm install -g, vdeploy --version, init, add-wheel and a
// deploy to a real sshd host) under another Node than the machine's, so that package.json's
// `engines` says only what is proven.
//   node scripts/test-on-node.mjs MAJOR
// That Node comes from the npm registry's `node` package (`npx -p node@MAJOR`), kept in npm's cache:
// the first run downloads it (~30 MB), later ones reuse it. If it cannot be had (no network), the tier
// fails under CI=true, loudly; elsewhere it is counted as one skipped test and says why.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const SPECS = ['test/unit/**/*.test.ts', 'test/e2e/npm-package.test.ts'];
const FETCH_TIMEOUT_MS = 300_000;

const major = process.argv[2];
if (!/^\d+$/.test(major ?? '')) {
  console.error('usage: node scripts/test-on-node.mjs MAJOR   (e.g. 22)');
  process.exit(2);
}
const tier = process.env.VDEPLOY_TEST_TIER ?? `node${major}`;

/** Counts for scripts/test.mjs when mocha does not run, and the tier's own line. */
function report(counts, why) {
  if (process.env.VDEPLOY_TEST_STATS) writeFileSync(process.env.VDEPLOY_TEST_STATS, JSON.stringify(counts));
  console.log(`${tier}: ${why}`);
  console.log(`${tier}: ${counts.passed} passed, ${counts.failed} failed${counts.skipped ? `, ${counts.skipped} skipped` : ''}`);
  process.exit(counts.failed > 0 ? 1 : 0);
}

// --prefer-offline: a cached node@MAJOR is used without asking the registry for a newer patch release.
const fetched = spawnSync(
  'npx',
  ['--yes', '--prefer-offline', '--package', `node@${major}`, '--', 'node', '-p', 'process.execPath + " " + process.version'],
  { cwd: root, encoding: 'utf8', timeout: FETCH_TIMEOUT_MS },
);
const [node, version] = (fetched.stdout ?? '').trim().split('\n').pop()?.split(' ') ?? [];
if (fetched.status !== 0 || !node || !version?.startsWith(`v${major}.`)) {
  // npm's own lines that say what went wrong ("code ECONNREFUSED", "FetchError: request to ..."), not its stack.
  const lines = (fetched.error?.message ?? fetched.stderr ?? '').trim().split('\n');
  const telling = lines.filter((l) => /^npm error (code |\w*Error: )/.test(l));
  const cause = (telling.length > 0 ? telling : lines.slice(-3)).join('\n  ');
  const what = `could not get Node ${major} from the npm registry (npx -p node@${major}): ${cause || `exit ${fetched.status}`}`;
  if (process.env.CI === 'true') report({ passed: 0, failed: 1, skipped: 0 }, `${what}\n  CI=true: this is a failure, not a skip`);
  report({ passed: 0, failed: 0, skipped: 1 }, `skipped: ${what}`);
}

console.log(`${tier}: Node ${version} (${node})`);
// mocha starts its worker with process.execPath (for .mocharc's --import=tsx): that Node too.
const r = spawnSync(node, [join(root, 'node_modules', 'mocha', 'bin', 'mocha.js'), ...SPECS], { cwd: root, stdio: 'inherit' });
process.exit(r.status ?? 1);
