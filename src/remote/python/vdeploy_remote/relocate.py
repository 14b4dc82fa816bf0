"""vdeploy relocate: makes a virtualenv work at a new path and, with reinitialize, with this machine's
interpreter of the same X.Y. docs/relocate.md says what is rewritten and why.

Request (after the payload on stdin; contract 'relocate.request' in src/relocate/relocate-contract.ts):
  {"v": 1, "venv": DIR, "newPath": PATH | "auto" | null, "oldPath": PATH | null,
   "reinitialize": bool, "dryRun": bool, "holder": {...written into <venv>/.vdeploy/lock...}}
Answer: one JSON line (contract 'relocate.answer'): what was changed, the leftovers, warnings, errors,
and "fatal" when nothing (more) could be done (exit code 3).

Order of writes, so that an interrupted run can simply be run again: stale temporary files, then
symlinks, bin/ scripts, site-packages files, bytecode; pyvenv.cfg and the activate scripts last,
bin/activate very last. bin/activate's VIRTUAL_ENV is the marker that says where the venv was built:
while it still names the old path, a run finds the old path again and finishes the job. Every file
is replaced atomically (temporary file + rename), so no file is ever half written.

pyvenv.cfg is read here with read_cfg, not venv_facts.read_config, on purpose: relocate keeps the raw
bytes to rewrite them line by line, decodes with surrogateescape so that a path in any encoding comes
back byte for byte, and keeps the first of two equal keys (the one a line-by-line rewrite meets).
"""
import fcntl
import json
import os
import re
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from urllib.parse import quote as url_quote

from vdeploy_remote import protocol

TEMP_PREFIX = '.vdeploy-relocate-'
META_DIR = '.vdeploy'  # vdeploy's own records in the venv (deploy's lock and history): never rewritten
# Test hook: the script kills itself (SIGKILL) after this many writes. Never set it otherwise.
KILL_AFTER_ENV = 'VDEPLOY_RELOCATE_KILL_AFTER'
# What cannot be written safely everywhere a venv's path appears: single- and double-quoted shell
# words, Python string literals, JSON.
UNSAFE_PATH = re.compile(r'[\'"$\x60\\\x00-\x1f\x7f]')
BARE_SAFE = re.compile(rb'^[A-Za-z0-9_@%+=:,./-]+$')
# Bytes that continue a file name: the old path followed by one of these is a longer name.
NAME_BYTES = frozenset(b'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-+~%') | frozenset(range(0x80, 0x100))
MAX_SHEBANG = 127  # pip (distlib) writes a plain shebang up to this length, else the /bin/sh trampoline
ACTIVATE_NAME = re.compile(r'^(activate(\..+)?|Activate\.ps1|activate_this\.py)$')
INTERPRETER_NAME = re.compile(r'^python(\d+(\.\d+)?)?$')
PYC_NAME = re.compile(r'^(?P<mod>[^.]+)\.(?P<tag>[a-z]+-(?P<ver>\d+))(?:\.opt-(?P<opt>\d))?\.pyc$')
TRAMPOLINE = re.compile(rb'^' + re.escape(b"'''exec' ") + rb'("[^"]*"|\S+)(.*) "\$0" "\$@"\r?$')
PROBE = (
    'import json,os,sys;v=sys.version_info;print(json.dumps({'
    '"version":"%d.%d.%d"%v[:3],"xy":"%d.%d"%v[:2],'
    '"versionInfo":"%d.%d.%d.%s.%d"%(v[0],v[1],v[2],v[3],v[4]),'
    '"executable":sys.executable,"implementation":sys.implementation.name,'
    '"cacheTag":sys.implementation.cache_tag,"prefix":sys.prefix,'
    '"basePrefix":sys.base_prefix,"baseExecPrefix":sys.base_exec_prefix}))'
)


class Fatal(Exception):
    """Nothing (more) can be done: reported as the result's "fatal". kind: usage | refused | failed."""

    def __init__(self, message, hint=None, kind='failed'):
        Exception.__init__(self, message)
        self.message = message
        self.hint = hint
        self.kind = kind


def normpath(path):
    p = os.path.normpath(path)
    return '/' + p.lstrip('/') if p.startswith('//') else p


def check_new_path(path):
    if not isinstance(path, str) or not path.startswith('/'):
        raise Fatal('the new path %r is not absolute' % (path,), 'give an absolute path (starting with /)', 'usage')
    bad = UNSAFE_PATH.search(path)
    if bad:
        raise Fatal(
            'the new path %r contains %r, which cannot be written safely into activate scripts, shebangs and .pth files'
            % (path, bad.group(0)),
            'choose a path without quotes, $, backquotes, backslashes or control characters',
            'usage',
        )
    path = normpath(path)
    if path == '/':
        raise Fatal('the new path cannot be /', 'give the directory the venv will live in', 'usage')
    return path


def check_old_path(path):
    if not isinstance(path, str) or not path.startswith('/') or normpath(path) == '/':
        raise Fatal('the old path %r is not an absolute path below /' % (path,), 'give the absolute path the venv was built at', 'usage')
    return normpath(path)


# ---------------------------------------------------------------------------------------------
# Finding the old path in bytes


def occurrences(data, old, new, text):
    """Offsets where the path old (bytes) appears as a whole path (not as part of a longer name).

    In text the byte before must not continue a name either (a "://" before is fine: file URLs).
    Places where the new path appears are skipped, so a new path below the old one is not rewritten
    twice by a second run.
    """
    found = []
    if not old:
        return found
    new_below_old = new is not None and new.startswith(old + b'/')
    size = len(old)
    i = data.find(old)
    while i != -1:
        end = i + size
        ok = end == len(data) or data[end] not in NAME_BYTES
        if ok and text and i > 0:
            prev = data[i - 1]
            if prev in NAME_BYTES or (prev == 0x2F and not data[max(0, i - 3):i] == b'://'):
                ok = False
        if ok and new_below_old and data.startswith(new, i):
            after = i + len(new)
            if after == len(data) or data[after] not in NAME_BYTES:
                ok = False
        if ok:
            found.append(i)
            i = data.find(old, end)
        else:
            i = data.find(old, i + 1)
    return found


