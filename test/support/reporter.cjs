// Spec output for people, then the one plain summary line CI reads: "N passed, N failed[, N skipped]".
// Under scripts/test.mjs (npm test), which runs several tiers and prints the one plain line itself,
// VDEPLOY_TEST_STATS names a file for this run's counts and the line is labelled with the tier
// ("unit: 3 passed, 0 failed"), so that it is not taken for the whole run's.
'use strict';
const { writeFileSync } = require('node:fs');
const Mocha = require('mocha');
const { Spec } = Mocha.reporters;
const { EVENT_RUN_END } = Mocha.Runner.constants;

class VdeployReporter extends Spec {
  constructor(runner, options) {
    super(runner, options);
    runner.once(EVENT_RUN_END, () => {
      const s = runner.stats || {};
      const counts = { passed: s.passes || 0, failed: s.failures || 0, skipped: s.pending || 0 };
      let line = `${counts.passed} passed, ${counts.failed} failed`;
      if (counts.skipped) line += `, ${counts.skipped} skipped`;
      const statsFile = process.env.VDEPLOY_TEST_STATS;
      if (statsFile) {
        writeFileSync(statsFile, JSON.stringify(counts));
        line = `${process.env.VDEPLOY_TEST_TIER || 'mocha'}: ${line}`;
      }
      process.stdout.write(`${line}\n`);
    });
  }
}
module.exports = VdeployReporter;
