#!/usr/bin/env node
/**
 * The `vdeploy` executable (bundled to dist/cli/main.js by scripts/bundle-cli.mjs): the process-wide
 * parts — Ctrl-C handling, the pending-work check, the exit code — around runCli, which does the rest
 * and can be imported without them.
 */
import { hideBin } from 'yargs/helpers';
import { installDefaultInterrupt } from './interrupt.js';
import { EXIT } from './report-error.js';
import { runCli } from './run-cli.js';

installDefaultInterrupt();
// Node ends a process whose event loop is empty even while a promise is pending: a callback some
// library never called would otherwise look like a quiet success.
let finished = false;
process.once('beforeExit', () => {
  if (finished) return;
  process.stderr.write('internal error: vdeploy stopped with work still pending (a callback that never came)\nhint: this is a bug in vdeploy; please report it with the output of the same command run with --debug\n');
  process.exitCode = EXIT.targetFailed;
});
process.exitCode = await runCli(hideBin(process.argv));
finished = true;
