/** What running a command produced, as a value (in the spirit of zx's ProcessOutput). */
export interface CommandResult {
  /** Exit status; null when the process was killed by a signal or the channel closed without one. */
  exitCode: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  /** Wall-clock milliseconds from start to exit. */
  ms: number;
}
