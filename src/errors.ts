/**
 * The few error classes vdeploy throws on purpose. Each carries a `hint` that tells the user how to
 * fix the problem; the CLI's one top-level catch turns them into a one-line message and an exit code.
 * Anything else that escapes is a bug and is reported as one.
 */
import type { CommandResult } from './remote/command-result.js';

export class VdeployError extends Error {
  readonly hint: string | undefined;
  /** Process exit code the CLI uses when this error ends a command. */
  readonly exitCode: number = 1;
  constructor(message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.hint = options.hint;
  }
}

/** Bad deployfile, flags, selectors or other user input: nothing was changed. Exit 2. */
export class ConfigError extends VdeployError {
  override readonly exitCode = 2;
}

/** A host could not be reached, authenticated or trusted. */
export class ConnectError extends VdeployError {
  readonly host: string;
  constructor(host: string, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, options);
    this.host = host;
  }
}

/** A remote (or local) command exited non-zero or was killed; carries the whole result. */
export class RemoteCommandError extends VdeployError {
  readonly result: CommandResult;
  readonly command: string;
  constructor(command: string, result: CommandResult, options: { hint?: string; message?: string } = {}) {
    super(options.message ?? describeFailure(command, result), { hint: options.hint });
    this.command = command;
    this.result = result;
  }
}

/**
 * A script vdeploy runs on a host answered with something its contract (src/remote/contracts.ts) does
 * not allow, or nothing: vdeploy and the script disagree, or something else wrote to its output.
 */
export class ProtocolError extends VdeployError {
  readonly host: string;
  readonly script: string;
  constructor(host: string, script: string, why: string, options: { hint?: string } = {}) {
    super(`the ${script} script on ${host} gave an answer vdeploy cannot read (${why})`, {
      hint: options.hint ?? 'this is likely a vdeploy bug, or something on the host prints to stdout when python3 starts (sitecustomize?); please report it with this message',
    });
    this.host = host;
    this.script = script;
  }
}

/** The user interrupted (Ctrl-C, or quit at a prompt). Exit 130. */
export class InterruptedError extends VdeployError {
  override readonly exitCode = 130;
}

function describeFailure(command: string, result: CommandResult): string {
  const how = result.signal ? `was killed by ${result.signal}` : `exited with ${result.exitCode}`;
  const tail = lastLines(result.stderr, 5);
  return `\`${command}\` ${how}${tail ? `: ${tail}` : ''}`;
}

/** The last `n` non-empty lines of a command's output, joined for a one-line message. */
export function lastLines(text: string, n: number): string {
  return text
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => l.length > 0)
    .slice(-n)
    .join(' | ');
}

/** `{hint}` of a VdeployError that has one, for spreading into a report; `{}` otherwise. */
export function hintOf(err: unknown): { hint?: string } {
  return err instanceof VdeployError && err.hint ? { hint: err.hint } : {};
}
