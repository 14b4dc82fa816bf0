/**
 * The per-venv question, one line and one key, as `git add -p` asks:
 *
 *   (1/3) Deploy to app@web1:/srv/app/venv [y,n,a,q,d,?]? y
 *
 * y yes, n no, a this and all remaining, q quit, d this venv's planned changes, ? help. The key is
 * read from the terminal in raw mode (no Enter); the mode is put back however the question ends.
 */
import { emitKeypressEvents } from 'node:readline';
import { InterruptedError } from '../errors.js';

type Answer = 'yes' | 'no' | 'all' | 'quit';

export interface ConfirmOptions {
  /** "Deploy to" or "Roll back". */
  verb?: string;
  /** The question for one id, without its counter and keys (default: `${verb} ${id}`): a host's files ask `Apply files to host1`. */
  question?: (id: string) => string;
  /** The venv's planned changes in full, for `d`. */
  detail?: (id: string) => string[];
  input?: NodeJS.ReadStream;
  /** The question is for the person at the terminal: stderr, as stdout may be a pipe or JSON. */
  output?: NodeJS.WriteStream;
}

const KEYS: Record<string, Answer> = { y: 'yes', n: 'no', a: 'all', q: 'quit' };

export const CONFIRM_HELP = [
  'y - yes, this venv (or this host\'s files)',
  'n - no, not this one',
  'a - this one and all remaining ones',
  'q - quit: no more venvs (those already answered y are still applied)',
  "d - show its planned changes",
  '? - this help',
];

/**
 * Ask for each venv id in turn; returns the ids accepted. `quit` stops asking (what was accepted so
 * far is still deployed); Ctrl-C at a prompt is an InterruptedError and nothing is applied.
 */
export async function confirmVenvs(ids: readonly string[], options: ConfirmOptions = {}): Promise<Set<string>> {
  const verb = options.verb ?? 'Deploy to';
  const out = options.output ?? process.stderr;
  const keys = openKeyReader(options.input ?? process.stdin);
  const accepted = new Set<string>();
  try {
    for (const [i, id] of ids.entries()) {
      const what = options.question?.(id) ?? `${verb} ${id}`;
      const answer = await ask(keys, out, `(${i + 1}/${ids.length}) ${what} [y,n,a,q,d,?]? `, () => options.detail?.(id) ?? []);
      if (answer === 'yes') accepted.add(id);
      if (answer === 'all') {
        for (const rest of ids.slice(i)) accepted.add(rest);
        break;
      }
      if (answer === 'quit') break;
    }
  } finally {
    keys.close();
  }
  return accepted;
}

async function ask(keys: KeyReader, out: NodeJS.WriteStream, question: string, detail: () => string[]): Promise<Answer> {
  out.write(question);
  for (;;) {
    const { str, key } = await keys.next();
    if (key?.ctrl && key.name === 'c') {
      out.write('^C\n');
      throw new InterruptedError('interrupted at the confirmation prompt; nothing was deployed');
    }
    // Ctrl-D (end of input) is "no more", as in `git add -p`; other control keys mean nothing here.
    const eof = Boolean(key?.ctrl && key.name === 'd');
    if (key?.ctrl && !eof) continue;
    // Enter (typed out of habit after a key) asks nothing new: the line stays as it is.
    if (key?.name === 'return' || key?.name === 'enter') continue;
    const typed = eof ? 'q' : (str ?? '').toLowerCase();
    out.write(`${/^[\x20-\x7e]$/.test(typed) && !eof ? typed : ''}\n`);
    const answer = KEYS[typed];
    if (answer) return answer;
    const lines = typed === 'd' ? detail() : CONFIRM_HELP;
    for (const line of lines) out.write(`${line}\n`);
    out.write(question);
  }
}

interface Key {
  str: string | undefined;
  key: { name?: string; ctrl?: boolean } | undefined;
}

interface KeyReader {
  next(): Promise<Key>;
  close(): void;
}

/**
 * Keys from a terminal in raw mode, queued so keys typed ahead are not lost. `close` puts the
 * terminal's mode back (Node also restores it if the process exits meanwhile).
 */
function openKeyReader(input: NodeJS.ReadStream): KeyReader {
  emitKeypressEvents(input);
  const wasRaw = input.isRaw;
  input.setRawMode(true);
  const queue: Key[] = [];
  let waiting: ((k: Key) => void) | undefined;
  const onKey = (str: string | undefined, key: Key['key']) => {
    const k = { str, key };
    if (waiting) {
      const w = waiting;
      waiting = undefined;
      w(k);
    } else queue.push(k);
  };
  input.on('keypress', onKey);
  input.resume();
  return {
    next: () => (queue.length > 0 ? Promise.resolve(queue.shift()!) : new Promise((resolve) => (waiting = resolve))),
    close: () => {
      input.off('keypress', onKey);
      input.setRawMode(wasRaw);
      // Paused stdin no longer keeps the process alive.
      input.pause();
    },
  };
}
