/** Whether a local process still runs: the one check behind every "is its vdeploy gone?" question. */

/** Signal 0 checks without signalling; EPERM means it exists (another user's process). */
export function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
