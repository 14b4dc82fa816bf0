/**
 * The part of the probe script (probe-script.ts) that describes interpreters: Python functions,
 * spliced into PROBE_SCRIPT, which provides `json`, `os`, `subprocess`, `normalize` and
 * INTERPRETER_SCRIPT.
 *
 * Starting an interpreter to import packaging and list its ~900 tags costs 50–60 ms of CPU, paid per
 * host on every run although the answer almost never changes; so vdeploy caches the facts on the
 * machine it runs on (interpreter-cache.ts) and sends what it knows in the request:
 *   "known": [{"python": <realpath>, "fingerprint": <hex>, "files": [<path>…]}]
 * A fingerprint is computed here without starting the interpreter: the os.stat of its realpath and of
 * the files its facts came from (packaging's source, a shared libpython), the kernel's uname (the
 * platform_* markers) and the C library version (manylinux/musllinux tags). An interpreter whose
 * fingerprint matches is answered as {"python", "cached": <fingerprint>}; only the others are run,
 * and their facts come back with "python", "fingerprint" and "files" for vdeploy to remember. Nothing
 * is written on the host: the cache is vdeploy's, and a plan changes nothing anywhere.
 *
 * Each interpreter also comes back with "quick": the parts of a weaker identity that SFTP can read
 * without running anything (size, whole-second mtime and mode of the same files; the kernel release
 * and version from /proc; /etc/ld.so.cache's stat). vdeploy stores its hash next to the fingerprint,
 * and a later probe over SFTP alone (read-host-files.ts) trusts the cached facts while it matches.
 */
export const PROBE_INTERPRETERS_PY = String.raw`
def resolve_python(python):
    found = shutil.which(python)
    if found:
        return found, None
    if '/' in python:
        return None, '%s does not exist or is not executable' % python
    return None, "%s not found on the login user's PATH" % python

def last_line(text):
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    return lines[-1] if lines else ''

def start_interpreter(executable):
    try:
        process = subprocess.Popen([executable, '-I', '-c', INTERPRETER_SCRIPT], stdin=subprocess.DEVNULL,
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

def describe_interpreters(requested, venvs, known):
    # Returns (interpreters, how many were started).
    groups = []
    by_real = {}
    for request, facts in zip(requested, venvs):
        if facts['state'] == 'venv':
            executable = os.path.join(request['path'], 'bin', 'python')
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
            rank = 2 if any(normalize(p['name']) == 'pip' for p in facts['installed']) else 1
        if rank > group['rank']:
            group['run'], group['rank'] = executable, rank
        group['members'].append(facts)
    system = system_identity() if groups else None
    quick = quick_system() if groups else None
    started = 0
    for group in groups:
        group['cached'], group['process'], group['error'] = None, None, None
        entry = known.get(group['real'])
        if entry is not None and fingerprint(group['real'], entry['files'], system) == entry.get('fingerprint'):
            group['cached'] = entry['fingerprint']
            continue
        group['before'] = file_identity(group['real'])
        group['process'], group['error'] = start_interpreter(group['run'])
        if group['process'] is not None:
            started += 1
    interpreters = []
    for group in groups:
        facts = None
        if group['cached'] is not None:
            facts = {'python': group['real'], 'cached': group['cached'],
                     'quick': quick_identity(group['real'], known[group['real']]['files'], quick)}
        elif group['process'] is not None:
            facts, group['error'] = finish_interpreter(group['run'], group['process'])
            if facts is not None:
                files = [f for f in facts.get('files') or [] if isinstance(f, str)]
                facts.update(python=group['real'], files=files)
                # Replaced while it ran (a package upgrade): these facts are good for now, not for later.
                if file_identity(group['real']) == group['before']:
                    facts['fingerprint'] = fingerprint(group['real'], files, system)
                    facts['quick'] = quick_identity(group['real'], files, quick)
        index = None
        if facts is not None:
            index = len(interpreters)
            interpreters.append(facts)
        for member in group['members']:
            member['interpreter'] = index
            if index is None:
                member['interpreterError'] = group['error']
    return interpreters, started
`;
