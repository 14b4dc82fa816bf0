/**
 * yargs' own validation messages ("Unknown argument: colr", "Not enough non-option arguments: got 0,
 * need at least 1") rewritten as vdeploy's errors: one line naming the thing, a hint on how to fix it,
 * exit 2. yargs gives only the message text (runCli fixes its locale to English), so this reads it.
 */
import yargs, { type CommandModule } from 'yargs';
import { ConfigError } from '../errors.js';
import { nearestName } from '../selectors/nearest-name.js';
import { globalOptions } from './context.js';

/** Commands of every argument type. */
type Command = CommandModule<any, any>;

/** The message runCli gives yargs' demandCommand, recognised here. */
export const NO_COMMAND = 'no command given';

const nameOf = (c: Command) => String(c.command).split(' ')[0]!;

/** The command word in argv: the first word that is not an option or --deployfile's value. */
function commandWord(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') return argv[i + 1];
    if (arg === '--deployfile') i++;
    else if (!arg.startsWith('-')) return arg;
  }
  return undefined;
}

/** The long options a command accepts (its own and the global ones), for "did you mean". */
function optionNames(command: Command | undefined): string[] {
  let y = globalOptions(yargs([]));
  if (command && typeof command.builder === 'function') y = (command.builder(y) as typeof y) ?? y;
  // getOptions is public in yargs 18 but missing from @types/yargs 17.
  const { key } = (y as unknown as { getOptions(): { key: Record<string, unknown> } }).getOptions();
  return Object.keys(key).filter((k) => k.length > 1);
}

/** Was `name` typed as an option (`--name`, `--name=…`, `--no-name`, `-n`)? */
function typedAsOption(argv: readonly string[], name: string): boolean {
  return argv.some((a) => a.startsWith('-') && a.replace(/^--?(no-)?/, '').split('=')[0] === name);
}

export function usageError(message: string, argv: readonly string[], commands: readonly Command[]): ConfigError {
  const word = commandWord(argv);
  const command = commands.find((c) => nameOf(c) === word);
  const usage = command ? `usage: vdeploy ${String(command.command)} [options]; \`vdeploy ${word} --help\` says more` : 'run `vdeploy --help` (or `vdeploy COMMAND --help`) for usage';
  const listCommands = `commands: ${commands.map(nameOf).join(', ')}`;

  if (message === NO_COMMAND) return new ConfigError('no command given', { hint: `${listCommands}; \`vdeploy --help\` describes them` });

  const unknown = /^Unknown arguments?: (.+)$/.exec(message);
  if (unknown) {
    const names = unknown[1]!.split(', ');
    if (!command && word !== undefined) {
      const near = nearestName(word, commands.map(nameOf));
      return new ConfigError(`unknown command "${word}"`, { hint: near ? `did you mean \`vdeploy ${near}\`? (${listCommands})` : listCommands });
    }
    const option = names.find((n) => typedAsOption(argv, n));
    if (option !== undefined) {
      const flag = `${option.length === 1 ? '-' : '--'}${option}`;
      const near = nearestName(option, optionNames(command));
      return new ConfigError(`unknown option ${flag}${word ? ` for vdeploy ${word}` : ''}`, { hint: near ? `did you mean --${near}? ${usage}` : usage });
    }
    return new ConfigError(`unexpected argument "${names[0]}"${word ? ` for vdeploy ${word}` : ''}`, { hint: usage });
  }

  if (/^Not enough non-option arguments/.test(message) && command) {
    const needed = [...String(command.command).matchAll(/<([^>.]+)(\.\.)?>/g)].map((m) => (m[2] ? `one or more ${m[1]!.toUpperCase()}` : `${/^[aeiou]/i.test(m[1]!) ? 'an' : 'a'} ${m[1]!.toUpperCase()}`));
    return new ConfigError(`vdeploy ${word} needs ${needed.join(' and ') || 'more arguments'}`, { hint: usage });
  }

  const noValue = /^Not enough arguments following: (.+)$/.exec(message);
  if (noValue) return new ConfigError(`--${noValue[1]} needs a value`, { hint: usage });

  const choice = /Argument: (\S+), Given: (.*), Choices: (.*)$/m.exec(message);
  if (choice) {
    const choices = choice[3]!.replaceAll('"', '');
    // A positional (`cache <action>`) is written without dashes.
    const positional = command !== undefined && String(command.command).includes(`<${choice[1]}>`);
    if (positional) return new ConfigError(`${choice[1]!.toUpperCase()} must be one of ${choices}; got ${choice[2]}`, { hint: `e.g. vdeploy ${word} ${choices.split(', ')[0]}` });
    return new ConfigError(`--${choice[1]} must be one of ${choices}; got ${choice[2]}`, { hint: `e.g. --${choice[1]} ${choices.split(', ')[0]}` });
  }

  const missing = /^Missing required arguments?: (.+)$/.exec(message);
  if (missing) return new ConfigError(`missing required option --${missing[1]!.split(', ').join(', --')}`, { hint: usage });

  // Anything else yargs says, on one line.
  return new ConfigError(message.replace(/\s*\n\s*/g, '; '), { hint: usage });
}
