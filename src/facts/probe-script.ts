/**
 * The Python program the probe runs on a host as `python3 -I -c PROBE_SCRIPT`, with the request as
 * JSON on stdin. It is a constant (tsc does not copy .py files) and never has user text pasted in.
 *
 * It prints one JSON line (the last line of stdout, so rc-file noise before it is harmless):
 *   {"v": 1, "cacheDir", "cachedWheels", "interpreters": [InterpreterFacts… | {"python", "cached"}],
 *    "venvs": [{"path", "state", …, "interpreter": <index into interpreters> | null}],
 *    "interpretersRun", "probeMs"}
 * or {"error": "one line"} when the host as a whole cannot be probed (e.g. the cache is a file).
 * Interpreter facts are listed once and referenced by index: 900-odd tags per interpreter would
 * otherwise be repeated for every venv made from the same python.
 *
 * Why it is shaped like this:
 * - The installed set is read straight from `*.dist-info/METADATA` (and `.egg-info`) headers in this
 *   process: no `pip freeze`, no subprocess per venv. Directories named by `.pth` files are scanned
 *   too, after site-packages, and the first distribution of a name wins — what pip list sees.
 * - Interpreter facts need the interpreter itself: one subprocess per distinct interpreter (by
 *   realpath) whose facts vdeploy has not cached, all started at once (probe-interpreters-script.ts).
 *   A venv's bin/python with pip installed is preferred: pip's vendored `packaging` gives the tags;
 *   Debian's bare /usr/bin/python3 has no pip but ships a pip wheel for ensurepip, which is
 *   importable as a zip (slower: no cached bytecode).
 * - Python 3.6 syntax and library at most: it runs on whatever python3 a host has.
 */
import { INTERPRETER_SCRIPT } from './interpreter-script.js';
import { PROBE_INTERPRETERS_PY } from './probe-interpreters-script.js';

export { INTERPRETER_SCRIPT } from './interpreter-script.js';