def splice(data, offsets, size, replace):
    """data with the size bytes at each offset replaced by replace(offset)."""
    out = []
    last = 0
    for i in offsets:
        out.append(data[last:i])
        out.append(replace(i))
        last = i + size
    out.append(data[last:])
    return b''.join(out)


def splice_marks(data, marks):
    """data with each (offset, old, new) of marks (sorted by offset) replaced."""
    out = []
    last = 0
    for i, old, new in marks:
        out.append(data[last:i])
        out.append(new)
        last = i + len(old)
    out.append(data[last:])
    return b''.join(out)


def is_text(data):
    return b'\0' not in data[:8192]


def line_of(data, offset):
    return data.count(b'\n', 0, offset) + 1


def quoted_at(data, offset):
    """True when offset is inside a quoted string (or a comment) of its line, for shell-like files."""
    start = data.rfind(b'\n', 0, offset) + 1
    quote = None
    j = start
    while j < offset:
        c = data[j:j + 1]
        if quote is None:
            if c == b'\\':
                j += 2
                continue
            if c in (b"'", b'"'):
                quote = c
            elif c == b'#' and (j == start or data[j - 1:j] in (b' ', b'\t')):
                return True
        elif quote == b"'":
            if c == b"'":
                quote = None
        else:
            if c == b'\\':
                j += 2
                continue
            if c == b'"':
                quote = None
        j += 1
    return quote is not None


# ---------------------------------------------------------------------------------------------
# The venv's description of itself


def read_cfg(venv):
    """(pyvenv.cfg's bytes, its keys lower-cased -> values); the first of two equal keys wins."""
    path = os.path.join(venv, 'pyvenv.cfg')
    with open(path, 'rb') as f:
        data = f.read()
    values = {}
    for line in data.decode('utf-8', 'surrogateescape').splitlines():
        if '=' in line:
            key, value = line.split('=', 1)
            key = key.strip().lower()
            if key and key not in values:
                values[key] = value.strip()
    return data, values


def venv_xy(venv, cfg):
    """The venv's Python X.Y and where that was read."""
    for key in ('version', 'version_info'):
        m = re.match(r'^(\d+)\.(\d+)', cfg.get(key, ''))
        if m:
            return '%s.%s' % (m.group(1), m.group(2)), 'pyvenv.cfg %s = %s' % (key, cfg[key])
    try:
        libs = sorted(n[6:] for n in os.listdir(os.path.join(venv, 'lib')) if re.match(r'^python\d+\.\d+$', n))
    except OSError:
        libs = []
    if len(libs) == 1:
        return libs[0], 'lib/python%s' % libs[0]
    raise Fatal('cannot tell which Python version the venv was built with', 'pyvenv.cfg has no version and lib/ no single pythonX.Y', 'failed')


_probes = {}


def probe(exe):
    """What the interpreter at exe is (see PROBE), or None when it does not run."""
    if exe in _probes:
        return _probes[exe]
    info = None
    if exe and os.path.isfile(exe) and os.access(exe, os.X_OK):
        try:
            p = subprocess.run([exe, '-I', '-B', '-c', PROBE], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=60)
            if p.returncode == 0:
                info = json.loads(p.stdout.decode('utf-8').strip().splitlines()[-1])
        except (OSError, ValueError, IndexError, subprocess.SubprocessError):
            info = None
    _probes[exe] = info
    return info


def is_system(info):
    return info is not None and info['prefix'] == info['basePrefix']


def shell_value(value):
    """The one absolute path a shell assignment's right-hand side spells, or None."""
    value = value.strip().rstrip(';').strip()
    if value.startswith("r#'") and value.endswith("'#"):
        value = value[2:-1]
    try:
        words = shlex.split(value, comments=True)
    except ValueError:
        return None
    if len(words) == 1 and words[0].startswith('/') and normpath(words[0]) != '/':
        return normpath(words[0])
    return None


MARKERS = [
    ('bin/activate', re.compile(r'^\s*(?:export\s+)?VIRTUAL_ENV=(.*)$')),
    ('bin/activate.fish', re.compile(r'^\s*set\s+-gx\s+VIRTUAL_ENV\s+(.*)$')),
    ('bin/activate.csh', re.compile(r'^\s*setenv\s+VIRTUAL_ENV\s+(.*)$')),
    ('bin/activate.nu', re.compile(r'^\s*(?:let|const)\s+virtual_env\s*=\s*(.*)$')),
]


def detect_old(venv):
    """(old path, where it was read) from the venv's own files, most authoritative first, or (None, None)."""
    for finder in (old_from_activate, old_from_command, old_from_shebangs):
        found = finder(venv)
        if found[0] is not None:
            return found
    return None, None


def old_from_activate(venv):
    """VIRTUAL_ENV as an activate script sets it (bin/activate first: the marker)."""
    for rel, pattern in MARKERS:
        try:
            with open(os.path.join(venv, rel), 'rb') as f:
                text = f.read().decode('utf-8', 'surrogateescape')
        except OSError:
            continue
        for line in text.splitlines():
            m = pattern.match(line)
            if m:
                value = shell_value(m.group(1))
                if value:
                    return value, rel
    return None, None


def old_from_command(venv):
    """The path at the end of pyvenv.cfg's `command = /usr/bin/python3 -m venv [options] PATH`."""
    try:
        _, cfg = read_cfg(venv)
    except OSError:
        cfg = {}
    command = cfg.get('command', '')
    at = command.find(' -m venv ')
    if at == -1:
        return None, None
    rest = command[at + len(' -m venv '):].strip()
    while rest.startswith('-'):
        if rest.startswith('--prompt="'):
            end = rest.find('" ', len('--prompt="'))
            rest = rest[end + 2:] if end != -1 else ''
        else:
            end = rest.find(' ')
            rest = rest[end + 1:] if end != -1 else ''
        rest = rest.strip()
    if rest.startswith('/') and normpath(rest) != '/':
        return normpath(rest), 'pyvenv.cfg command'
    return None, None


