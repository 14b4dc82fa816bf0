/**
 * Config files ("mock /etc", issue 17, docs/files.md): the types the parts share. Desired files are
 * rendered locally (desired-files.ts), compared with what the host has (facts read by
 * vdeploy_remote/files.py, contract files-contract.ts) into a per-host plan (plan-files.ts), shown
 * (src/cli/render-files.ts), and applied by the host apply script after the venvs, before the reload.
 */

/** One file as the repository says the host should have it. */
export interface DesiredFile {
  /** Absolute path on the host. */
  dest: string;
  /** The local source, relative to the deployfile's directory (for messages and the plan). */
  source: string;
  /** Where it was declared, for messages: `files[2]` or `hosts[0].files[1]`. */
  entry: string;
  /** The bytes to write (templates rendered). */
  content: Buffer;
  sha256: string;
  /** Permission bits, e.g. 0o644 (0o755 for a source file that is executable). */
  mode: number;
  /** Absent: not managed (the file belongs to whoever writes it; drift ignores it). */
  owner?: string;
  group?: string;
  /** Shell command run on the uploaded temp file; `{path}` stands for that file. */
  validate?: string;
  /** Handlers this file triggers when it changes, as declared. */
  onChange: string[];
  /** Contents never shown (no diff in the plan, masked in --json). */
  secret: boolean;
}

/** A host's desired files, and how vdeploy works with them there. */
export interface HostFiles {
  host: string;
  /** File operations, facts and handlers run as root through `sudo -n` (login user is not root, and the host or an entry asks for sudo). */
  sudo: boolean;
  /** Where the host keeps vdeploy's record of managed files and pending handlers; absent: the default (docs/files.md). */
  stateDir?: string;
  /** In deployfile order; each dest once. */
  files: DesiredFile[];
}

/** What the host has at one desired path (files.py's facts). */
export interface FileFact {
  path: string;
  /** `other`: a directory, symlink or device: vdeploy never writes through or over it. */
  state: 'missing' | 'file' | 'other';
  sha256?: string;
  mode?: number;
  owner?: string;
  group?: string;
  size?: number;
  /** The current content (base64), sent when it differs from the desired sha256 and is small enough to diff. */
  content?: string;
}

/** The host's side for one host: each asked path, and vdeploy's record there. */
export interface HostFileFacts {
  files: FileFact[];
  /** Paths vdeploy wrote before (from the record), with the sha256 it wrote. */
  managed: Record<string, string>;
  /** Handlers an earlier run had to run and did not (failure, Ctrl-C, lost connection), in order. */
  pending: string[];
  /** The user the file operations run as on the host. */
  user: string;
}

export type FileAction = 'create' | 'update' | 'metadata' | 'unchanged' | 'blocked';

export interface FileChange {
  dest: string;
  source: string;
  action: FileAction;
  /** A unified diff of the content (update only; absent when secret, binary or too big to fetch). */
  diff?: string;
  /** Why no diff is shown, when there is none for an update: 'secret' | 'binary' | 'too big'. */
  noDiff?: string;
  secret: boolean;
  /** Owner, group or mode changes: [now, after]; modes as octal strings like '0644'. */
  meta?: { mode?: [string, string]; owner?: [string, string]; group?: [string, string] };
  /** The desired content's sha256 (apply checks the content it sends against it). */
  sha256: string;
  /** What the file gets: its mode as an octal string like '0644', and owner/group when the entry sets them. */
  mode?: string;
  owner?: string;
  group?: string;
  /** blocked: why vdeploy will not write it (a directory or symlink is there). */
  message?: string;
}

/** A host's file plan: part of HostPlan (`files`), shown by plan/deploy, applied by deploy. */
export interface FilesPlan {
  sudo: boolean;
  stateDir?: string;
  /** Every desired file, in deployfile order. */
  files: FileChange[];
  /** Paths vdeploy manages there that the repository no longer has. */
  orphans: string[];
  /** --prune-files: the orphans are removed by this apply (else only listed). */
  prune: boolean;
  /** Handlers left pending by an earlier run. */
  pending: string[];
  /** The handlers this apply runs, in order: pending ones first, then those a changed file triggers (each once). */
  handlers: string[];
  /** A unit under systemd/system/ changes: `systemctl daemon-reload` runs once before the handlers. */
  daemonReload: boolean;
  /** The host's files cannot be planned (facts unreadable: sudo refused…) or applied (a `blocked` file): the host fails. */
  error?: { message: string; hint?: string };
}

/** Whether a deploy has file work on the host: a change, a pending handler, or orphans to prune. */
export function filesNeedApply(plan: FilesPlan | undefined): boolean {
  if (plan === undefined || plan.error !== undefined) return false;
  return plan.files.some((f) => f.action !== 'unchanged') || plan.pending.length > 0 || (plan.prune && plan.orphans.length > 0);
}

/** One file apply writes: staged in a temp file beside `path`, checked, validated, then renamed. */
export interface ApplyWrite {
  path: string;
  /** base64 of the bytes to write. */
  content: string;
  sha256: string;
  /** Permission bits (st_mode & 0o7777), e.g. 420 for 0644. */
  mode: number;
  owner?: string;
  group?: string;
  /** `{path}` replaced by the shell-quoted temp path. */
  validate?: string;
}

/** An owner/group/mode change of a file whose content is already right. */
export interface ApplyMeta {
  path: string;
  mode: number;
  owner?: string;
  group?: string;
}

/** The `apply` request of vdeploy_remote/files.py (FILES-DESIGN.md, "Apply"). */
export interface ApplyFilesRequest {
  op: 'apply';
  stateDir: string | null;
  host: string;
  write: ApplyWrite[];
  meta: ApplyMeta[];
  /** Orphans removed (--prune-files), regular files only. */
  remove: string[];
  /** In order; `systemctl daemon-reload` first when a unit under systemd/system/ changed. */
  handlers: string[];
  /** The record after this apply: the desired set with their sha256, plus orphans that were kept. */
  managed: Record<string, string>;
}
