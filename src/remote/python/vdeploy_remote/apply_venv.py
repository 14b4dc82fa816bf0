"""Applies one venv's plan on its host; host_apply.py starts it in a child process (under
`sudo -n -u USER` for a venv owned by another user) with the request on stdin after the payload.

It holds an exclusive flock on <venv>/.vdeploy/lock for the whole apply (the kernel drops it if the
process dies: never a stale lock), then runs the steps in order — create, unmigrate, install, prune,
verify, migrate, hold, reload, healthcheck — stopping at the first that fails, and records a history line.
Each step is a function of the Apply context that raises StepFailed; main() answers once
(contract 'apply_venv.answer') and exits 0 even when a step failed: the answer says which.
Progress lines (`@vdeploy {"step", "phase"}`) go to stderr.
stdin: the request as one JSON line; with holdBeforeReload, then "go" (see hold).
"""
import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import time

from vdeploy_remote import pep440, protocol, venv_facts

# What the pip of the venv must offer: (option, first pip release with it, steps that need it).
# --report is wanted, not needed: without it (pip < 22.2) the provenance check rests on the hashes alone
# (every requirement is pinned to the sha256 of the wheel vdeploy pushed, and --no-index --find-links
# CACHE leaves pip nowhere else to look). PIP_CONFIG_FILE=/dev/null is honoured since pip 6.0 too.
PIP_MINIMUMS = (
    ('--isolated', (6, 0), ('install', 'prune')),
    ('--disable-pip-version-check', (6, 0), ('install', 'prune')),
    ('--require-hashes', (8, 0), ('install',)),
    ('--report', (22, 2), ()),
)

# --isolated ignores PIP_* variables and user config but still reads the global and site config files;
# PIP_CONFIG_FILE=/dev/null is pip's documented switch that skips them all.
PIP_ENV = {'PIP_CONFIG_FILE': os.devnull}


class StepFailed(Exception):
    """A step failed; its entry (if it ran a command) is already in ctx.steps. `error`: a message for
    failures that are not a command's, e.g. the lock's."""

    def __init__(self, step, error=None):
        Exception.__init__(self, error or '%s failed' % step)
        self.step = step
        self.error = error


class Locked(Exception):
    """Another apply holds the venv's lock; `holder` is what it wrote into the lock file."""

    def __init__(self, holder):
        Exception.__init__(self, 'locked by %r' % (holder,))
        self.holder = holder


class Interrupted(Exception):
    """A polite stop (SIGTERM, SIGINT, SIGHUP) arrived; the step that was running has finished."""


