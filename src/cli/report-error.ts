/** The one top-level catch: maps errors to a message and an exit code. */
import chalk from 'chalk';
import { VdeployError } from '../errors.js';
import type { Output } from './output.js';

export const EXIT = { ok: 0, targetFailed: 1, usage: 2, interrupted: 130 } as const;

/** Prints the error (no stack unless `debug`) and returns the exit code to use. */
export function reportError(error: unknown, output: Output, debug: boolean): number {
  if (error instanceof VdeployError) {
    output.err(`${chalk.red('error:')} ${error.message}`);
    if (error.hint) output.err(`${chalk.dim('hint:')} ${error.hint}`);
    if (debug && error.stack) output.err(chalk.dim(error.stack));
    return error.exitCode;
  }
  const err = error instanceof Error ? error : new Error(String(error));
  output.err(`${chalk.red('internal error:')} ${err.message}`);
  output.err(`${chalk.dim('hint:')} this is a bug in vdeploy; please report it with the output of the same command run with --debug`);
  if (debug && err.stack) output.err(chalk.dim(err.stack));
  return EXIT.targetFailed;
}
