/**
 * How vdeploy runs its Python on a host (or here): every script is a real file under
 * src/remote/python/, started the one way start.sh says (`sh -c START NAME BOOTSTRAP [VENV]`), with a
 * payload on stdin that bootstrap.py turns into the importable `vdeploy_remote` package, followed by
 * the script's own input. Nothing a user typed is ever part of the command: it travels as JSON.
 *
 * The sources come from python-files.ts (read from disk, or inlined in the CLI bundle).
 */
import { readPythonFile } from './python-files.js';
import { sudoArgv } from './sudo.js';

/** The protocol version every request and answer carries ("v"); vdeploy_remote/protocol.py has the same. */
export const PROTOCOL = 1;

/** The entry modules, each with a main(). */
export type PythonMain = 'probe' | 'host_apply' | 'apply_venv' | 'relocate' | 'files';

/** The package's modules by name, read once (python-files.ts). */
let modules: Map<string, string> | undefined;
function packageModules(): Map<string, string> {
  modules ??= new Map(PACKAGE_MODULES.map((name) => [name, readPythonFile(`vdeploy_remote/${name}.py`)]));
  return modules;
}

/** Every module of vdeploy_remote (a test checks this list against the folder). */
export const PACKAGE_MODULES = [
  '__init__',
  'protocol',
  'pep440',
  'venv_facts',
  'interpreter_facts',
  'probe',
  'apply_venv',
  'releases',
  'artifact',
  'release_steps',
  'host_apply',
  'relocate',
  'files_record',
  'files_stage',
  'files',
] as const;

const IMPORT = /^[ \t]*(?:from vdeploy_remote import ([\w, ]+)|from vdeploy_remote\.(\w+) import|import vdeploy_remote\.(\w+))/gm;

/** `main` and the modules it imports, transitively (host_apply brings apply_venv: it starts it). */
export function modulesFor(main: PythonMain): string[] {
  const all = packageModules();
  const wanted = new Set<string>();
  const visit = (name: string) => {
    if (wanted.has(name)) return;
    const source = all.get(name);
    if (source === undefined) throw new Error(`vdeploy_remote.${name} is imported but not in PACKAGE_MODULES`);
    wanted.add(name);
    for (const m of source.matchAll(IMPORT)) {
      for (const dep of (m[1] ?? m[2] ?? m[3]!).split(',')) visit(dep.trim());
    }
  };
  visit('__init__');
  visit(main);
  return [...wanted].sort();
}

const payloads = new Map<PythonMain, Buffer>();

/** What bootstrap.py reads first on stdin: the payload's length, a newline, the payload. */
export function payloadFor(main: PythonMain): Buffer {
  let payload = payloads.get(main);
  if (payload === undefined) {
    const all = packageModules();
    const body = Buffer.from(
      JSON.stringify({
        v: PROTOCOL,
        main,
        bootstrap: bootstrapSource(),
        modules: Object.fromEntries(modulesFor(main).map((name) => [name, all.get(name)!])),
      }),
    );
    payload = Buffer.concat([Buffer.from(`${body.length}\n`), body]);
    payloads.set(main, payload);
  }
  return payload;
}

let start: string | undefined;
let bootstrap: string | undefined;
function bootstrapSource(): string {
  return (bootstrap ??= readPythonFile('bootstrap.py'));
}

export interface PythonArgvOptions {
  /** Try this venv's pyvenv.cfg `home` interpreter first (relocate). */
  venv?: string;
  /** Run as this user (`sudo -n -u USER`). */
  runAs?: string;
}

/** The argv that starts `main` on a host; its stdin must begin with payloadFor(main). */
export function pythonArgv(main: PythonMain, opts: PythonArgvOptions = {}): string[] {
  start ??= readPythonFile('start.sh');
  return [
    ...(opts.runAs ? sudoArgv(opts.runAs) : []),
    'sh',
    '-c',
    start,
    `vdeploy-${main.replace('_', '-')}`,
    bootstrapSource(),
    ...(opts.venv ? [opts.venv] : []),
  ];
}

/** The whole stdin for a script that reads one request: the payload, then the request as JSON. */
export function pythonStdin(main: PythonMain, request: object): Buffer {
  return Buffer.concat([payloadFor(main), Buffer.from(`${JSON.stringify({ ...request, v: PROTOCOL })}\n`)]);
}

/** How messages name a script's command (its argv holds whole sources). */
export function describeScript(main: PythonMain): string {
  return `python3 <vdeploy ${main.replace('_', ' ')} script>`;
}