class Apply(object):
    """One apply's state: its request, the steps run so far, the history record being built."""

    def __init__(self, request, sleep=time.sleep):
        self.request = request
        self.venv = request['venv']
        self.meta = os.path.join(self.venv, '.vdeploy')
        self.python = os.path.join(self.venv, 'bin', 'python')
        self.steps = []
        self.interrupted = []
        self.history = dict(request.get('history') or {})
        # 'app.name' of each migration this apply applied or unapplied, in the order Django ran them.
        self.migrations = {'applied': [], 'unapplied': []}
        self.lock_file = None
        self.sleep = sleep
        # Where "go" comes from when the request says holdBeforeReload (main: the rest of stdin).
        self.control = None

    def app_dir(self):
        """Where the reload and the health check run: the venv (in place), the app root's `current` (releases)."""
        return self.venv

    def django_argv(self, argv, cwd):
        """The Django command as the request gives it (a release apply points it at the new release)."""
        return argv, cwd

    def close(self):
        if self.lock_file is not None:
            self.lock_file.close()
            self.lock_file = None

    def failed_step(self, name, message):
        """Records a step that failed without a command (exitCode null) and raises."""
        self.steps.append({'name': name, 'ok': False, 'exitCode': None, 'ms': 0, 'stderrTail': message})
        raise StepFailed(name)

    def run(self, name, argv, cwd=None, env=None, extra=None):
        """Runs one command as step `name`; (ok, stdout). Records the step, with stderr's tail on failure."""
        protocol.progress({'step': name, 'phase': 'start'})
        started = time.time()
        full_env = dict(os.environ)
        full_env.update(env or {})
        try:
            # Same process group as this script: stopping the deploy for good (kill -- -PGID) stops pip too.
            proc = subprocess.Popen(argv, cwd=cwd, env=full_env, stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            out, err = proc.communicate()
            code = proc.returncode
            out, err = out.decode('utf-8', 'replace'), err.decode('utf-8', 'replace')
        except OSError as e:
            out, err, code = '', str(e), 127
        step = {'name': name, 'ok': code == 0, 'exitCode': code, 'ms': int((time.time() - started) * 1000)}
        step.update(extra or {})
        if code != 0:
            step['stderrTail'] = protocol.tail(err or out)
        self.steps.append(step)
        protocol.progress({'step': name, 'phase': 'end'})
        return step['ok'], out


# --- lock ---

def lock(ctx):
    """Takes <venv>/.vdeploy/lock (waiting up to lockWaitSeconds) and writes the holder into it."""
    venv = ctx.venv
    if os.path.lexists(venv) and not os.path.isdir(venv):
        raise StepFailed('lock', '%s exists and is not a directory' % venv)
    if ctx.request.get('create') and os.path.isdir(venv):
        leftovers = [e for e in os.listdir(venv) if e != '.vdeploy']
        if leftovers and not os.path.isfile(os.path.join(venv, 'pyvenv.cfg')) and not venv_facts.half_made(venv):
            raise StepFailed('lock', '%s exists and is not a venv (it holds %s)' % (venv, ', '.join(sorted(leftovers)[:3])))
    take_lock(ctx)


def take_lock(ctx):
    """The flock on <meta>/lock, waiting up to lockWaitSeconds; the holder is written into it."""
    try:
        os.makedirs(ctx.meta, exist_ok=True)
        f = open(os.path.join(ctx.meta, 'lock'), 'a+', encoding='utf-8', errors='replace')
    except OSError as e:
        raise StepFailed('lock', 'cannot create %s: %s' % (ctx.meta, e))
    deadline = time.time() + float(ctx.request.get('lockWaitSeconds') or 0)
    while True:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.time() >= deadline or ctx.interrupted:
                f.seek(0)
                holder = f.read().strip()
                f.close()
                raise Locked(read_holder(holder))
            ctx.sleep(0.2)
    f.seek(0)
    f.truncate()
    f.write(json.dumps(ctx.request['holder']))
    f.flush()
    ctx.lock_file = f


def read_holder(text):
    try:
        holder = json.loads(text)
    except ValueError:
        holder = None
    return holder if isinstance(holder, dict) else {'raw': text}


# --- create ---

# A venv vdeploy creates is marked (<venv>/.vdeploy/creating) until its first successful apply: a
# marked venv is half-made (a disk that filled up, a crash, a failed first install), is reported as
# missing by the probe, and is emptied before it is created again. Building it aside and renaming
# it into place would be atomic, but a venv's bin/ scripts carry its path in their shebangs (a
# renamed venv would need relocating), and its lock lives inside it; the marker needs neither.

def create(ctx):
    spec = ctx.request.get('create')
    # A whole venv already there was created by another deploy since this one probed.
    if not spec or (os.path.isfile(os.path.join(ctx.venv, 'pyvenv.cfg')) and not venv_facts.half_made(ctx.venv)):
        return
    start_creating(ctx)
    ok, _ = ctx.run('create', [spec['python'], '-m', 'venv', ctx.venv])
    if not ok:
        explain_ensurepip(ctx)
        raise StepFailed('create')


def start_creating(ctx):
    """Marks the venv as being created, then empties what an earlier attempt left (all but .vdeploy)."""
    try:
        os.makedirs(ctx.meta, exist_ok=True)
        with open(venv_facts.creating_marker(ctx.venv), 'w', encoding='utf-8') as f:
            f.write(json.dumps(ctx.request['holder']))
        empty_venv(ctx.venv)
    except OSError as e:
        ctx.failed_step('create', 'cannot clear the half-made venv %s: %s' % (ctx.venv, e))


def empty_venv(venv):
    """Removes everything in the venv but .vdeploy (its lock, history and creating marker)."""
    for name in os.listdir(venv):
        path = os.path.join(venv, name)
        if name == '.vdeploy':
            continue
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)


