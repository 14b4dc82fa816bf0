/**
 * Ctrl-C handling. Outside of an apply, SIGINT/SIGTERM exit at once with 130. During an apply, the
 * first one calls `first` (stop starting new work) and a second calls `second` (say what was left
 * behind, put the terminal back) and exits at once.
 */
import { EXIT } from './report-error.js';

const SIGNALS = ['SIGINT', 'SIGTERM'] as const;

function exitNow(): void {
  process.exit(EXIT.interrupted);
}

export function installDefaultInterrupt(): void {
  for (const s of SIGNALS) process.on(s, exitNow);
}

/**
 * Replace the default handler until the returned function is called. `second` runs synchronously
 * right before the exit: it must not wait for anything (the user asked to stop waiting).
 */
export function onInterrupt(first: () => void, second: () => void = () => {}): () => void {
  let seen = false;
  const handler = () => {
    if (seen) {
      try {
        second();
      } finally {
        exitNow();
      }
    }
    seen = true;
    first();
  };
  for (const s of SIGNALS) {
    process.off(s, exitNow);
    process.on(s, handler);
  }
  return () => {
    for (const s of SIGNALS) {
      process.off(s, handler);
      process.on(s, exitNow);
    }
  };
}
