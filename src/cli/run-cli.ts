/**
 * vdeploy's command line: yargs wiring only; every command is one core call plus rendering. Importing
 * this module does nothing: main.ts (the `bin`) installs the process-wide handlers and calls runCli,
 * and tests call runCli in-process with an Output of their own.
 */
import { readFileSync } from 'node:fs';
import yargs from 'yargs';
import chalk from 'chalk';
import { addWheelCommand } from './commands/add-wheel.js';
import { buildCommand } from './commands/build.js';
import { cacheCommand } from './commands/cache.js';
import { deployCommand, planCommand, rollbackCommand } from './commands/deploy.js';
import { fetchCommand } from './commands/fetch.js';
import { initCommand } from './commands/init.js';
import { historyCommand, statusCommand } from './commands/status.js';
import { packageCommand } from './commands/package.js';
import { relocateCommand } from './commands/relocate.js';
import { releasesCommand } from './commands/releases.js';
import { venvsCommand } from './commands/venvs.js';
import { wheelsCommand } from './commands/wheels.js';
import { chalkLevel, processColour } from './colour.js';
import { globalOptions } from './context.js';
import { processOutput, type Output } from './output.js';
import { EXIT, reportError } from './report-error.js';
import { NO_COMMAND, usageError } from './usage-error.js';

export async function runCli(argv: string[], output: Output = processOutput(processColour(argv))): Promise<number> {
  let exitCode: number = EXIT.ok;
  const setExit = (code: number) => {
    exitCode = Math.max(exitCode, code);
  };
  const debug = argv.includes('--debug');
  chalk.level = chalkLevel(output.colour ?? { out: false, err: false });
  const commands = [
    initCommand(output),
    addWheelCommand(output, setExit),
    buildCommand(output),
    wheelsCommand(output),
    fetchCommand(output, setExit),
    venvsCommand(output),
    relocateCommand(output, setExit),
    planCommand(output, setExit),
    deployCommand(output, setExit),
    rollbackCommand(output, setExit),
    statusCommand(output, setExit),
    historyCommand(output, setExit),
    releasesCommand(output, setExit),
    packageCommand(output),
    cacheCommand(output),
  ];
  let parser = globalOptions(yargs(argv))
    .scriptName('vdeploy')
    // Its messages are read by usageError (usage-error.ts): they must not depend on the user's LANG.
    .locale('en')
    .usage('$0 <command> [options]\n\nDeploy Python applications to fleets of virtualenvs over SSH.');
  for (const command of commands) parser = parser.command(command as never);
  parser = parser
    // No recommendCommands: its message is only "Did you mean deploy?"; usageError says the command is
    // unknown and suggests the nearest one.
    .demandCommand(1, NO_COMMAND)
    .strict()
    .epilogue('Exit codes: 0 ok, 1 a target failed, 2 usage or config error, 130 interrupted. Docs: docs/cli.md')
    .help()
    .alias('h', 'help')
    .version(ownVersion())
    .wrap(Math.min(100, process.stdout.columns || 100))
    .fail((message, error) => {
      // yargs reports its own validation problems as a message (a YError for a missing option value);
      // errors thrown by handlers pass through.
      if (error && error.name !== 'YError') throw error;
      throw usageError(message ?? error?.message ?? '', argv, commands);
    });
  try {
    // With a parse callback yargs neither prints nor calls process.exit (--help, --version): what it
    // would print arrives here and goes through `output` like everything else.
    await parser.parseAsync(argv, (_error: Error | undefined, _argv: unknown, text: string) => {
      if (text) output.out(text);
    });
  } catch (error) {
    return Math.max(exitCode, reportError(error, output, debug));
  }
  return exitCode;
}

/** vdeploy's own version: yargs' default reads the nearest package.json, which may be the user's project. */
function ownVersion(): string {
  // From src/cli/ (tests), dist/cli/ (the library) and dist/cli/main.js (the bundle) alike, the package root is two up.
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}
