/**
 * Who holds a venv's lock, as the apply that holds it wrote it (`{user, host, pid, startedAt}`: the
 * local vdeploy that started it), and whether that vdeploy still runs. A remote apply outlives a
 * vdeploy that was killed or lost its connection, so "pid 4711 holds the lock" alone sends the user
 * looking for a process that is gone.
 */
import { hostname } from 'node:os';
import { processExists } from '../process-exists.js';

export interface LockHolder {
  user?: string;
  host?: string;
  pid?: number;
  startedAt?: string;
  /**
   * The vdeploy that started the apply: `running`, `gone` (it ran on this machine and has ended, yet
   * its apply on the host still holds the lock), or `unknown` (another machine, or not said).
   */
  localProcess: 'running' | 'gone' | 'unknown';
}

export function describeHolder(raw: Record<string, unknown>, isAlive: (pid: number) => boolean = processExists): LockHolder {
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
  const pid = typeof raw.pid === 'number' && Number.isInteger(raw.pid) && raw.pid > 0 ? raw.pid : undefined;
  const holder = { user: str(raw.user), host: str(raw.host), pid, startedAt: str(raw.startedAt) };
  let localProcess: LockHolder['localProcess'] = 'unknown';
  // Only a pid of this machine can be checked; this very process holds no lock it is asking about.
  if (pid !== undefined && holder.host === hostname()) localProcess = pid !== process.pid && isAlive(pid) ? 'running' : 'gone';
  return { ...Object.fromEntries(Object.entries(holder).filter(([, v]) => v !== undefined)), localProcess };
}

/** The locked venv's message and hint, naming the holder and what became of its vdeploy. */
export function lockedMessage(venvId: string, holder: LockHolder): { message: string; hint: string } {
  const who = `${holder.user ?? '?'}@${holder.host ?? '?'}, pid ${holder.pid ?? '?'}, since ${holder.startedAt ?? '?'}`;
  if (holder.localProcess === 'gone') {
    return {
      message: `${venvId}: an apply started by a vdeploy that is no longer running (${who}) still holds the lock: that vdeploy was killed or lost its connection, and its apply goes on to the end on the host`,
      hint: 'wait for it (--lock-wait SECONDS); when it has finished, the next plan or deploy records what it did in release_log',
    };
  }
  return {
    message: `${venvId}: another deploy holds the lock (${who})`,
    hint: 'wait for it to finish, or pass --lock-wait SECONDS to wait for it',
  };
}