def old_from_shebangs(venv):
    """The venv most bin/ scripts' interpreters (ROOT/bin/python*) belong to."""
    counts = {}
    bindir = os.path.join(venv, 'bin')
    try:
        names = sorted(os.listdir(bindir))
    except OSError:
        names = []
    for name in names:
        path = os.path.join(bindir, name)
        if os.path.islink(path) or not os.path.isfile(path):
            continue
        try:
            with open(path, 'rb') as f:
                head = f.read(4096)
        except OSError:
            continue
        header = parse_script_header(head)
        if header:
            exe = header[0]
            parent = os.path.dirname(exe)
            if os.path.basename(exe).startswith(b'python') and os.path.basename(parent) == b'bin':
                root = os.fsdecode(os.path.dirname(parent))
                if root.startswith('/') and root != '/':
                    counts[root] = counts.get(root, 0) + 1
    if counts:
        return max(sorted(counts), key=lambda k: counts[k]), 'bin/ script shebangs'
    return None, None


def parse_script_header(data):
    """(interpreter, arguments, body offset, form) of a script, or None.

    form is "shebang" for #!/path/python args, "trampoline" for pip's #!/bin/sh + '''exec' form.
    """
    if not data.startswith(b'#!'):
        return None
    nl = data.find(b'\n')
    if nl == -1:
        return None
    first = data[2:nl].rstrip(b'\r').strip()
    if first in (b'/bin/sh', b'/usr/bin/sh'):
        nl2 = data.find(b'\n', nl + 1)
        nl3 = data.find(b'\n', nl2 + 1) if nl2 != -1 else -1
        if nl2 == -1 or nl3 == -1:
            return None
        m = TRAMPOLINE.match(data[nl + 1:nl2])
        if not m or data[nl2 + 1:nl3].rstrip(b'\r') != b"' '''":
            return None
        exe = m.group(1)
        if exe.startswith(b'"'):
            exe = exe[1:-1]
        return exe, m.group(2), nl3 + 1, 'trampoline'
    m = re.match(rb'^(\S+)(.*)$', first)
    if not m:
        return None
    return m.group(1), m.group(2), nl + 1, 'shebang'


def build_header(exe, args):
    """The header pip would write for exe: a plain shebang when it is short and has no space."""
    plain = b'#!' + exe + args + b'\n'
    if len(plain) <= MAX_SHEBANG and b' ' not in exe:
        return plain, 'shebang'
    quoted = b'"' + exe + b'"' if b' ' in exe else exe
    return b'#!/bin/sh\n' + b"'''exec' " + quoted + args + b' "$0" "$@"\n' + b"' '''\n", 'trampoline'


# ---------------------------------------------------------------------------------------------
# Writing


class Run(object):
    """One run's result (changes, leftovers, warnings, errors) and the writes that make it."""

    def __init__(self, args, result):
        self.result = result
        self.dry = bool(args.get('dryRun'))
        kill = os.environ.get(KILL_AFTER_ENV)
        self.kill_after = int(kill) if kill else None
        self.writes = 0
        self.root = os.geteuid() == 0
        self.holder = args.get('holder') or {'command': 'relocate', 'pid': os.getpid()}
        self.lock_file = None

    def lock(self, venv):
        """Take <venv>/.vdeploy/lock (the lock deploy holds too) before the first write; never waits."""
        if self.lock_file is not None:
            return
        meta = os.path.join(venv, META_DIR)
        try:
            made = not os.path.isdir(meta)
            os.makedirs(meta, exist_ok=True)
            lock = open(os.path.join(meta, 'lock'), 'a+')
            if made:
                st = os.stat(venv)
                self.keep_owner(meta, st)
                self.keep_owner(os.path.join(meta, 'lock'), st)
        except OSError as e:
            raise Fatal('cannot create the lock %s: %s' % (os.path.join(meta, 'lock'), e.strerror), None, 'failed')
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except (BlockingIOError, PermissionError):
            lock.seek(0)
            raise Fatal('locked by another vdeploy run: %s' % (describe_holder(lock.read().strip()) or 'unknown'),
                        'wait for it to finish, then run relocate again', 'failed')
        lock.seek(0)
        lock.truncate()
        lock.write(json.dumps(self.holder))
        lock.flush()
        self.lock_file = lock

    def change(self, path, kind, reason, **extra):
        entry = {'path': path, 'kind': kind, 'reason': reason}
        entry.update(extra)
        self.result['changes'].append(entry)

    def leftover(self, path, reason):
        self.result['leftovers'].append({'path': path, 'reason': reason})

    def warn(self, message):
        self.result['warnings'].append(message)

    def error(self, path, message):
        self.result['errors'].append({'path': path, 'message': message})

    def wrote(self):
        self.writes += 1
        if self.kill_after is not None and self.writes >= self.kill_after:
            sys.stdout.flush()
            os.kill(os.getpid(), signal.SIGKILL)

    def keep_owner(self, path, st, link=False):
        if self.root and (st.st_uid, st.st_gid) != (0, 0):
            try:
                (os.lchown if link else os.chown)(path, st.st_uid, st.st_gid)
            except OSError:
                pass

    def write_file(self, path, data, st):
        fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=os.path.dirname(path))
        try:
            with os.fdopen(fd, 'wb') as f:
                f.write(data)
            os.chmod(tmp, stat.S_IMODE(st.st_mode))
            self.keep_owner(tmp, st)
            os.replace(tmp, path)
        except BaseException:
            remove_quietly(tmp)
            raise
        self.wrote()

    def write_link(self, path, target, st=None):
        tmp = os.path.join(os.path.dirname(path), TEMP_PREFIX + 'link-' + os.path.basename(path))
        remove_quietly(tmp)
        os.symlink(target, tmp)
        if st is not None:
            self.keep_owner(tmp, st, link=True)
        os.replace(tmp, path)
        self.wrote()

    def copy_file(self, source, path, st=None):
        fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=os.path.dirname(path))
        os.close(fd)
        try:
            shutil.copy2(source, tmp)
            os.chmod(tmp, 0o755)
            if st is not None:
                self.keep_owner(tmp, st)
            os.replace(tmp, path)
        except BaseException:
            remove_quietly(tmp)
            raise
        self.wrote()


