/**
 * Ctrl-C handling. Outside of an apply, SIGINT/SIGTERM exit at once with 130. During an apply, the
 * first one calls `first` (stop starting new work) and a second exits at once.
 */
import { EXIT } from './report-error.js';

const SIGNALS = ['SIGINT', 'SIGTERM'] as const;

function exitNow(): void {
  process.exit(EXIT.interrupted);
}

export function installDefaultInterrupt(): void {
  for (const s of SIGNALS) process.on(s, exitNow);
}

/** Replace the default handler until the returned function is called. */
export function onInterrupt(first: () => void): () => void {
  let seen = false;
  const handler = () => {
    if (seen) exitNow();
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
