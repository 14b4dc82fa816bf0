"""The probe: one run per host that reports every venv asked about and the wheel cache.

Request (src/facts/probe-contract.ts, 'probe.request'):
  {"v", "cacheDir": str | null, "venvs": [{"path", "python"}], "interpreters": bool,
   "known": [{"python": <realpath>, "fingerprint", "files": [path...]}]}
Answer ('probe.answer'), one JSON line:
  {"v", "cacheDir", "cachedWheels", "interpreters": [facts... | {"python", "cached", "quick"}],
   "venvs": [{"path", "state", ..., "interpreter": <index into interpreters> | null}],
   "interpretersRun", "probeMs"}
or {"v", "error": "one line"} when the host as a whole cannot be probed (the cache is a file).
Interpreter facts are listed once and referenced by index: 900-odd tags per interpreter would
otherwise be repeated for every venv made from the same python.

- The installed sets are read from metadata headers in this process (venv_facts): no pip, no
  subprocess per venv.
- Interpreter facts need the interpreter itself: one subprocess per distinct interpreter (by realpath)
  whose facts vdeploy has not cached, all started at once, each running interpreter_facts' source. A
  venv's bin/python with pip installed is preferred: pip's vendored `packaging` gives the tags fastest.
- Starting an interpreter costs 50-60 ms of CPU, paid per host on every run although the answer
  almost never changes; so vdeploy caches the facts (src/facts/interpreter-cache.ts) and sends what it
  knows in "known". A fingerprint is computed here without starting the interpreter: the os.stat of
  its realpath and of the files its facts came from, the kernel's uname (the platform_* markers) and
  the C library version (manylinux/musllinux tags). An interpreter whose fingerprint matches is
  answered as {"python", "cached": <fingerprint>}; only the others are run. Nothing is written on
  the host.
- Each interpreter also comes back with "quick": the parts of a weaker identity that SFTP can read
  without running anything (size, whole-second mtime and mode of the same files; the kernel release
  and version from /proc; /etc/ld.so.cache's stat). vdeploy stores its hash next to the fingerprint,
  and a later probe over SFTP alone (src/facts/read-host-files.ts) trusts the cached facts while it
  matches.
"""
import json
import os
import shutil
import subprocess
import sys
import time

from vdeploy_remote import interpreter_facts, protocol, venv_facts

INTERPRETER_TIMEOUT = 60


class ProbeError(Exception):
    """The host as a whole cannot be probed."""


def interpreter_source():
    """interpreter_facts' text: from the payload this process was started with, or its file (tests)."""
    import vdeploy_remote
    payload = getattr(vdeploy_remote, 'PAYLOAD', None)
    if payload is not None and 'interpreter_facts' in payload.get('modules', {}):
        return payload['modules']['interpreter_facts']
    with open(interpreter_facts.__file__, encoding='utf-8') as f:
        return f.read()


def list_cache(configured):
    path = os.path.abspath(os.path.expanduser(configured))
    try:
        with os.scandir(path) as entries:
            names = [e.name for e in entries if e.name.endswith('.whl') and not e.name.startswith('.') and e.is_file()]
    except FileNotFoundError:
        return path, []
    except NotADirectoryError:
        raise ProbeError('wheel cache %s: %s is not a directory' % (path, venv_facts.first_non_directory(path)))
    except OSError as e:
        raise ProbeError('wheel cache %s cannot be listed: %s' % (path, e.strerror))
    return path, sorted(names)


def resolve_python(python):
    found = shutil.which(python)
    if found:
        return found, None
    if '/' in python:
        return None, '%s does not exist or is not executable' % python
    return None, "%s not found on the login user's PATH" % python


def last_line(text):
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ''


def start_interpreter(executable, source):
    try:
        process = subprocess.Popen([executable, '-I', '-c', source], stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd='/')
    except OSError as e:
        return None, '%s cannot run: %s' % (executable, e.strerror)
    return process, None


