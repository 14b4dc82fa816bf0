/**
 * Whether to colour each output stream, decided once per run by the usual conventions, strongest
 * first: --color / --no-color, then FORCE_COLOR (so a one-off `FORCE_COLOR=1 vdeploy … | less -R`
 * beats a NO_COLOR set in a shell profile, as in Node itself), then NO_COLOR (any non-empty value),
 * then "is this stream a terminal" (and not TERM=dumb). Per stream: `vdeploy status 2>log` keeps
 * colour on the terminal and none in the log, and the other way round.
 */
import { Chalk, chalkStderr, type ChalkInstance } from 'chalk';

export interface ColourChoice {
  out: boolean;
  err: boolean;
}

/**
 * The --color / --no-color flag, read from argv before yargs parses it: the decision is needed for
 * yargs' own errors (an unknown option) too, which come before any handler. The last one wins.
 */
export function colourFlag(argv: readonly string[]): boolean | undefined {
  let flag: boolean | undefined;
  for (const arg of argv) {
    if (arg === '--') break;
    if (arg === '--color' || arg === '--color=true') flag = true;
    else if (arg === '--no-color' || arg === '--color=false') flag = false;
  }
  return flag;
}

export function wantsColour(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv, flag: boolean | undefined): boolean {
  if (flag !== undefined) return flag;
  const force = env.FORCE_COLOR;
  if (force !== undefined && force !== '') return force !== '0' && force !== 'false';
  if (env.NO_COLOR) return false;
  return Boolean(stream.isTTY) && env.TERM !== 'dumb';
}

export function processColour(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): ColourChoice {
  const flag = colourFlag(argv);
  return { out: wantsColour(process.stdout, env, flag), err: wantsColour(process.stderr, env, flag) };
}

/**
 * The chalk level for a run: chalk (v5) reads it from stdout alone at import time and ignores
 * NO_COLOR. Lines are built without knowing their stream, so chalk colours when either stream may
 * show colour and Output strips it from the stream that must not (see output.ts).
 */
export function chalkLevel(choice: ColourChoice): ChalkInstance['level'] {
  if (!choice.out && !choice.err) return 0;
  return Math.max(1, new Chalk().level, chalkStderr.level) as ChalkInstance['level'];
}