export const PROBE_SCRIPT = String.raw`
import json, os, re, shutil, stat, subprocess, sys, time

STARTED = time.time()
INTERPRETER_TIMEOUT = 60
INTERPRETER_SCRIPT = ${JSON.stringify(INTERPRETER_SCRIPT)}

class ProbeError(Exception):
    pass

def normalize(name):
    return re.sub(r'[-_.]+', '-', name).lower()

def first_non_directory(path):
    # The ancestor of a path that is in the way (a file where a directory must be), for messages.
    current = '/'
    for part in path.strip('/').split('/'):
        current = os.path.join(current, part)
        if os.path.lexists(current) and not os.path.isdir(current):
            return current
    return path

def list_cache(configured):
    path = os.path.abspath(os.path.expanduser(configured))
    try:
        with os.scandir(path) as entries:
            names = [e.name for e in entries if e.name.endswith('.whl') and not e.name.startswith('.') and e.is_file()]
    except FileNotFoundError:
        return path, []
    except NotADirectoryError:
        raise ProbeError('wheel cache %s: %s is not a directory' % (path, first_non_directory(path)))
    except OSError as e:
        raise ProbeError('wheel cache %s cannot be listed: %s' % (path, e.strerror))
    return path, sorted(names)

def not_a_venv(path, detail):
    return {'path': path, 'state': 'not-a-venv', 'detail': detail}

def kind_of(mode):
    return 'a file' if stat.S_ISREG(mode) else 'a special file'

def read_config(path):
    config = {}
    with open(path, 'rb') as f:
        for raw in f:
            key, sep, value = raw.decode('utf-8', 'replace').partition('=')
            if sep:
                config[key.strip().lower()] = value.strip()
    return config

def inspect_venv(path):
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            return not_a_venv(path, 'is a broken symlink to %s' % os.readlink(path))
        return {'path': path, 'state': 'missing'}
    except NotADirectoryError:
        return not_a_venv(path, 'cannot be created: %s is not a directory' % first_non_directory(path))
    except OSError as e:
        return not_a_venv(path, 'cannot be inspected: %s' % e.strerror)
    if not stat.S_ISDIR(st.st_mode):
        return not_a_venv(path, 'is %s, not a venv directory' % kind_of(st.st_mode))
    cfg = os.path.join(path, 'pyvenv.cfg')
    if not os.path.isfile(cfg):
        return not_a_venv(path, 'is a directory without pyvenv.cfg (not a venv)')
    python = os.path.join(path, 'bin', 'python')
    if not os.path.exists(python):
        if os.path.islink(python):
            return not_a_venv(path, 'is a venv whose bin/python is a broken symlink (%s does not exist)' % os.path.realpath(python))
        return not_a_venv(path, 'is a directory with pyvenv.cfg but no bin/python')
    if os.path.isdir(python):
        return not_a_venv(path, 'is a venv whose bin/python is a directory')
    try:
        config = read_config(cfg)
    except OSError as e:
        return not_a_venv(path, 'cannot be inspected: pyvenv.cfg: %s' % e.strerror)
    return {'path': path, 'state': 'venv', 'installed': read_installed(path, config), 'history': read_history(path)}

def read_history(venv):
    # The deploys recorded in <venv>/.vdeploy/history.jsonl, oldest first; a torn or foreign line is skipped.
    entries = []
    try:
        with open(os.path.join(venv, '.vdeploy', 'history.jsonl'), 'rb') as f:
            for raw in f:
                try:
                    entry = json.loads(raw.decode('utf-8'))
                except ValueError:
                    continue
                if isinstance(entry, dict):
                    entries.append(entry)
    except OSError:
        pass
    return entries

def site_packages(venv, config):
    # lib64 first, as site.getsitepackages() orders it where platlibdir is lib64.
    version = config.get('version_info') or config.get('version') or ''
    wanted = '.'.join(version.split('.')[:2])
    found = []
    for lib in ('lib64', 'lib'):
        base = os.path.join(venv, lib)
        try:
            names = sorted(n for n in os.listdir(base) if n.startswith('python') or n.startswith('pypy'))
        except OSError:
            continue
        # A venv upgraded in place keeps the old lib/pythonX.Y; only its interpreter's one counts.
        matching = [n for n in names if wanted and n in ('python' + wanted, 'python' + wanted + 't', 'pypy' + wanted)]
        for name in matching or names:
            directory = os.path.join(base, name, 'site-packages')
            if os.path.isdir(directory):
                found.append(directory)
    unique, seen = [], set()
    for directory in found:
        real = os.path.realpath(directory)
        if real not in seen:
            seen.add(real)
            unique.append(directory)
    return unique

def pth_paths(site):
    # Directories .pth files add to sys.path (as site.addpackage does); import lines are not run.
    paths = []
    try:
        names = sorted(n for n in os.listdir(site) if n.endswith('.pth') and not n.startswith('.'))
    except OSError:
        return paths
    for name in names:
        try:
            with open(os.path.join(site, name), 'rb') as f:
                lines = f.read().decode('utf-8', 'replace').splitlines()
        except OSError:
            continue
        for line in lines:
            if not line.strip() or line.startswith('#') or line.startswith(('import ', 'import\t')):
                continue
            directory = os.path.abspath(os.path.join(site, line.rstrip()))
            if os.path.isdir(directory):
                paths.append(directory)
    return paths

def read_headers(path):
    name = version = None
    with open(path, 'rb') as f:
        for raw in f:
            line = raw.decode('utf-8', 'replace').rstrip('\r\n')
            if not line.strip():
                break
            if line[0] in ' \t':
                continue
            key, sep, value = line.partition(':')
            key = key.strip().lower()
            if sep and key == 'name' and name is None:
                name = value.strip()
            elif sep and key == 'version' and version is None:
                version = value.strip()
            if name is not None and version is not None:
                break
    return name, version

def read_installed(venv, config):
    sites = site_packages(venv, config)
    directories = sites + [p for site in sites for p in pth_paths(site)]
    installed, seen, scanned = [], set(), set()
    for directory in directories:
        real = os.path.realpath(directory)
        if real in scanned:
            continue
        scanned.add(real)
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            continue
        for entry in names:
            full = os.path.join(directory, entry)
            if entry.endswith('.dist-info'):
                metadata = os.path.join(full, 'METADATA')
            elif entry.endswith('.egg-info'):
                metadata = os.path.join(full, 'PKG-INFO') if os.path.isdir(full) else full
            else:
                continue
            try:
                name, version = read_headers(metadata)
            except OSError:
                continue
            if not name or not version or normalize(name) in seen:
                continue
            seen.add(normalize(name))
            installed.append({'name': name, 'version': version})
    return installed

${PROBE_INTERPRETERS_PY}
def main():
    request = json.loads(sys.stdin.buffer.read().decode('utf-8'))
    out = {'v': 1}
    if request.get('cacheDir') is not None:
        out['cacheDir'], out['cachedWheels'] = list_cache(request['cacheDir'])
    venvs = [inspect_venv(v['path']) for v in request['venvs']]
    out['interpreters'], out['interpretersRun'] = [], 0
    if request.get('interpreters', True):
        out['interpreters'], out['interpretersRun'] = describe_interpreters(request['venvs'], venvs, known_interpreters(request))
    out['venvs'] = venvs
    out['probeMs'] = round((time.time() - STARTED) * 1000, 1)
    return out

try:
    result = main()
except ProbeError as e:
    result = {'error': str(e)}
sys.stdout.write('\n' + json.dumps(result) + '\n')
`;