def explain_ensurepip(ctx):
    """`python -m venv` hides why ensurepip failed (it says only 'returned non-zero exit status'),
    and that is where a full disk shows; running it once more puts its own error in the step."""
    step = ctx.steps[-1]
    said = step.get('stderrTail', '')
    if 'ensurepip' not in said or 'returned non-zero exit status' not in said or not os.path.exists(ctx.python):
        return
    try:
        p = subprocess.run([ctx.python, '-m', 'ensurepip', '--upgrade', '--default-pip'], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=dict(os.environ, **PIP_ENV))
        out = p.stdout.decode('utf-8', 'replace')
    except OSError as e:
        out = str(e)
    # pip's own 'ERROR:' lines say why; the traceback of ensurepip's subprocess after them does not.
    errors = [line for line in out.splitlines() if line.startswith('ERROR:')]
    step['stderrTail'] = protocol.tail(step['stderrTail'] + '\nensurepip: ' + ('\n'.join(errors[-3:]) or protocol.tail(out, 3)))


def settle_created(ctx, outcome):
    """After a venv vdeploy created: the first success unmarks it; a failure removes it (keeping
    .vdeploy: the history line to come, the lock) so no later run takes it for a whole venv. An
    interrupted one stays marked: the next run makes it anew."""
    if not ctx.request.get('create') or not venv_facts.half_made(ctx.venv) or outcome == 'interrupted':
        return
    try:
        if outcome == 'deployed':
            os.unlink(venv_facts.creating_marker(ctx.venv))
        else:
            empty_venv(ctx.venv)
    except OSError as e:
        ctx.steps.append({'name': 'create', 'ok': False, 'exitCode': None, 'ms': 0,
                          'stderrTail': 'cannot %s %s: %s' % ('unmark' if outcome == 'deployed' else 'remove the half-made venv', ctx.venv, e)})


# --- pip's stash folders ---

def remove_stashes(ctx):
    """Removes the `~name` folders a pip that died mid-way left in site-packages (venv_facts.stashes)."""
    if not os.path.isfile(os.path.join(ctx.venv, 'pyvenv.cfg')):
        return
    left = venv_facts.stashes(ctx.venv, venv_facts.read_config(os.path.join(ctx.venv, 'pyvenv.cfg')))
    for path in left:
        try:
            shutil.rmtree(path)
        except OSError as e:
            ctx.failed_step('stashes', "cannot remove pip's leftover %s: %s" % (path, e))
    if left:
        ctx.history['removedStashes'] = left


# --- Django migrations ---

def django(ctx, name, args):
    mig = ctx.request.get('migrate')
    if not mig:
        ctx.failed_step(name, 'the venv declares no Django command to run %s with' % name)
    argv, cwd = ctx.django_argv(list(mig['argv']), mig.get('cwd'))
    return ctx.run(name, argv + args, cwd=cwd, env=mig.get('env'))


def parse_applied(output):
    """What `showmigrations --plan` says is applied: {app: [names in the order applied]}."""
    state = {}
    for line in output.splitlines():
        line = line.strip()
        if line.startswith('[X]'):
            app, _, name = line[3:].strip().partition('.')
            state.setdefault(app, []).append(name)
    return state


def parse_pending(output):
    """What `showmigrations --plan` says `migrate` will apply: ['app.name', …] in the order it will."""
    return [line.strip()[3:].strip() for line in output.splitlines() if line.strip().startswith('[ ]')]


def parse_ran(output, verb):
    """The migrations a `migrate` run reports as done: ['app.name', …] from its `Applying app.name...`
    (verb 'Applying') or `Unapplying app.name...` lines, in the order they ran."""
    ran = []
    for line in output.splitlines():
        line = line.strip()
        if line.startswith(verb + ' ') and '.' in line:
            ran.append(line[len(verb) + 1:].split('...')[0].strip())
    return ran


