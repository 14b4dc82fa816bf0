/**
 * The SSH flags of commands that connect to hosts (--known-hosts, --ssh-config,
 * --strict-host-key-checking), and turning them into HostConnectorOptions: the passphrase prompt on a
 * terminal and printing the connector's warnings live here, since the core never prints or asks.
 */
import { resolve } from 'node:path';
import chalk from 'chalk';
import type { Argv } from 'yargs';
import type { StrictHostKeyChecking } from '../config/schema.js';
import { InterruptedError } from '../errors.js';
import type { HostConnectorOptions } from '../remote/connect-host.js';
import type { Output } from './output.js';

export interface SshArgs {
  knownHosts?: string[];
  sshConfig?: string;
  strictHostKeyChecking?: StrictHostKeyChecking;
}

/** The yargs declarations, for a command builder: `sshOptions(y.option(...))`. */
export const SSH_OPTIONS = {
  'known-hosts': {
    type: 'string',
    array: true,
    requiresArg: true,
    describe: 'known_hosts FILE consulted first (repeatable); accept-new records new keys in the first one',
  },
  'ssh-config': {
    type: 'string',
    requiresArg: true,
    describe: 'Read this ssh_config FILE instead of ~/.ssh/config (Match blocks are ignored)',
  },
  'strict-host-key-checking': {
    type: 'string',
    choices: ['yes', 'accept-new', 'no'],
    describe: 'Unknown host keys: yes = refuse, accept-new = record, no = accept with a warning (changed keys are always refused)',
  },
} as const;

export function sshOptions<T>(yargs: Argv<T>) {
  return yargs.options(SSH_OPTIONS);
}

export interface HostConnectorIo {
  /** Is there a person at a terminal to ask for a passphrase? Default: stdin and stderr are TTYs. */
  interactive?: boolean;
  /** The question itself; default: @inquirer/prompts' password prompt on stderr. */
  ask?: (message: string) => Promise<string>;
}

/**
 * HostConnectorOptions from the flags (paths resolved against the current directory): warnings go
 * to stderr, and an encrypted key's passphrase is asked on the terminal when there is one (otherwise
 * only VDEPLOY_SSH_PASSPHRASE or ssh-agent can unlock it).
 */
export function hostConnectorOptions(args: SshArgs, output: Output, io: HostConnectorIo = {}): HostConnectorOptions {
  const interactive = io.interactive ?? Boolean(process.stdin.isTTY && process.stderr.isTTY);
  const ask = io.ask ?? askOnTerminal;
  return {
    ...(args.knownHosts?.length ? { extraKnownHosts: args.knownHosts.map((f) => resolve(f)) } : {}),
    ...(args.sshConfig ? { sshConfigFile: resolve(args.sshConfig) } : {}),
    ...(args.strictHostKeyChecking ? { strictHostKeyChecking: args.strictHostKeyChecking } : {}),
    onWarning: (message) => output.err(`${chalk.yellow('warning:')} ${message}`),
    ...(interactive
      ? {
          // Enter alone skips the key, as with ssh.
          passphrase: async (keyFile: string, attempt: number) =>
            (await ask(`${attempt > 1 ? 'Wrong passphrase. ' : ''}Passphrase for ${keyFile} (Enter to skip):`)) || undefined,
        }
      : {}),
  };
}

async function askOnTerminal(message: string): Promise<string> {
  const { password } = await import('@inquirer/prompts');
  try {
    // On stderr: stdout may be a pipe or JSON.
    return await password({ message, mask: true }, { output: process.stderr });
  } catch (err) {
    if (err instanceof Error && err.name === 'ExitPromptError') {
      throw new InterruptedError('interrupted at the passphrase prompt; nothing was deployed');
    }
    throw err;
  }
}
