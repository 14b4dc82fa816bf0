/**
 * `relocateFleet()`: relocate the deployfile's selected venvs, over SSH, hosts in parallel (up to the
 * deployfile's ssh.concurrency). Each venv's outcome is data: what was done, or the error that
 * stopped it (the others still run). Only bad input throws: the selection, or two venvs of one host
 * sent to one path. `relocateHere()` is the same for a venv on this machine.
 */
import type { ResolvedConfig } from '../config/resolve-config.js';
import { ConfigError, VdeployError } from '../errors.js';
import { createHostConnector, type HostConnector, type HostConnectorOptions } from '../remote/connect-host.js';
import { LocalConnection } from '../remote/local-connection.js';
import { Semaphore } from '../remote/semaphore.js';
import { selectVenvs, type SelectVenvsOptions } from '../selectors/select-venvs.js';
import { relocateVenv, type RelocateRequest, type RelocateResult } from './relocate.js';

/** What stopped one venv's relocation (a VdeployError's message, hint and exit code). */
export interface RelocateEntryError {
  message: string;
  hint: string | null;
  exitCode: number;
}

/** One venv's outcome. target: the local path, or the deployfile venv's `user@host:/path`. */
export type RelocateEntry =
  | { target: string; result: RelocateResult; error?: undefined }
  | { target: string; result?: undefined; error: RelocateEntryError };

export interface RelocateFleetOptions {
  /** Connections to use (left open); default: a connector made from `ssh`, closed at the end. */
  connector?: HostConnector;
  ssh?: HostConnectorOptions;
  /** Hosts relocated at once (default: the deployfile's ssh.concurrency). */
  concurrency?: number;
  signal?: AbortSignal;
}

/** Relocates every selected venv with the same request (its venv is each venv's path). */
export async function relocateFleet(
  config: ResolvedConfig,
  selection: SelectVenvsOptions,
  request: Omit<RelocateRequest, 'venv'>,
  options: RelocateFleetOptions = {},
): Promise<RelocateEntry[]> {
  const venvs = selectVenvs(config, selection);
  refuseReleases(venvs);
  if (request.newPath !== undefined && request.newPath !== 'auto') {
    const hosts = new Map<string, string>();
    for (const v of venvs) {
      const other = hosts.get(v.host.name);
      if (other) {
        const selected = selection.selectors?.length ? `"${selection.selectors.join(' ')}" selects` : 'the selection holds';
        throw new ConfigError(`${selected} two venvs on ${v.host.name} (${other} and ${v.id}); they cannot both move to ${request.newPath}`, {
          hint: 'select one venv per host (host:/path), or use --update-path auto',
        });
      }
      hosts.set(v.host.name, v.id);
    }
  }
  const connector = options.connector ?? createHostConnector(config, options.ssh);
  const limit = new Semaphore(options.concurrency ?? config.ssh.concurrency);
  const runOptions = options.signal ? { signal: options.signal } : {};
  try {
    return await Promise.all(
      venvs.map((v) =>
        limit.run(() =>
          relocateEntry(v.id, async () => {
            options.signal?.throwIfAborted();
            const conn = await connector.connect(v.host);
            return relocateVenv(conn, { ...request, venv: v.path }, v.user !== v.host.user ? { ...runOptions, runAs: v.user, host: v.host.name, login: v.host.user } : runOptions);
          }),
        ),
      ),
    );
  } finally {
    if (!options.connector) await connector.closeAll();
  }
}

/**
 * An app root of the releases layout is no venv to relocate: each deploy builds its next release by
 * cloning and relocating the live one, and rewriting a release in place would change the live app
 * under it. Refused before any connection, so nothing is half-relocated.
 */
function refuseReleases(venvs: ReturnType<typeof selectVenvs>): void {
  const app = venvs.find((v) => v.releases);
  if (!app) return;
  const others = venvs.filter((v) => v.releases).length - 1;
  throw new ConfigError(
    `${app.id}${others > 0 ? ` (and ${others} more)` : ''} is declared with \`releases\`: each deploy builds a new, relocated release there, so relocate (for in-place venvs) leaves it alone`,
    { hint: `deploy it instead (\`vdeploy deploy ${app.host.name}:${app.path}\`); select only in-place venvs to relocate (host:/path)` },
  );
}

/** Relocates the venv at `request.venv` on this machine. */
export function relocateHere(request: RelocateRequest, options: { signal?: AbortSignal } = {}): Promise<RelocateEntry> {
  return relocateEntry(request.venv, () => relocateVenv(new LocalConnection(), request, options));
}

/** The outcome of `run` as an entry; anything but a VdeployError is a bug and is thrown. */
async function relocateEntry(target: string, run: () => Promise<RelocateResult>): Promise<RelocateEntry> {
  try {
    return { target, result: await run() };
  } catch (err) {
    if (!(err instanceof VdeployError)) throw err;
    return { target, error: { message: err.message, hint: err.hint ?? null, exitCode: err.exitCode } };
  }
}