def remove_quietly(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def describe_holder(text):
    """Who holds the lock, from the JSON the holder wrote into it (or the text as it is)."""
    try:
        h = json.loads(text)
        return '%s@%s (pid %s, %s since %s)' % (h.get('user'), h.get('host'), h.get('pid'), h.get('command', 'deploy'), h.get('startedAt'))
    except (ValueError, AttributeError):
        return text


# ---------------------------------------------------------------------------------------------
# Reinitialize: link the venv to this machine's interpreter of the same X.Y


def reinitialize(run, venv):
    cfg_data, cfg = read_cfg(venv)
    xy, xy_source = venv_xy(venv, cfg)
    exe, info = choose_interpreter(cfg, xy, xy_source)
    run.result['reinitialize'] = {'python': exe, 'version': info['version'], 'xy': xy, 'changed': False}
    bindir = os.path.join(venv, 'bin')
    actions = interpreter_actions(bindir, xy, exe)
    updates = cfg_updates(cfg, xy, exe, info, bool(actions))
    for kind, path, rel, reason in actions:
        run.change(rel, 'interpreter', reason)
    if updates:
        run.change('pyvenv.cfg', 'pyvenv.cfg', 'reinitialize: ' + ', '.join(
            '%s %s -> %s' % (k, cfg.get(k, '(none)'), v) for k, v in sorted(updates.items())))
    run.result['reinitialize']['changed'] = bool(actions or updates)
    if run.dry or not (actions or updates):
        return
    run.lock(venv)
    for kind, path, rel, reason in actions:
        st = os.lstat(path) if os.path.lexists(path) else None
        if kind == 'link':
            run.write_link(path, exe, st)
        else:
            run.copy_file(exe, path, st)
    if updates:
        cfg_path = os.path.join(venv, 'pyvenv.cfg')
        run.write_file(cfg_path, rewrite_cfg(cfg_data, updates), os.stat(cfg_path))
    _probes.clear()
    if probe(os.path.join(bindir, 'python')) is None:
        run.error('bin/python', 'bin/python still does not run after reinitializing')


def choose_interpreter(cfg, xy, xy_source):
    """(exe, probe info) of this machine's Python X.Y: the one home names if it works here, else the
    system's, else whatever PATH has. Fatal (refused) when there is none."""
    impl = cfg.get('implementation', '').lower()
    home = cfg.get('home', '')
    candidates = []
    if home:
        candidates += [os.path.join(home, 'python' + xy), os.path.join(home, 'python3'), os.path.join(home, 'python')]
    candidates += ['/usr/bin/python' + xy, '/usr/local/bin/python' + xy]
    for name in ('python' + xy, 'python3'):
        found = shutil.which(name)
        if found:
            candidates.append(found)
    candidates += ['/usr/bin/python3', sys.executable]
    others = []
    for exe in candidates:
        info = probe(exe)
        if not is_system(info):
            continue
        if info['xy'] == xy and (not impl or impl == info['implementation']):
            return exe, info
        seen = '%s is %s' % (exe, info['version'])
        if seen not in others:
            others.append(seen)
    raise Fatal(
        'it is a Python %s venv (%s) and this machine has no Python %s%s: its site-packages (lib/python%s) '
        'would not match another version' % (xy, xy_source, xy, ' (%s)' % '; '.join(others) if others else '', xy),
        'install Python %s here, or rebuild the venv with this machine\'s Python' % xy,
        'refused',
    )


def interpreter_actions(bindir, xy, exe):
    """[(link | copy, path, rel, reason)] for bin/python* entries that are not a Python X.Y here."""
    try:
        present = set(n for n in os.listdir(bindir) if INTERPRETER_NAME.match(n))
    except OSError as e:
        raise Fatal('cannot read %s: %s' % (bindir, e.strerror), None, 'failed')
    names = sorted(present | {'python', 'python3', 'python' + xy})
    actions = []
    for name in names:
        path = os.path.join(bindir, name)
        rel = 'bin/' + name
        if os.path.islink(path):
            target = os.readlink(path)
            if '/' not in target and target in names:
                continue  # python -> python3: follows its sibling
            resolved = target if target.startswith('/') else os.path.join(bindir, target)
            got = probe(resolved)
            if is_system(got) and got['xy'] == xy:
                continue
            why = 'does not exist here' if not os.path.exists(resolved) else 'is not a Python %s interpreter' % xy
            actions.append(('link', path, rel, '%s pointed to %s, which %s: now links to %s' % (rel, target, why, exe)))
        elif os.path.isfile(path):
            got = probe(path)
            if got is not None and got['xy'] == xy:
                continue
            actions.append(('copy', path, rel, '%s is a copied interpreter that does not run here: replaced by a copy of %s' % (rel, exe)))
        elif not os.path.lexists(path):
            actions.append(('link', path, rel, '%s was missing: now links to %s' % (rel, exe)))
    return actions


def cfg_updates(cfg, xy, exe, info, relinking):
    """{key: new value} for pyvenv.cfg: home when it names no Python X.Y here, and (only for a venv that
    needs relinking) the rest of its interpreter facts that differ."""
    home = cfg.get('home', '')
    updates = {}
    if not home or normpath(home) != normpath(os.path.dirname(exe)):
        home_info = probe(os.path.join(home, 'python' + xy)) if home else None
        if not (is_system(home_info) and home_info['xy'] == xy):
            updates['home'] = os.path.dirname(exe)
    wanted = {
        'version': info['version'],
        'version_info': info['versionInfo'],
        'executable': os.path.realpath(exe),
        'base-prefix': info['basePrefix'],
        'base-exec-prefix': info['baseExecPrefix'],
        'base-executable': exe,
    }
    if relinking or updates:
        for key, value in wanted.items():
            if key in cfg and cfg[key] != value:
                updates[key] = value
    return updates


def rewrite_cfg(data, updates):
    """pyvenv.cfg's bytes with each key of updates set (in place, line endings kept; missing keys appended)."""
    updates = dict(updates)
    out = []
    for line in data.splitlines(True):
        key = line.split(b'=', 1)[0].strip().lower().decode('utf-8', 'surrogateescape') if b'=' in line else None
        if key in updates:
            name = line.split(b'=', 1)[0].strip()
            ending = b'\r\n' if line.endswith(b'\r\n') else b'\n'
            out.append(name + b' = ' + os.fsencode(updates.pop(key)) + ending)
        else:
            out.append(line)
    for key, value in updates.items():  # home was missing
        if out and not out[-1].endswith(b'\n'):
            out.append(b'\n')
        out.append(os.fsencode('%s = %s\n' % (key, value)))
    return b''.join(out)


# ---------------------------------------------------------------------------------------------
# Update the path


class Plan(object):
    def __init__(self):
        self.temps = []      # rel
        self.links = []      # (rel, path, new target, st, reason)
        self.scripts = []    # (rel, path, data, st, reason)
        self.site = []       # (rel, path, data, st, reason, kind)
        self.bytecode = []   # (rel, path, source, tag, opt, st)
        self.cfg = None      # (rel, path, data, st, reason)
        self.activate = []   # (rel, path, data, st, reason)


class Paths(object):
    """The old and the new path in each spelling a file may hold them: str, bytes, URL-quoted."""

    def __init__(self, old, new):
        self.old, self.new = old, new
        self.old_b, self.new_b = os.fsencode(old), os.fsencode(new)
        old_u = url_quote(old).encode('ascii')
        self.new_u = url_quote(new).encode('ascii')
        self.old_u = None if old_u == self.old_b else old_u
        # A new path that needs no quoting in a shell word may stay unquoted where the old one was.
        self.bare_ok = BARE_SAFE.match(self.new_b) is not None


def find_old(run, venv, old):
    """The old path: as given, else read from the venv (the marker). Read before anything is written."""
    if old is not None:
        return old
    detected, source = detect_old(venv)
    if detected is None:
        raise Fatal(
            'cannot tell where the venv was built: no VIRTUAL_ENV in its activate scripts, no command in pyvenv.cfg, '
            'no script in bin/ with a venv interpreter',
            'give the old location with --old-path', 'failed')
    run.result['markerSource'] = source
    return detected


def update_path(run, venv, old, new):
    result = run.result
    result['oldPath'] = old
    result['newPath'] = new
    if old == new:
        result['alreadyRelocated'] = True
        return
    if probe(os.path.join(venv, 'bin', 'python')) is None:
        run.warn('bin/python does not run here (its interpreter link points to %s): relocate with --reinitialize to '
                 're-link it to this machine\'s Python' % os.path.realpath(os.path.join(venv, 'bin', 'python')))
    plan = make_plan(run, venv, old, new)
    apply_plan(run, venv, old, new, plan)


def make_plan(run, venv, old, new):
    """What to rewrite in the venv (a Plan), files and symlinks in sorted order; leftovers go to run."""
    plan = Plan()
    scan_dir(run, plan, Paths(old, new), venv, venv)
    return plan


def scan_dir(run, plan, paths, venv, top):
    """Plans top's files and symlinks, then its subdirectories', in os.walk's top-down sorted order.
    scandir's entry types save a stat per file and per directory (a venv has thousands)."""
    try:
        with os.scandir(top) as it:
            entries = list(it)
    except OSError:
        return
    dirs, files = [], []
    for entry in entries:
        try:
            is_dir = entry.is_dir()
        except OSError:
            is_dir = False
        if is_dir:
            if not (top == venv and entry.name == META_DIR):
                dirs.append(entry)
        else:
            files.append(entry)
    dirs.sort(key=lambda e: e.name)
    files.sort(key=lambda e: e.name)
    for entry in [d for d in dirs if d.is_symlink()] + files:
        plan_entry(run, plan, paths, venv, entry)
    for entry in dirs:
        if not entry.is_symlink():
            scan_dir(run, plan, paths, venv, entry.path)


def plan_entry(run, plan, paths, venv, entry):
    """Adds what entry (a DirEntry of a file or symlink of the venv) needs to plan."""
    name, path = entry.name, entry.path
    rel = path[len(venv) + 1:]
    if name.startswith(TEMP_PREFIX):
        plan.temps.append(rel)
        return
    try:
        if entry.is_symlink():
            plan_link(run, plan, paths, rel, path, os.lstat(path))
            return
        if not entry.is_file(follow_symlinks=False):
            return
    except OSError:
        return
    try:
        with open(path, 'rb', buffering=0) as f:
            data = f.readall()
    except OSError as e:
        run.leftover(rel, 'could not be read to check it: %s' % e.strerror)
        return
    if paths.old_b not in data and (paths.old_u is None or paths.old_u not in data):
        return
    try:
        st = os.lstat(path)
    except OSError:
        return
    text = is_text(data)
    found = occurrences(data, paths.old_b, paths.new_b, text)
    found_u = occurrences(data, paths.old_u, paths.new_u, text) if paths.old_u else []
    if found or found_u:
        plan_file(run, plan, paths, rel, path, st, data, text, found, found_u)


def plan_link(run, plan, paths, rel, path, st):
    old, new = paths.old, paths.new
    target = os.readlink(path)
    if not occurrences(os.fsencode(target), paths.old_b, paths.new_b, True):
        return
    if target == old or target.startswith(old + '/'):
        plan.links.append((rel, path, new + target[len(old):], st, 'symlink to %s, inside the old venv' % target))
    else:
        run.leftover(rel, 'symlink to %s, which names the old path' % target)


def plan_file(run, plan, paths, rel, path, st, data, text, found, found_u):
    """Sorts a file that names the old path into its kind of rewrite, or reports it as a leftover."""
    old_b, new_b = paths.old_b, paths.new_b
    name = os.path.basename(path)
    parts = rel.split(os.sep)
    in_site = 'site-packages' in parts or 'dist-packages' in parts
    if len(parts) == 2 and parts[0] == 'bin' and ACTIVATE_NAME.match(name):
        newdata = splice(data, found, len(old_b),
                         lambda i: new_b if paths.bare_ok or quoted_at(data, i) else b"'" + new_b + b"'")
        plan.activate.append((rel, path, newdata, st, 'sets VIRTUAL_ENV to the old path'))
    elif len(parts) == 2 and parts[0] == 'bin':
        plan_script(run, plan, paths, rel, path, st, data, text, found + found_u)
    elif rel == 'pyvenv.cfg':
        plan_cfg(run, plan, paths, rel, path, st, data)
    elif name.endswith('.pyc') and len(parts) >= 2 and parts[-2] == '__pycache__':
        m = PYC_NAME.match(name)
        source_path = os.path.join(os.path.dirname(os.path.dirname(path)), m.group('mod') + '.py') if m else None
        if m and os.path.isfile(source_path):
            plan.bytecode.append((rel, path, source_path, m.group('tag'), m.group('opt') or '0', st))
        else:
            run.leftover(rel, 'bytecode compiled at the old path whose source file is missing: cannot be recompiled')
    elif in_site and text and (name.endswith('.pth') or name.endswith('.egg-link') or is_finder(parts, name)
                                or (name == 'direct_url.json' and parts[-2].endswith('.dist-info'))):
        kind = ('pth' if name.endswith('.pth') else 'egg-link' if name.endswith('.egg-link')
                else 'direct-url' if name == 'direct_url.json' else 'editable-finder')
        marks = sorted([(i, old_b, new_b) for i in found] + [(i, paths.old_u, paths.new_u) for i in found_u])
        newdata = splice_marks(data, marks)
        what = {'pth': 'a .pth file', 'egg-link': 'an egg-link', 'direct-url': 'install record (direct_url.json)',
                'editable-finder': 'an editable-install finder'}[kind]
        plan.site.append((rel, path, newdata, st, '%s naming paths inside the old venv' % what, kind))
    else:
        leftover_text(run, rel, data, found + found_u, text, None)


def plan_script(run, plan, paths, rel, path, st, data, text, offsets):
    """A bin/ script run by the venv's interpreter gets the header pip would write for the new one."""
    old_b, new_b = paths.old_b, paths.new_b
    header = parse_script_header(data) if text else None
    exe = header[0] if header else b''
    if header and exe.startswith(old_b + b'/') and os.path.basename(exe).startswith(b'python'):
        new_exe = new_b + exe[len(old_b):]
        head, form = build_header(new_exe, header[1])
        newdata = head + data[header[2]:]
        how = 'plain shebang' if form == 'shebang' else '#!/bin/sh trampoline: %s' % (
            'the path has a space' if b' ' in new_exe else 'a shebang would be over %d bytes' % MAX_SHEBANG)
        plan.scripts.append((rel, path, newdata, st, 'interpreter %s -> %s (%s)' % (
            os.fsdecode(exe), os.fsdecode(new_exe), how)))
    else:
        leftover_text(run, rel, data, offsets, text, 'a bin/ file whose interpreter is not in the old venv')


def plan_cfg(run, plan, paths, rel, path, st, data):
    """pyvenv.cfg: every line but home (the base interpreter's directory, never the venv)."""
    old_b, new_b = paths.old_b, paths.new_b
    out = []
    for line in data.splitlines(True):
        if line.split(b'=', 1)[0].strip().lower() == b'home':
            out.append(line)
        else:
            out.append(splice(line, occurrences(line, old_b, new_b, True), len(old_b), lambda i: new_b))
    newdata = b''.join(out)
    keys = [l.split(b'=', 1)[0].strip().decode('utf-8', 'replace') for l in data.splitlines()
            if occurrences(l, old_b, new_b, True) and l.split(b'=', 1)[0].strip().lower() != b'home']
    if newdata != data:
        plan.cfg = (rel, path, newdata, st, '%s names the old path' % ', '.join(keys))
    if occurrences(newdata, old_b, new_b, True):
        run.leftover(rel, 'home names a path inside the old venv (left as it is; see --reinitialize)')


def is_finder(parts, name):
    return (len(parts) >= 2 and parts[-2] in ('site-packages', 'dist-packages') and name.endswith('.py')
            and (name.startswith('__editable__') or name.startswith('_editable_impl_') or name.endswith('_editable_loader.py')))


def leftover_text(run, rel, data, offsets, text, why):
    if text:
        lines = sorted(set(line_of(data, i) for i in offsets))
        where = 'line %s' % ', '.join(str(n) for n in lines[:5]) + (' and more' if len(lines) > 5 else '')
        reason = 'names the old path (%s)' % where
    else:
        reason = 'binary file that names the old path (not rewritten)'
    run.leftover(rel, reason + ('; ' + why if why else ''))


def apply_plan(run, venv, old, new, plan):
    report_plan(run, old, new, plan)
    if not run.dry:
        write_plan(run, venv, old, new, plan)


def report_plan(run, old, new, plan):
    """The changes in the order they are made, and what the rewritten files still name."""
    old_b, new_b = os.fsencode(old), os.fsencode(new)
    for rel in plan.temps:
        run.change(rel, 'temporary', 'a temporary file left by an interrupted run: removed')
    for rel, path, target, st, reason in plan.links:
        run.change(rel, 'symlink', reason + ': now %s' % target)
    for rel, path, data, st, reason in plan.scripts:
        run.change(rel, 'script', reason)
    for rel, path, data, st, reason, kind in plan.site:
        run.change(rel, kind, reason)
    by_dir = {}
    for item in plan.bytecode:
        by_dir.setdefault(os.path.dirname(item[0]), []).append(item)
    for d in sorted(by_dir):
        n = len(by_dir[d])
        run.change(d, 'bytecode', '%d .pyc file%s compiled at the old path: rewritten' % (n, '' if n == 1 else 's'), files=n)
    if plan.cfg:
        run.change(plan.cfg[0], 'pyvenv.cfg', plan.cfg[4])
    plan.activate.sort(key=lambda item: item[0] == os.path.join('bin', 'activate'))  # bin/activate last
    for rel, path, data, st, reason in plan.activate:
        run.change(rel, 'activate', reason)
    # What is still left after the rewrite: the rest of a bin/ script, etc.
    for rel, path, data, st, reason in plan.scripts + [a[:5] for a in plan.site] + ([plan.cfg] if plan.cfg else []) + plan.activate:
        rest = occurrences(data, old_b, new_b, True)
        if rest and rel != 'pyvenv.cfg':
            leftover_text(run, rel, data, rest, True, 'outside the part vdeploy rewrites')


def write_plan(run, venv, old, new, plan):
    """Makes the plan's writes in order; an error stops before pyvenv.cfg and the marker."""
    run.lock(venv)

    def attempt(rel, action):
        try:
            action()
        except OSError as e:
            run.error(rel, '%s: %s' % (e.strerror or e, e.filename or rel))

    def remove(path):
        os.unlink(path)
        run.wrote()

    for rel in plan.temps:
        attempt(rel, lambda: remove(os.path.join(venv, rel)))
    for rel, path, target, st, reason in plan.links:
        attempt(rel, lambda: run.write_link(path, target, st))
    for rel, path, data, st, reason in plan.scripts:
        attempt(rel, lambda: run.write_file(path, data, st))
    for rel, path, data, st, reason, kind in plan.site:
        attempt(rel, lambda: run.write_file(path, data, st))
    recompile(run, venv, old, new, plan.bytecode)
    if run.result['errors']:
        run.error(None, 'stopped before pyvenv.cfg and the activate scripts, which still name the old path so that '
                        'running relocate again finishes the job')
        return
    if plan.cfg:
        rel, path, data, st, reason = plan.cfg
        attempt(rel, lambda: run.write_file(path, data, st))
    for rel, path, data, st, reason in plan.activate:
        if run.result['errors']:
            break
        attempt(rel, lambda: run.write_file(path, data, st))


# ---------------------------------------------------------------------------------------------
# Bytecode


def recompile(run, venv, old, new, items):
    """Recompiles the .pyc files of items (Plan.bytecode) for the new path, by cache tag."""
    if not items:
        return
    by_tag = {}
    for item in items:
        by_tag.setdefault(item[3], []).append(item)
    cfg_home = ''
    try:
        cfg_home = read_cfg(venv)[1].get('home', '')
    except OSError:
        pass
    for tag in sorted(by_tag):
        recompile_tag(run, venv, old, new, tag, by_tag[tag], cfg_home)


def compiler_candidates(venv, tag, cfg_home):
    """The interpreters that may have cache tag `tag`, the venv's own first."""
    ver = re.search(r'(\d)(\d+)$', tag)
    xy = '%s.%s' % (ver.group(1), ver.group(2)) if ver else ''
    candidates = [os.path.join(venv, 'bin', 'python')]
    if cfg_home and xy:
        candidates.append(os.path.join(cfg_home, 'python' + xy))
    if xy:
        candidates += ['/usr/bin/python' + xy, '/usr/local/bin/python' + xy]
        if shutil.which('python' + xy):
            candidates.append(shutil.which('python' + xy))
    candidates.append(sys.executable)
    return candidates


def recompile_tag(run, venv, old, new, tag, group, cfg_home):
    exe, exe_info = None, None
    for c in compiler_candidates(venv, tag, cfg_home):
        info = probe(c)
        if info and info['cacheTag'] == tag:
            exe, exe_info = c, info
            break
    if exe is not None and tuple(int(x) for x in exe_info['xy'].split('.')) >= (3, 8):
        group = rewrite_pycs(run, old, new, exe, group)
        if not group:
            return
    elsewhere = venv != new
    why = None
    if exe is None:
        why = 'no %s interpreter here to recompile them with' % tag
    elif elsewhere and tuple(int(x) for x in exe_info['xy'].split('.')) < (3, 9):
        why = 'Python %s cannot record another path in bytecode (compileall -s/-p needs 3.9)' % exe_info['version']
        exe = None
    if exe is None:
        run.warn('%d .pyc files (%s) were removed instead of recompiled: %s; Python rebuilds them on import'
                 % (len(group), tag, why))
        for item in group:
            try:
                os.unlink(item[1])
            except OSError as e:
                run.error(item[0], 'could not remove: %s' % e.strerror)
        run.wrote()
        return
    for opt in sorted(set(item[4] for item in group)):
        run_compileall(run, venv, new, exe, opt, [item[2] for item in group if item[4] == opt])
    check_recompiled(run, old, new, exe, group)


# Run by an interpreter of the .pyc files' cache tag (marshal's format is its own), Python 3.8+
# (code.replace). Request on stdin: {"old", "new", "prefix", "root", "files": [[pyc, source], ...]}.
# Answer on stdout: one letter per file: d (rewritten), m (rewritten, but the bytes still hold the old
# path somewhere: the caller checks), c (not touched: recompile it). Only co_filename is rewritten:
# it is the one place the compiler puts the source's path (the module's __file__ is set at import,
# not stored). The 16-byte header is kept, so the .pyc stays valid for its unchanged source; a header
# that no longer matches the source (or another magic number, or unknown flags) means recompiling.
PYC_REWRITE = r"""
import importlib.util, json, marshal, os, stat, sys, tempfile
req = json.loads(sys.stdin.buffer.read().decode('ascii'))
old, new = req['old'], req['new']
old_b = os.fsencode(old)
new_below_old = new.startswith(old + '/')
code_type = type(compile('', '', 'exec'))
names = {}

def moved(name):
    if name not in names:
        inside = name == old or name.startswith(old + '/')
        if new_below_old and (name == new or name.startswith(new + '/')):
            inside = False
        names[name] = new + name[len(old):] if inside else name
    return names[name]

def fix(code):
    # Functions, classes, lambdas and comprehensions are code objects in their parent's co_consts.
    consts = code.co_consts
    if any(isinstance(c, code_type) for c in consts):
        consts = tuple(fix(c) if isinstance(c, code_type) else c for c in consts)
    return code.replace(co_filename=moved(code.co_filename), co_consts=consts)

def header_ok(data, source):
    flags = int.from_bytes(data[4:8], 'little')
    if data[:4] != importlib.util.MAGIC_NUMBER or len(data) < 16 or flags & ~3:
        return False
    if flags & 1:
        with open(source, 'rb') as f:
            return importlib.util.source_hash(f.read()) == data[8:16]
    st = os.stat(source)
    return data[8:16] == (int(st.st_mtime) & 0xFFFFFFFF).to_bytes(4, 'little') + (st.st_size & 0xFFFFFFFF).to_bytes(4, 'little')

def rewrite(pyc, source):
    with open(pyc, 'rb') as f:
        data = f.read()
    if not header_ok(data, source):
        return 'c'
    try:
        code = marshal.loads(data[16:])
    except (ValueError, EOFError, TypeError):
        return 'c'
    if not isinstance(code, code_type):
        return 'c'
    out = data[:16] + marshal.dumps(fix(code))
    st = os.stat(pyc)
    fd, tmp = tempfile.mkstemp(prefix=req['prefix'], dir=os.path.dirname(pyc))
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(out)
        os.chmod(tmp, stat.S_IMODE(st.st_mode))
        if req['root'] and (st.st_uid, st.st_gid) != (0, 0):
            os.chown(tmp, st.st_uid, st.st_gid)
        os.replace(tmp, pyc)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return 'm' if old_b in out else 'd'

marks = []
for pyc, source in req['files']:
    try:
        marks.append(rewrite(pyc, source))
    except (OSError, ValueError, TypeError, RecursionError):
        marks.append('c')
sys.stdout.write(''.join(marks) + '\n')
"""


def rewrite_pycs(run, old, new, exe, group):
    """Rewrites co_filename in the .pyc files of group (one tag) with PYC_REWRITE in one process of exe:
    ~0.3 ms a file against compileall's ~2 ms (release deploys relocate a clone of the live venv every
    time). Returns the items left to recompile."""
    request = {'old': old, 'new': new, 'prefix': TEMP_PREFIX, 'root': run.root, 'files': [[item[1], item[2]] for item in group]}
    marks = ''
    try:
        # -S: the rewrite needs only the standard library, not the venv's .pth start-up code.
        p = subprocess.run([exe, '-I', '-S', '-B', '-c', PYC_REWRITE], input=json.dumps(request).encode('ascii'),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=1800)
        if p.returncode == 0:
            marks = p.stdout.decode('ascii').strip()
    except (OSError, ValueError, subprocess.SubprocessError):
        marks = ''
    run.wrote()
    if len(marks) != len(group):
        return group  # the rewrite failed as a whole: what it did is valid bytecode, recompile it all
    old_b, new_b = os.fsencode(old), os.fsencode(new)
    rest = []
    for item, mark in zip(group, marks):
        if mark == 'm':
            try:
                with open(item[1], 'rb') as f:
                    mark = 'c' if occurrences(f.read(), old_b, new_b, False) else 'd'
            except OSError:
                mark = 'c'
        if mark != 'd':
            rest.append(item)
    return rest


def run_compileall(run, venv, new, exe, opt, sources):
    # -B: the interpreter's own start-up (.pth imports) must not write bytecode for the venv's
    # current path; compileall writes what it is asked to regardless.
    argv = [exe, '-I', '-B'] + {'0': [], '1': ['-O'], '2': ['-OO']}.get(opt, []) + ['-m', 'compileall', '-q', '-f']
    if venv != new:
        argv += ['-s', venv, '-p', new]
    argv += ['-i', '-']
    try:
        subprocess.run(argv, input='\n'.join(sources).encode('utf-8', 'surrogateescape'),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=1800)
    except (OSError, subprocess.SubprocessError) as e:
        run.error(os.path.relpath(sources[0], venv), 'compileall failed: %s' % e)
    run.wrote()


def check_recompiled(run, old, new, exe, group):
    """Removes what compileall left naming the old path (a source that does not compile)."""
    old_b, new_b = os.fsencode(old), os.fsencode(new)
    failed = 0
    for rel, path, source, tag_, opt, st in group:
        try:
            with open(path, 'rb') as f:
                still = occurrences(f.read(), old_b, new_b, False)
        except OSError:
            still = False
        if still:
            failed += 1
            try:
                os.unlink(path)
            except OSError as e:
                run.error(rel, 'could not remove stale bytecode: %s' % e.strerror)
        elif run.root:
            try:
                run.keep_owner(path, st)
            except OSError:
                pass
    if failed:
        run.warn('%d .pyc files could not be recompiled (their source does not compile with %s): removed instead'
                 % (failed, exe))


# ---------------------------------------------------------------------------------------------


def relocate(args, result):
    run = Run(args, result)
    venv = args.get('venv')
    if not isinstance(venv, str) or not venv:
        raise Fatal('no venv path given', None, 'usage')
    venv = normpath(os.path.abspath(venv))
    result['venv'] = venv
    if not os.path.isdir(venv):
        raise Fatal('no such directory', 'check the path of the venv', 'failed')
    if not os.path.isfile(os.path.join(venv, 'pyvenv.cfg')):
        raise Fatal('not a virtualenv: it has no pyvenv.cfg',
                    'give the directory that holds pyvenv.cfg and bin/ (made by python -m venv or virtualenv)', 'failed')
    new = args.get('newPath')
    if new == 'auto':
        new = venv
    if new is not None:
        new = check_new_path(new)
    old = args.get('oldPath')
    if old is not None:
        old = check_old_path(old)
    if new is not None:
        old = find_old(run, venv, old)
    if args.get('reinitialize'):
        reinitialize(run, venv)
    if new is not None and not result['errors']:
        update_path(run, venv, old, new)
    result['complete'] = not result['errors']


def empty_result(args):
    venv = args.get('venv')
    return {
        # Always a string (the answer's contract): '' only for a request without one.
        'venv': venv if isinstance(venv, str) else '', 'oldPath': None, 'newPath': None, 'markerSource': None,
        'alreadyRelocated': False, 'dryRun': bool(args.get('dryRun')),
        'python': sys.executable, 'pythonVersion': '%d.%d.%d' % tuple(sys.version_info[:3]),
        'reinitialize': None, 'changes': [], 'leftovers': [], 'warnings': [], 'errors': [],
        'complete': False, 'fatal': None,
    }


def main():
    """Reads the request, relocates, answers one JSON line; exit 3 when the answer is fatal."""
    try:
        args = protocol.read_request()
    except protocol.RequestError as e:
        result = empty_result({})
        result['fatal'] = {'message': str(e), 'hint': None, 'kind': 'failed'}
    else:
        result = empty_result(args)
        try:
            relocate(args, result)
        except Fatal as e:
            result['fatal'] = {'message': e.message, 'hint': e.hint, 'kind': e.kind}
        except OSError as e:
            result['fatal'] = {'message': '%s: %s' % (e.filename or '', e.strerror or e), 'hint': None, 'kind': 'failed'}
    protocol.answer(result)
    return 3 if result['fatal'] else 0
