/**
 * POSIX shell quoting for commands that run through a remote login shell. SSH only carries one command
 * string, so every remote command is built from an argv array and quoted here; user text is never
 * pasted into a command line.
 */
import { VdeployError } from '../errors.js';

// Characters no POSIX shell treats specially anywhere in a word; anything else gets single quotes.
const SAFE_WORD = /^[A-Za-z0-9_@%+=:,./-]+$/;

// Words that are keywords when they start a command; quoted they are ordinary command names.
const RESERVED_WORDS = new Set([
  'case', 'do', 'done', 'elif', 'else', 'esac', 'fi', 'for', 'if', 'in', 'then', 'until', 'while',
  'function', 'select', 'time', 'coproc',
]);

/** Quote one argument so the shell passes it through byte for byte (newlines, `$()`, quotes included). */
export function quoteArg(arg: string): string {
  if (arg.includes('\0')) {
    throw new VdeployError(`command argument ${JSON.stringify(arg.slice(0, 40))} contains a NUL byte`, {
      hint: 'arguments are C strings on the remote side; remove the NUL byte',
    });
  }
  if (arg.length > 0 && SAFE_WORD.test(arg)) return arg;
  // Inside single quotes nothing is special except the closing quote, which is spelled '\''.
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** Quote an argv array into one command line that runs exactly argv[0] with argv[1..]. */
export function quoteCommand(argv: readonly string[]): string {
  if (argv.length === 0) throw new VdeployError('cannot run an empty command', { hint: 'pass at least argv[0]' });
  const [first, ...rest] = argv as [string, ...string[]];
  return [quoteCommandName(first), ...rest.map(quoteArg)].join(' ');
}

// In command position `A=b` would be an assignment and `if` a keyword; quoting keeps them plain names.
function quoteCommandName(name: string): string {
  const quoted = quoteArg(name);
  // A word left bare by quoteArg holds only safe characters, so plain single quotes suffice.
  return quoted === name && (name.includes('=') || RESERVED_WORDS.has(name)) ? `'${name}'` : quoted;
}
