/**
 * How vdeploy runs its fixed Python scripts on a host: `python3 -I -c SCRIPT`, arguments as JSON on
 * stdin. Any python3 ≥ 3.6 will do, so the system's is preferred: a `python3` found first on PATH is
 * often a pyenv/asdf shim, which costs 100–200 ms per call (measured here: 317 ms against 160 ms for
 * /usr/bin/python3 over SSH) — paid once per venv on every deploy.
 */
export function pythonScriptArgv(name: string, script: string): string[] {
  return [
    'sh',
    '-c',
    'if [ -x /usr/bin/python3 ]; then exec /usr/bin/python3 -I -c "$1"; else exec python3 -I -c "$1"; fi',
    name,
    script,
  ];
}
