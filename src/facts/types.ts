/**
 * What vdeploy learns about a host and its venvs in one round trip (the "facts" of pyinfra's model).
 * Facts are plain data: operations (resolve, plan) turn them into steps without touching SSH.
 */
import type { MarkerEnvironment } from '../requirements/markers.js';

/** One distribution found installed in a venv's site-packages. */
export interface InstalledPackage {
  /** As its METADATA spells it. */
  name: string;
  /** PEP 503 normalized. */
  key: string;
  version: string;
}

/** What an interpreter is, for PEP 508 markers and wheel tag compatibility. */
export interface InterpreterFacts {
  /** `platform.python_version()`, e.g. "3.11.2". */
  version: string;
  /** `packaging.markers.default_environment()` for that interpreter. */
  markers: MarkerEnvironment;
  /** `packaging.tags.sys_tags()` as `py-abi-plat` strings, most preferred first. */
  supportedTags: string[];
}

export type VenvFacts =
  /** Nothing at the path: the plan creates the venv with its configured python (described by `interpreter`). */
  | {
      path: string;
      state: 'missing';
      interpreter: InterpreterFacts | null;
      interpreterError?: string;
      /** There is a venv, half-made by a deploy that failed or died before its first success: it is made anew. */
      halfMade?: true;
      /** Releases layout: an app root with no live release yet (its releases and history may exist). */
      releases?: ReleasesFacts;
      history?: Array<Record<string, unknown>>;
    }
  /**
   * Something at the path that is not a venv (no pyvenv.cfg / bin/python): never touched. Also a venv
   * whose bin/python exists but could not be probed (does not run, no packaging): `interpreterError` says why.
   */
  | { path: string; state: 'not-a-venv'; detail: string; interpreterError?: string }
  | {
      path: string;
      state: 'venv';
      interpreter: InterpreterFacts;
      installed: InstalledPackage[];
      /** The lines of `<venv>/.vdeploy/history.jsonl`, oldest first (unparsed: see src/history/). */
      history: Array<Record<string, unknown>>;
      /** pip's `~name` stash folders left in site-packages by a pip that died mid-way (absolute paths); a deploy removes them. */
      stashes?: string[];
      /** Releases layout: the path is the app root, the rest describes the live release (`current`). */
      releases?: ReleasesFacts;
    };

/** An app root's releases: `<root>/releases/<id>/`, and which one `<root>/current` points to. */
export interface ReleasesFacts {
  live: string | null;
  /** Oldest first. Sizes and installed sets only when asked for (`vdeploy releases`). */
  list: Array<{ id: string; bytes?: number; ownBytes?: number; installed?: Record<string, string> }>;
}

export interface HostFacts {
  /** The wheel cache directory on the host, absolute (`~` expanded for the login user). */
  cacheDir: string;
  /** Filenames of the `.whl` files in the cache (complete ones only: temporary upload names excluded). */
  cachedWheels: string[];
  /** In the order asked for. */
  venvs: VenvFacts[];
  /** How many interpreters the probe started; the others' facts came from vdeploy's cache (interpreter-cache.ts). */
  interpretersRun?: number;
  /** How the facts were read: by the probe script, or from files over SFTP with no command (read-host-files.ts). */
  readBy?: 'script' | 'files';
  /**
   * How long the probe script took on the host, in ms (its own clock: no SSH, no interpreter start-up);
   * read by files: how long the reads took, as vdeploy saw them.
   */
  probeMs?: number;
}