def parse_migrated(before, output):
    """The applied migrations after `migrate`: `before` plus each `Applying app.name...` line."""
    after = dict((app, list(names)) for app, names in before.items())
    for line in output.splitlines():
        line = line.strip()
        if line.startswith('Applying ') and '.' in line:
            app, _, name = line[len('Applying '):].split('...')[0].strip().partition('.')
            if name not in after.setdefault(app, []):
                after[app].append(name)
    return after


def unmigrate(ctx):
    """A rollback reverses migrations with the newer code, before installing (or removing) it."""
    for target in ctx.request.get('unmigrate') or []:
        ok, out = django(ctx, 'unmigrate', ['migrate', target['app'], target['to'], '--noinput'])
        ctx.migrations['unapplied'].extend(parse_ran(out, 'Unapplying'))
        if not ok:
            raise StepFailed('unmigrate')


def migrate(ctx):
    """Records the applied migrations before (so a rollback can reverse them), then migrates."""
    mig = ctx.request.get('migrate')
    if not mig or not mig.get('run'):
        return
    ok, out = django(ctx, 'showmigrations', ['showmigrations', '--plan'])
    if not ok:
        raise StepFailed('migrate')
    state = parse_applied(out)
    ctx.history['migrationsBefore'] = state
    # Known only now, with the new code installed: what migrate is about to apply.
    ctx.steps[-1]['pending'] = parse_pending(out)
    ok, out = django(ctx, 'migrate', ['migrate', '--noinput'])
    ctx.history['migrationsAfter'] = parse_migrated(state, out)
    ctx.migrations['applied'].extend(parse_ran(out, 'Applying'))
    if not ok:
        raise StepFailed('migrate')


# --- pip ---

def pip_release(version):
    """(major, minor, ...) of a pip version; () when it does not start with a number."""
    m = re.match(r'\s*v?(\d+(?:\.\d+)*)', version or '')
    return tuple(int(p) for p in m.group(1).split('.')) if m else ()


def dotted(release):
    return '.'.join(str(p) for p in release)


def pip_too_old(version, step, venv):
    """Why the venv's pip cannot run `step`, or None."""
    release = pip_release(version)
    missing = [(option, since) for option, since, steps in PIP_MINIMUMS if step in steps and release < since]
    if not missing:
        return None
    option, since = max(missing, key=lambda m: m[1])
    return ('pip %s in %s is older than %s, which %s needs: upgrade that pip by hand (%s/bin/python -m pip '
            'install pip-VERSION-py3-none-any.whl) or recreate the venv with a newer Python'
            % (version, venv, dotted(since), option, venv))


def has_report(version):
    """Whether this pip writes --report (else the provenance check rests on the hashes alone)."""
    return pip_release(version) >= [since for option, since, _ in PIP_MINIMUMS if option == '--report'][0]


