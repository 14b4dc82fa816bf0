// Spec output for people, then the one plain summary line CI reads: "N passed, N failed[, N skipped]".
'use strict';
const Mocha = require('mocha');
const { Spec } = Mocha.reporters;
const { EVENT_RUN_END } = Mocha.Runner.constants;

class VdeployReporter extends Spec {
  constructor(runner, options) {
    super(runner, options);
    runner.once(EVENT_RUN_END, () => {
      const s = runner.stats || {};
      let line = `${s.passes || 0} passed, ${s.failures || 0} failed`;
      if (s.pending) line += `, ${s.pending} skipped`;
      process.stdout.write(`${line}\n`);
    });
  }
}
module.exports = VdeployReporter;