def finish_interpreter(executable, process):
    try:
        out, err = process.communicate(timeout=INTERPRETER_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        return None, '%s did not answer within %ds' % (executable, INTERPRETER_TIMEOUT)
    stdout, stderr = out.decode('utf-8', 'replace'), err.decode('utf-8', 'replace')
    if process.returncode != 0:
        return None, '%s failed (exit %s): %s' % (executable, process.returncode, last_line(stderr) or 'no output')
    try:
        facts = json.loads(last_line(stdout))
    except ValueError:
        return None, '%s printed no facts: %s' % (executable, (last_line(stdout) or last_line(stderr) or 'no output')[:200])
    if not isinstance(facts, dict):
        return None, '%s printed no facts: %s' % (executable, last_line(stdout)[:200])
    if 'error' in facts:
        return None, facts['error']
    return facts, None


def file_identity(path):
    # Any rewrite or replacement changes one of these; ctime cannot be set back by hand (cp -p, touch).
    try:
        st = os.stat(path)
    except (OSError, TypeError, ValueError):
        return None
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def system_identity():
    # What the facts take from the system rather than the interpreter: uname gives the platform_*
    # markers (the node name does not matter); the C library version decides the manylinux tags.
    u = os.uname()
    try:
        libc = os.confstr('CS_GNU_LIBC_VERSION')
    except (AttributeError, ValueError, OSError):
        libc = None
    if libc is None:
        # musl has no such name; its dynamic loader is the C library itself.
        import glob
        libc = [[p, file_identity(p)] for p in sorted(glob.glob('/lib/ld-musl-*.so.1'))]
    return [u.sysname, u.release, u.version, u.machine, libc]


def quick_attrs(path):
    # What SFTP's stat can see too (read-host-files.ts checks the same identity without a command).
    try:
        st = os.stat(path)
    except (OSError, TypeError, ValueError):
        return None
    return [st.st_size, st.st_mtime_ns // 1000000000, st.st_mode]


def read_text(path):
    try:
        with open(path, 'rb') as f:
            return f.read().decode('utf-8', 'replace')
    except OSError:
        return None


def quick_system():
    # uname's release and version as files; ld.so.cache is rewritten whenever a C library is installed.
    return [read_text('/proc/sys/kernel/osrelease'), read_text('/proc/sys/kernel/version'), quick_attrs('/etc/ld.so.cache')]


def quick_identity(real, files, system):
    return [real, quick_attrs(real), [[f, quick_attrs(f)] for f in files], system]


def fingerprint(real, files, system):
    import hashlib
    parts = [real, file_identity(real), [[f, file_identity(f)] for f in files], system]
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode('utf-8')).hexdigest()[:32]


def known_interpreters(request):
    known = {}
    for entry in request.get('known') or []:
        if isinstance(entry, dict) and isinstance(entry.get('files'), list) and all(isinstance(f, str) for f in entry['files']):
            known[entry.get('python')] = entry
    return known


def group_interpreters(requested, venvs):
    """The distinct interpreters (by realpath) to describe, each with the venvs that use it."""
    groups = []
    by_real = {}
    for request, facts in zip(requested, venvs):
        if facts['state'] == 'venv':
            executable = os.path.join(request['path'], 'current' if request.get('releases') else '', 'bin', 'python')
        elif facts['state'] == 'missing':
            executable, error = resolve_python(request.get('python') or 'python3')
            if executable is None:
                facts['interpreter'], facts['interpreterError'] = None, error
                continue
        else:
            continue
        real = os.path.realpath(executable)
        group = by_real.get(real)
        if group is None:
            group = by_real[real] = {'real': real, 'run': executable, 'rank': -1, 'members': []}
            groups.append(group)
        # Run the python that finds packaging fastest: a venv's with pip, then any venv's, then the base.
        rank = 0
        if facts['state'] == 'venv':
            rank = 2 if any(venv_facts.normalize(p['name']) == 'pip' for p in facts['installed']) else 1
        if rank > group['rank']:
            group['run'], group['rank'] = executable, rank
        group['members'].append(facts)
    return groups


def start_groups(groups, known, system):
    """Starts every interpreter not vouched for by its fingerprint, all at once; returns how many started."""
    source = None
    started = 0
    for group in groups:
        group['cached'], group['process'], group['error'] = None, None, None
        entry = known.get(group['real'])
        if entry is not None and fingerprint(group['real'], entry['files'], system) == entry.get('fingerprint'):
            group['cached'] = entry['fingerprint']
            continue
        if source is None:
            source = interpreter_source()
        group['before'] = file_identity(group['real'])
        group['process'], group['error'] = start_interpreter(group['run'], source)
        if group['process'] is not None:
            started += 1
    return started


def group_facts(group, known, system, quick):
    """The group's entry in "interpreters", or None (with group['error']) when it has none."""
    if group['cached'] is not None:
        return {'python': group['real'], 'cached': group['cached'],
                'quick': quick_identity(group['real'], known[group['real']]['files'], quick)}
    if group['process'] is None:
        return None
    facts, group['error'] = finish_interpreter(group['run'], group['process'])
    if facts is not None:
        files = [f for f in facts.get('files') or [] if isinstance(f, str)]
        facts.update(python=group['real'], files=files)
        # Replaced while it ran (a package upgrade): these facts are good for now, not for later.
        if file_identity(group['real']) == group['before']:
            facts['fingerprint'] = fingerprint(group['real'], files, system)
            facts['quick'] = quick_identity(group['real'], files, quick)
    return facts


def describe_interpreters(requested, venvs, known):
    """(interpreters, how many were started); sets each venv's "interpreter" (and "interpreterError")."""
    groups = group_interpreters(requested, venvs)
    system = system_identity() if groups else None
    quick = quick_system() if groups else None
    started = start_groups(groups, known, system)
    interpreters = []
    for group in groups:
        facts = group_facts(group, known, system, quick)
        index = None
        if facts is not None:
            index = len(interpreters)
            interpreters.append(facts)
        for member in group['members']:
            member['interpreter'] = index
            if index is None:
                member['interpreterError'] = group['error']
    return interpreters, started


def probe(request, started):
    out = {}
    if request.get('cacheDir') is not None:
        out['cacheDir'], out['cachedWheels'] = list_cache(request['cacheDir'])
    details = bool(request.get('releaseDetails'))
    venvs = [venv_facts.inspect_root(v['path'], details) if v.get('releases') else venv_facts.inspect_venv(v['path'])
             for v in request['venvs']]
    out['interpreters'], out['interpretersRun'] = [], 0
    if request.get('interpreters', True):
        out['interpreters'], out['interpretersRun'] = describe_interpreters(request['venvs'], venvs, known_interpreters(request))
    out['venvs'] = venvs
    out['probeMs'] = round((time.time() - started) * 1000, 1)
    return out


def main():
    started = time.time()
    try:
        request = protocol.read_request()
    except protocol.RequestError as e:
        sys.stderr.write('vdeploy probe: %s\n' % e)
        return 2
    try:
        result = probe(request, started)
    except ProbeError as e:
        result = {'error': str(e)}
    # A newline first: whatever a login shell printed before does not run into the JSON line.
    sys.stdout.write('\n')
    protocol.answer(result)
    return 0