def pip_version(ctx, step):
    """The venv's pip version: from its metadata, else (a venv that sees the system's site-packages)
    from `python -m pip --version`. A venv without pip fails `step`."""
    version = venv_facts.installed_versions(ctx.venv).get('pip')
    if version:
        return version
    try:
        proc = subprocess.Popen([ctx.python, '-m', 'pip', '--version'], env=dict(os.environ, **PIP_ENV),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        out = proc.communicate()[0].decode('utf-8', 'replace')
    except OSError as e:
        proc, out = None, str(e)
    m = re.match(r'pip (\S+)', out.strip())
    if proc is not None and proc.returncode == 0 and m:
        return m.group(1)
    ctx.failed_step(step, '%s has no pip (%s): recreate the venv with pip (python3 -m venv, without '
                          '--without-pip)' % (ctx.venv, protocol.tail(out, 1) or 'python -m pip failed'))


def install_argv(python, cache, requirements, report=None):
    argv = [python, '-m', 'pip', 'install', '--isolated', '--no-index', '--find-links', cache,
            '--require-hashes', '--disable-pip-version-check', '--no-input']
    if report:
        argv += ['--report', report]
    return argv + ['-r', requirements]


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    return h.hexdigest()


class CacheUnreadable(Exception):
    """This process's user (the venv's owner, under sudo) may not read the login user's wheel cache."""


def unreadable_cache(cache, path):
    """Why this user cannot read `path` of the cache: the first directory it may not enter, else the file."""
    import pwd
    try:
        user = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        user = 'uid %d' % os.getuid()
    dirs, d = [], os.path.dirname(path)
    while not dirs or dirs[-1] != d:
        dirs.append(d)
        d = os.path.dirname(d)
    blocked = [d for d in reversed(dirs) if not os.access(d, os.X_OK)]
    why = ('%s is not searchable by %s' % (blocked[0], user)) if blocked else ('%s is not readable by %s' % (path, user))
    return ('%s cannot read the wheel cache %s: %s; let %s read it (chmod o+x on the directories, o+r on the '
            'wheels), or set this host\'s wheelCache in the deployfile to a directory %s can read'
            % (user, cache, why, user, user))


def check_cache(cache, wheels):
    """The wheels this install takes whose cached copy is missing or damaged; a damaged one is deleted
    (it would fail pip's hash check on every run from now on) so the next run pushes it again.
    Raises CacheUnreadable when the cache is there but this user may not read it."""
    corrupt = []
    for w in wheels:
        path = os.path.join(cache, w['filename'])
        try:
            digest = sha256_of(path)
        except OSError as e:
            if e.errno in (errno.EACCES, errno.EPERM):
                raise CacheUnreadable(unreadable_cache(cache, path))
            corrupt.append(w['filename'] + ' (missing)')
            continue
        if digest != w['sha256']:
            try:
                os.unlink(path)
                corrupt.append(w['filename'])
            except OSError as e:
                corrupt.append('%s (damaged; removing it failed: %s)' % (w['filename'], e.strerror))
    return corrupt


def in_cache(url, cache):
    """Whether a download URL from pip's report is a file directly in the cache (URLs are %-quoted)."""
    import urllib.parse
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != 'file' or parts.netloc not in ('', 'localhost'):
        return False
    return os.path.realpath(os.path.dirname(urllib.parse.unquote(parts.path))) == os.path.realpath(cache)


def foreign_downloads(report_path, cache):
    """What pip's --report says came from anywhere but the wheel cache vdeploy filled."""
    try:
        with open(report_path, encoding='utf-8') as f:
            report = json.load(f)
        urls = [i.get('download_info', {}).get('url', '?') for i in report.get('install', [])]
    except (OSError, ValueError, AttributeError) as e:
        return ['(pip report unreadable: %s)' % e]
    return [url for url in urls if not in_cache(url, cache)]


def install(ctx):
    inst = ctx.request.get('install')
    if not inst:
        return
    requirements = os.path.join(ctx.meta, 'requirements.txt')
    with open(requirements, 'w', encoding='utf-8') as f:
        f.write(inst['requirements'])
    cache = inst['cacheDir']
    try:
        corrupt = check_cache(cache, inst.get('wheels') or [])
    except CacheUnreadable as e:
        ctx.failed_step('install', str(e))
    if corrupt:
        ctx.failed_step('install', 'wheel cache entries were damaged or missing and have been removed: '
                        + ', '.join(corrupt) + '; run the deploy again to push them anew')
    version = pip_version(ctx, 'install')
    too_old = pip_too_old(version, 'install', ctx.venv)
    if too_old:
        ctx.failed_step('install', too_old)
    report = os.path.join(ctx.meta, 'pip-report.json') if has_report(version) else None
    if report and os.path.lexists(report):
        os.unlink(report)
    ok, _ = ctx.run('install', install_argv(ctx.python, cache, requirements, report), env=PIP_ENV,
                    extra={'pip': version, 'provenance': 'report' if report else 'hashes'})
    if not ok:
        raise StepFailed('install')
    # Proof that pip took every wheel from the cache vdeploy filled, and nothing from anywhere else.
    foreign = foreign_downloads(report, cache) if report else []
    if foreign:
        ctx.failed_step('verify', 'pip installed from outside the wheel cache: ' + ', '.join(foreign[:5]))


def prune(ctx):
    names = ctx.request.get('uninstall') or []
    if not names:
        return
    too_old = pip_too_old(pip_version(ctx, 'prune'), 'prune', ctx.venv)
    if too_old:
        ctx.failed_step('prune', too_old)
    ok, _ = ctx.run('prune', [ctx.python, '-m', 'pip', 'uninstall', '--isolated', '-y', '--disable-pip-version-check']
                    + list(names), env=PIP_ENV)
    if not ok:
        raise StepFailed('prune')


# --- verify ---

def differences(installed, expect, removed_keys):
    """How the installed set differs from the plan (versions compared as PEP 440: 1.0.0 is 1.0)."""
    wrong = ['%s %s (expected %s)' % (k, installed.get(k, 'missing'), v) for k, v in sorted(expect.items())
             if k not in installed or not pep440.same(installed[k], v)]
    return wrong + ['%s %s (expected removed)' % (k, installed[k]) for k in removed_keys if k in installed]


def verify(ctx):
    """The venv holds exactly the plan."""
    wrong = differences(venv_facts.installed_versions(ctx.venv), ctx.request.get('expect') or {},
                        ctx.request.get('uninstallKeys') or [])
    if wrong:
        ctx.failed_step('verify', 'installed set differs from the plan: ' + '; '.join(wrong[:10]))


# --- hold, reload and health check ---

def hold(ctx):
    """holdBeforeReload (host_apply sets it when the host's config files come in the same run): the
    apply is on its way to deployed; it says so and waits for "go" on stdin (its end means go too)
    while host_apply applies the files, so the reload and the health check see the new config."""
    if not ctx.request.get('holdBeforeReload') or ctx.control is None:
        return
    protocol.progress({'step': 'reload', 'phase': 'hold'})
    while True:
        line = ctx.control.read_line(True)
        if line is None or line == 'go':
            return


def reload(ctx):
    command = ctx.request.get('reload')
    if not command:
        return
    ok, _ = ctx.run('reload', ['sh', '-c', command], cwd=ctx.venv)
    if not ok:
        raise StepFailed('reload')


def check_command(command, cwd, timeout):
    """(ok, what happened) of one run of a health check command."""
    try:
        p = subprocess.run(['sh', '-c', command], cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, 'timed out after %ss' % timeout
    except OSError as e:
        return False, str(e)
    text = (p.stderr or p.stdout).decode('utf-8', 'replace')
    return p.returncode == 0, 'exit %d: %s' % (p.returncode, protocol.tail(text, 3))


# How much of a health check's body is read: enough for a version page, not a whole site.
BODY_LIMIT = 65536


def read_error_body(error):
    """The body of a non-2xx answer (a check may expect one), or b'' when it cannot be read."""
    try:
        return error.read(BODY_LIMIT)
    except Exception:
        return b''


def check_url(url, expect_status, timeout, expect_body=None):
    """(ok, what happened) of one fetch of a health check URL from this host."""
    import urllib.error
    import urllib.request
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            status, body = r.status, r.read(BODY_LIMIT)
    except urllib.error.HTTPError as e:
        status, body = e.code, read_error_body(e)
    except Exception as e:
        return False, '%s: %s' % (url, e)
    if status != expect_status:
        return False, '%s answered %s (expected %s)' % (url, status, expect_status)
    if expect_body is None:
        return True, '%s answered %s' % (url, status)
    text = body.decode('utf-8', 'replace')
    if expect_body in text:
        return True, '%s answered %s with %r' % (url, status, expect_body)
    return False, '%s answered %s without %r in its body (it began %r)' % (url, status, expect_body, text[:80])


def probe_health(hc, cwd, sleep=time.sleep):
    """(ok, attempts, last outcome): after `settle` seconds, the command and/or URL tried up to
    retries + 1 times. Right after a reload the app server may still answer with the old code: a
    check that can tell (expectBody with the new version) is polled until the new code answers."""
    attempts, ok, last = 0, False, ''
    if hc.get('settle'):
        sleep(hc['settle'])
    while attempts < hc['retries'] + 1 and not ok:
        if attempts:
            sleep(hc['interval'])
        attempts += 1
        if hc.get('command'):
            ok, last = check_command(hc['command'], cwd, hc['timeout'])
        if hc.get('url') and (ok or not hc.get('command')):
            ok, last = check_url(hc['url'], hc['expectStatus'], hc['timeout'], hc.get('expectBody'))
    return ok, attempts, last


def healthcheck(ctx):
    hc = ctx.request.get('healthcheck')
    if not hc:
        return
    protocol.progress({'step': 'healthcheck', 'phase': 'start'})
    started = time.time()
    ok, attempts, last = probe_health(hc, ctx.app_dir(), ctx.sleep)
    step = {'name': 'healthcheck', 'ok': ok, 'exitCode': 0 if ok else 1, 'ms': int((time.time() - started) * 1000)}
    if not ok:
        step['stderrTail'] = 'failed %d time%s: %s' % (attempts, '' if attempts == 1 else 's', last)
    ctx.steps.append(step)
    protocol.progress({'step': 'healthcheck', 'phase': 'end'})
    if not ok:
        raise StepFailed('healthcheck')


# --- record ---

def record(ctx, outcome, failed):
    """Completes the history record, appends it to <venv>/.vdeploy/history.jsonl, and returns the answer."""
    history = ctx.history
    history['outcome'] = outcome
    history['failedStep'] = failed
    history['steps'] = ctx.steps
    history['after'] = venv_facts.installed_versions(ctx.venv)
    if ctx.migrations['applied'] or ctx.migrations['unapplied']:
        history['migrations'] = ctx.migrations
    history['finishedAt'] = time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())
    try:
        with open(os.path.join(ctx.meta, 'history.jsonl'), 'a', encoding='utf-8') as f:
            f.write(json.dumps(history, sort_keys=True) + '\n')
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        ctx.steps.append({'name': 'record', 'ok': False, 'exitCode': None, 'ms': 0, 'stderrTail': str(e)})
    return {'outcome': outcome, 'failedStep': failed, 'steps': ctx.steps,
            'installed': history['after'], 'before': history.get('before', {}), 'migrations': ctx.migrations}


# (step, whether a stop asked for may end the apply after it). After prune the check comes with
# verify's; after reload the health check always runs, so a reload is never left unchecked. A stop
# after migrate ends the apply before the hold: a held apply always goes on to its reload.
STEPS = ((create, True), (remove_stashes, True), (unmigrate, True), (install, True), (prune, False), (verify, True),
         (migrate, True), (hold, False), (reload, False), (healthcheck, False))


def apply(ctx, steps=STEPS):
    """Runs the whole apply; the answer. The lock is held until ctx.close() (or the process ends)."""
    try:
        lock(ctx)
    except StepFailed as e:
        return {'outcome': 'failed', 'failedStep': e.step, 'steps': ctx.steps, 'error': e.error}
    except Locked as e:
        return {'outcome': 'locked', 'failedStep': 'lock', 'steps': ctx.steps, 'heldBy': e.holder}
    ctx.history['before'] = venv_facts.installed_versions(ctx.venv)
    outcome, failed = run_steps(ctx, steps)
    settle_created(ctx, outcome)
    return record(ctx, outcome, failed)


def run_steps(ctx, steps):
    """Runs the steps until one fails or a stop was asked for; (outcome, failed step)."""
    try:
        for step, may_stop in steps:
            step(ctx)
            if may_stop and ctx.interrupted:
                raise Interrupted()
    except StepFailed as e:
        return 'failed', e.step
    except Interrupted:
        return 'interrupted', None
    return 'deployed', None


def main():
    # The request is stdin's first line; what follows is "go" for a held apply (see hold).
    control = protocol.LineReader(0)
    try:
        request = protocol.read_request_line(control)
    except protocol.RequestError as e:
        protocol.answer({'outcome': 'failed', 'failedStep': 'request', 'steps': [], 'error': str(e)})
        return 0
    if request.get('releases'):
        from vdeploy_remote import release_steps
        ctx, run = release_steps.ReleaseApply(request), release_steps.apply
    else:
        ctx, run = Apply(request), apply
    ctx.control = control

    # A polite stop lets the running step finish, then records "interrupted".
    def on_signal(signum, frame):
        ctx.interrupted.append(signum)

    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, on_signal)
    try:
        protocol.answer(run(ctx))
    finally:
        ctx.close()
    return 0
