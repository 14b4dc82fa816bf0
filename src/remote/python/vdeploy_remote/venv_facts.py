"""The one reader of a venv's facts: what is installed (as pip list sees it), and vdeploy's history.

The probe (probe.py), the apply's post-install check and the history's before/after sets
(apply_venv.py) all read through here. vdeploy's SFTP reader (src/facts/read-host-files.ts) answers
exactly as this module or declines; the fixture corpus in test/fixtures/venv-trees/ holds both to it.

- site-packages: lib64 before lib, as site.getsitepackages() orders them where platlibdir is lib64;
  of several lib/pythonX.Y (a venv upgraded in place keeps the old one) only the one pyvenv.cfg's
  version names counts.
- Directories named by `.pth` files are scanned after site-packages (import lines are not run).
- Distributions: `*.dist-info/METADATA`, `*.egg-info/PKG-INFO` or an `.egg-info` file; header names
  match case-insensitively; of two distributions with one normalized name the first (in that order,
  names sorted) wins. Entries starting with `~` are pip's stash folders, not distributions (pip list
  skips them as invalid too): `stashes` lists those in site-packages, and the apply removes them.
- A venv vdeploy began to create and that has not had a successful apply since holds the marker
  `.vdeploy/creating` (apply_venv.py): it is half-made, and reported as missing so that it is made anew.
"""
import json
import os
import re
import stat

from vdeploy_remote import releases


def normalize(name):
    """PEP 503."""
    return re.sub(r'[-_.]+', '-', name).lower()


def first_non_directory(path):
    """The ancestor of a path that is in the way (a file where a directory must be), for messages."""
    current = '/'
    for part in path.strip('/').split('/'):
        current = os.path.join(current, part)
        if os.path.lexists(current) and not os.path.isdir(current):
            return current
    return path


def read_config(path):
    """pyvenv.cfg's `key = value` lines, keys lower-cased; a later key wins, as in site.py."""
    config = {}
    with open(path, 'rb') as f:
        for raw in f:
            key, sep, value = raw.decode('utf-8', 'replace').partition('=')
            if sep:
                config[key.strip().lower()] = value.strip()
    return config


def site_packages(venv, config):
    version = config.get('version_info') or config.get('version') or ''
    wanted = '.'.join(version.split('.')[:2])
    found = []
    for lib in ('lib64', 'lib'):
        base = os.path.join(venv, lib)
        try:
            names = sorted(n for n in os.listdir(base) if n.startswith('python') or n.startswith('pypy'))
        except OSError:
            continue
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
    """Directories .pth files add to sys.path (as site.addpackage does); import lines are not run."""
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
    """(Name, Version) from a metadata file's header block; either may be None."""
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


def metadata_file(directory, entry):
    full = os.path.join(directory, entry)
    if entry.endswith('.dist-info'):
        return os.path.join(full, 'METADATA')
    if entry.endswith('.egg-info'):
        return os.path.join(full, 'PKG-INFO') if os.path.isdir(full) else full
    return None


def read_installed(venv, config=None):
    """[{"name", "version"}] in the order found; the first distribution of a normalized name wins."""
    if config is None:
        config = read_config(os.path.join(venv, 'pyvenv.cfg'))
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
            metadata = None if entry.startswith('~') else metadata_file(directory, entry)
            if metadata is None:
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


def stashes(venv, config):
    """The folders pip stashes what it replaces or removes in while it works (`~` + the name less its
    first character, e.g. `~jango` for `django`), left in site-packages when pip dies mid-way (a host
    crash, a kill -9); sorted paths. Nothing imports them, but they take space and make pip warn."""
    found = []
    for site in site_packages(venv, config):
        try:
            names = sorted(os.listdir(site))
        except OSError:
            continue
        found.extend(os.path.join(site, n) for n in names if n.startswith('~') and os.path.isdir(os.path.join(site, n)))
    return found


def creating_marker(venv):
    return os.path.join(venv, '.vdeploy', 'creating')


def half_made(venv):
    """Whether vdeploy began to create this venv and no apply has succeeded since."""
    return os.path.exists(creating_marker(venv))


def installed_versions(venv):
    """{normalized name: version} of a venv, {} when there is no venv at the path."""
    cfg = os.path.join(venv, 'pyvenv.cfg')
    if not os.path.isfile(cfg):
        return {}
    return dict((normalize(p['name']), p['version']) for p in read_installed(venv, read_config(cfg)))


def read_history(venv):
    """The deploys recorded in <venv>/.vdeploy/history.jsonl, oldest first; a torn or foreign line is skipped."""
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


def not_a_venv(path, detail):
    return {'path': path, 'state': 'not-a-venv', 'detail': detail}


def kind_of(mode):
    return 'a file' if stat.S_ISREG(mode) else 'a special file'


def not_a_directory(path, what):
    """None when the path is a directory; else its facts: missing, or not-a-venv saying why."""
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
        return not_a_venv(path, 'is %s, not %s' % (kind_of(st.st_mode), what))
    return None


def inspect_venv(path):
    """{"path", "state": "missing" | "not-a-venv" (with "detail") | "venv" (with "installed", "history")}."""
    found = not_a_directory(path, 'a venv directory')
    if found:
        return found
    if half_made(path):
        return {'path': path, 'state': 'missing', 'halfMade': True}
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
    facts = {'path': path, 'state': 'venv', 'installed': read_installed(path, config), 'history': read_history(path)}
    left = stashes(path, config)
    if left:
        facts['stashes'] = left
    return facts


def inspect_root(root, details=False):
    """An app root in the releases layout (releases.py), as inspect_venv reports a venv: the live
    release's installed set under the root's path, the root's history, and "releases": {"live",
    "list": [{"id"} + with details "bytes", "ownBytes", "installed"]}. No `current` yet: "missing"."""
    found = not_a_directory(root, 'an app root directory')
    if found:
        if found['state'] == 'missing':
            found['releases'] = {'live': None, 'list': []}
        return found
    if os.path.isfile(os.path.join(root, 'pyvenv.cfg')):
        return not_a_venv(root, 'is an in-place venv (it has pyvenv.cfg), not an app root for releases')
    link = releases.current_link(root)
    if os.path.lexists(link) and not os.path.islink(link):
        return not_a_venv(root, 'has a current that is not a symlink (releases switch a symlink)')
    listed = [release_entry(root, r, details) for r in releases.list_releases(root)]
    info = {'live': releases.live(root), 'list': listed}
    history = read_history(root)
    if info['live'] is None:
        return {'path': root, 'state': 'missing', 'releases': info, 'history': history}
    facts = inspect_venv(link)
    facts.update(path=root, releases=info)
    if facts['state'] == 'venv':
        facts['history'] = history
    return facts


def release_entry(root, release_id, details):
    entry = {'id': release_id}
    if details:
        path = releases.release_path(root, release_id)
        entry['bytes'], entry['ownBytes'] = releases.tree_bytes(path)
        entry['installed'] = installed_versions(path)
    return entry
