"""Config files on a host (issue 17, docs/files.md): what is there, and writing what the repository says.

stdin, after the payload: one JSON request ('files.request'):
  {"op": "facts", ...}  -> one line ('files.facts'): each asked path (missing / a regular file with its
                           sha256, mode, owner, group, size, and its content when it differs and is small
                           enough to diff / something else), and vdeploy's record on this host.
  {"op": "apply", ...}  -> one line ('files.result'): files written, metadata fixed, orphans removed,
                           handlers run.

The record, <stateDir>/files.json: {"v": 1, "host": name, "managed": {path: sha256}, "pending": [cmd]}.
`pending` is what makes handlers survive a failed run: an apply adds its handlers there BEFORE the first
file is renamed into place, and drops each one only after it ran successfully, so a handler that failed,
was interrupted or was cut off with the connection is still there for the next run, even though the file
no longer differs by then.

Apply is all-or-nothing up to the renames: every file is written to a temp file in its destination
directory, checked, chowned, chmodded and validated first; any failure removes every temp file (and
directory) made and changes nothing else. Then the record, then the renames (rename(2): a reader sees the
old file or the new one, never a part), then the handlers, in order. SIGTERM, SIGINT and SIGHUP only ask
to stop: the renames finish, and no handler starts after the signal.

Exit: 0 done; 1 a file, the record or a handler failed, or it stopped before a handler; 3 an unusable
request, or (facts) an unreadable record or file: {"error", "hint"?} and one line on stderr.
"""
import base64
import grp
import hashlib
import json
import os
import pwd
import shlex
import signal
import stat
import subprocess
import sys
import time

from vdeploy_remote import protocol

# Content beyond this is not sent back for a diff (the plan says "too big").
CONTENT_LIMIT = 256 * 1024
RECORD = 'files.json'
# Lines of a validator's or handler's output kept for messages.
VALIDATE_TAIL = 20
HANDLER_TAIL = 10


class FilesError(Exception):
    """The request or the record cannot be used: nothing was changed."""

    def __init__(self, message, hint=None):
        Exception.__init__(self, message)
        self.hint = hint


class Failure(Exception):
    """One file operation or handler failed: the result's `failed`."""

    def __init__(self, stage, message, path=None, output=None):
        Exception.__init__(self, message)
        self.failed = {'stage': stage, 'message': message}
        if path is not None:
            self.failed['path'] = path
        if output:
            self.failed['output'] = output


def default_state_dir():
    """/var/lib/vdeploy for root, else ~/.local/state/vdeploy of the effective user (not $HOME: under
    sudo it may still be the login user's)."""
    if os.geteuid() == 0:
        return '/var/lib/vdeploy'
    return os.path.join(pwd.getpwuid(os.geteuid()).pw_dir, '.local', 'state', 'vdeploy')


def user_name(uid):
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def group_name(gid):
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


# --- the record -----------------------------------------------------------------------------------

def record_path(state_dir):
    return os.path.join(state_dir, RECORD)


def read_record(state_dir, host):
    """The record (an empty one when there is none); FilesError naming the file when unusable."""
    path = record_path(state_dir)
    hint = 'fix or remove %s (without it vdeploy treats no file as managed and no handler as pending)' % path
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except (FileNotFoundError, NotADirectoryError):
        # No record yet (a path through a file has none either: writing one will say what is wrong).
        return {'v': protocol.PROTOCOL, 'host': host, 'managed': {}, 'pending': []}
    except OSError as e:
        raise FilesError('the record %s cannot be read: %s' % (path, e.strerror or e), hint)
    try:
        record = json.loads(data.decode('utf-8'))
    except ValueError as e:
        raise FilesError('the record %s is not valid JSON (%s)' % (path, e), hint)
    if not isinstance(record, dict) or record.get('v') != protocol.PROTOCOL:
        raise FilesError('the record %s is not a vdeploy record of protocol %d' % (path, protocol.PROTOCOL), hint)
    managed, pending = record.get('managed'), record.get('pending')
    if not isinstance(managed, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in managed.items()):
        raise FilesError('the record %s: "managed" is not an object of path -> sha256' % path, hint)
    if not isinstance(pending, list) or not all(isinstance(c, str) for c in pending):
        raise FilesError('the record %s: "pending" is not a list of commands' % path, hint)
    return {'v': protocol.PROTOCOL, 'host': host, 'managed': managed, 'pending': pending}


def fsync_dir(path):
    """Makes a rename in `path` durable (best effort: some filesystems refuse)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def temp_name(path):
    directory, name = os.path.split(path)
    return os.path.join(directory, '.%s.vdeploy-%d-%s' % (name, os.getpid(), os.urandom(4).hex()))


def write_durably(path, data, mode):
    """data into a new temp file beside path (fsynced); the temp file's path. Removed again on failure."""
    tmp = temp_name(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        remove_quietly(tmp)
        raise
    os.close(fd)
    return tmp


def write_record(state_dir, record):
    """temp + fsync + rename + fsync of the directory; FilesError when it cannot be written."""
    path = record_path(state_dir)
    try:
        os.makedirs(state_dir, 0o755, exist_ok=True)
        data = (json.dumps(record, indent=1, sort_keys=True) + '\n').encode('utf-8')
        tmp = write_durably(path, data, 0o644)
        try:
            os.replace(tmp, path)
        except OSError:
            remove_quietly(tmp)
            raise
    except OSError as e:
        raise FilesError('the record %s cannot be written: %s' % (path, e.strerror or e))
    fsync_dir(state_dir)


def remove_quietly(path):
    try:
        os.unlink(path)
    except OSError:
        pass


# --- facts ----------------------------------------------------------------------------------------

def metadata(st):
    return {'mode': stat.S_IMODE(st.st_mode), 'owner': user_name(st.st_uid), 'group': group_name(st.st_gid)}


def file_fact(path, want_sha, want_content):
    """What is at path: 'missing', a regular 'file' (with its sha256…), or 'other' (never written through)."""
    try:
        st = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return {'path': path, 'state': 'missing'}
    except OSError as e:
        raise FilesError('%s cannot be looked at: %s' % (path, e.strerror or e), unreadable_hint())
    if not stat.S_ISREG(st.st_mode):
        fact = {'path': path, 'state': 'other'}
        fact.update(metadata(st))
        return fact
    h = hashlib.sha256()
    kept = []
    try:
        # O_NOFOLLOW: a symlink swapped in since the lstat is refused, not followed.
        fd = os.open(path, os.O_RDONLY | getattr(os, 'O_NOFOLLOW', 0))
    except OSError as e:
        raise FilesError('%s cannot be read: %s' % (path, e.strerror or e), unreadable_hint())
    with os.fdopen(fd, 'rb') as f:
        st = os.fstat(f.fileno())
        for block in iter(lambda: f.read(1 << 16), b''):
            h.update(block)
            if st.st_size <= CONTENT_LIMIT:
                kept.append(block)
    fact = {'path': path, 'state': 'file', 'sha256': h.hexdigest(), 'size': st.st_size}
    fact.update(metadata(st))
    if want_content and fact['sha256'] != want_sha and st.st_size <= CONTENT_LIMIT:
        fact['content'] = base64.b64encode(b''.join(kept)).decode('ascii')
    return fact


def unreadable_hint():
    if os.geteuid() == 0:
        return None
    return 'files the login user cannot read need root: set `sudo: true` on the host or the files entry in the deployfile'


def facts(request):
    state_dir = request.get('stateDir') or default_state_dir()
    record = read_record(state_dir, request['host'])
    files = [file_fact(f['path'], f['sha256'], bool(f.get('content'))) for f in request['files']]
    return {'files': files, 'managed': record['managed'], 'pending': record['pending'],
            'user': user_name(os.geteuid())}


# --- apply: staging -------------------------------------------------------------------------------

def ids_for(owner, group, path, stage):
    """(uid, gid) to chown to, -1 for one not given; Failure when a name is unknown here."""
    uid = gid = -1
    try:
        if owner is not None:
            uid = pwd.getpwnam(owner).pw_uid
    except KeyError:
        raise Failure(stage, 'there is no user %r on this host' % owner, path)
    try:
        if group is not None:
            gid = grp.getgrnam(group).gr_gid
    except KeyError:
        raise Failure(stage, 'there is no group %r on this host' % group, path)
    return uid, gid


def set_meta(path, spec, stage, shown=None):
    """chown (owner/group when given) then chmod: chown may clear set-id bits, so chmod comes last."""
    shown = shown or path
    uid, gid = ids_for(spec.get('owner'), spec.get('group'), shown, stage)
    try:
        if uid != -1 or gid != -1:
            os.chown(path, uid, gid)
    except OSError as e:
        raise Failure(stage, 'cannot give it to %s: %s' % (':'.join(x for x in (spec.get('owner'), spec.get('group')) if x),
                                                             e.strerror or e), shown)
    try:
        os.chmod(path, spec['mode'])
    except OSError as e:
        raise Failure(stage, 'cannot set mode %04o: %s' % (spec['mode'], e.strerror or e), shown)


def make_parents(directory, made):
    """Creates the missing directories down to `directory` (0755), appending each to `made`."""
    missing = []
    while not os.path.isdir(directory):
        if os.path.lexists(directory):
            raise OSError(20, 'Not a directory', directory)
        missing.append(directory)
        parent = os.path.dirname(directory)
        if parent == directory:
            break
        directory = parent
    for d in reversed(missing):
        os.mkdir(d, 0o755)
        made.append(d)
        os.chmod(d, 0o755)  # whatever the umask


def keep_owner(tmp, path):
    """A file whose owner/group the deployfile leaves unmanaged keeps the ones it has (when we may)."""
    try:
        st = os.lstat(path)
        os.chown(tmp, st.st_uid, st.st_gid)
    except OSError:
        pass


def run_shell(command):
    """(exit code or None when killed, combined output) of `sh -c command` in /, stdin /dev/null."""
    try:
        p = subprocess.run(['sh', '-c', command], cwd='/', stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    except OSError as e:
        return 127, str(e)
    code = p.returncode if p.returncode >= 0 else None
    return code, p.stdout.decode('utf-8', 'replace')


def stage_one(spec, made):
    """Writes spec's content to a temp file beside its path, ready to rename; the temp path (in `made`)."""
    path = spec['path']
    try:
        data = base64.b64decode(spec['content'].encode('ascii'), validate=True)
    except (ValueError, UnicodeEncodeError) as e:
        raise Failure('request', 'its content is not base64: %s' % e, path)
    if hashlib.sha256(data).hexdigest() != spec['sha256']:
        raise Failure('checksum', 'its content does not have the sha256 vdeploy computed (%s)' % spec['sha256'], path)
    try:
        st = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        st = None
    except OSError as e:
        raise Failure('write', 'cannot look at it: %s' % (e.strerror or e), path)
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise Failure('write', 'it is not a regular file (a directory, symlink or device): vdeploy never writes over one', path)
    try:
        make_parents(os.path.dirname(path), made)
    except OSError as e:
        raise Failure('mkdir', 'cannot create its directory %s: %s' % (e.filename or os.path.dirname(path), e.strerror or e), path)
    try:
        tmp = write_durably(path, data, 0o600)
    except OSError as e:
        raise Failure('write', 'cannot write a temp file beside it: %s' % (e.strerror or e), path)
    made.append(tmp)
    if st is not None and spec.get('owner') is None and spec.get('group') is None:
        keep_owner(tmp, path)
    set_meta(tmp, spec, 'chown', path)
    validate(spec, tmp)
    return tmp


def validate(spec, tmp):
    command = spec.get('validate')
    if not command:
        return
    code, output = run_shell(command.replace('{path}', shlex.quote(tmp)))
    if code != 0:
        how = 'was killed' if code is None else 'exited with %d' % code
        raise Failure('validate', '`%s` %s: the file was not changed' % (command, how), spec['path'],
                      protocol.tail(output, VALIDATE_TAIL))


def stage_all(writes):
    """Every write staged as (temp, path); on any Failure every temp file and directory made is removed."""
    made = []
    staged = []
    try:
        for spec in writes:
            staged.append((stage_one(spec, made), spec['path']))
    except BaseException:
        unstage(made)
        raise
    return staged, made


def unstage(made):
    for path in reversed(made):
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                os.rmdir(path)
            else:
                os.unlink(path)
        except OSError:
            pass


# --- apply: in place ------------------------------------------------------------------------------

def put_in_place(staged, result):
    for tmp, path in staged:
        try:
            os.replace(tmp, path)
        except OSError as e:
            unstage([t for t, _ in staged if os.path.lexists(t)])
            raise Failure('rename', 'cannot rename the temp file into place: %s' % (e.strerror or e), path)
        result['written'].append(path)
    for directory in sorted(set(os.path.dirname(p) for _, p in staged)):
        fsync_dir(directory)


def fix_meta(metas, result):
    for spec in metas:
        path = spec['path']
        try:
            st = os.lstat(path)
        except OSError as e:
            raise Failure('meta', 'cannot look at it: %s' % (e.strerror or e), path)
        if not stat.S_ISREG(st.st_mode):
            raise Failure('meta', 'it is not a regular file: vdeploy never changes one', path)
        set_meta(path, spec, 'meta')
        result['meta'].append(path)


def remove_orphans(paths, result):
    for path in paths:
        try:
            st = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            continue  # gone already: nothing to prune
        except OSError as e:
            raise Failure('remove', 'cannot look at it: %s' % (e.strerror or e), path)
        if not stat.S_ISREG(st.st_mode):
            raise Failure('remove', 'it is not a regular file: vdeploy removes only files it wrote', path)
        try:
            os.unlink(path)
        except OSError as e:
            raise Failure('remove', 'cannot remove it: %s' % (e.strerror or e), path)
        result['removed'].append(path)


def run_handlers(handlers, record, state_dir, result, stop):
    """Each handler in order; each one that succeeds leaves the record's pending (rewritten at once)."""
    for command in handlers:
        if stop:
            result['stopped'] = True
            return
        started = time.time()
        code, output = run_shell(command)
        tail = protocol.tail(output, HANDLER_TAIL)
        result['handlers'].append({'command': command, 'ok': code == 0, 'exitCode': code,
                                   'ms': int((time.time() - started) * 1000), 'tail': tail})
        if code != 0:
            how = 'was killed' if code is None else 'exited with %d' % code
            raise Failure('handler', '`%s` %s' % (command, how), output=tail)
        if command in record['pending']:
            record['pending'].remove(command)
            write_record(state_dir, record)


def apply(request, stop):
    """The 'files.result' of applying request; `stop` is a list that a signal appends to."""
    result = {'ok': False, 'written': [], 'meta': [], 'removed': [], 'failed': None, 'handlers': [],
              'pending': [], 'stopped': False}
    state_dir = request.get('stateDir') or default_state_dir()
    record = None
    try:
        record = read_record(state_dir, request['host'])
        staged, made = stage_all(request['write'])
        # The handlers are pending before the first file changes: whatever stops us from here on, the
        # next run still runs them.
        record['pending'] = record['pending'] + [h for h in unique(request['handlers']) if h not in record['pending']]
        try:
            write_record(state_dir, record)
        except FilesError:
            unstage(made)
            raise
        put_in_place(staged, result)
        fix_meta(request['meta'], result)
        remove_orphans(request['remove'], result)
        record['managed'] = dict(request['managed'])
        write_record(state_dir, record)
        run_handlers(request['handlers'], record, state_dir, result, stop)
        result['ok'] = not result['stopped']
    except FilesError as e:
        result['failed'] = {'stage': 'record', 'message': str(e) + ('; ' + e.hint if e.hint else '')}
    except Failure as f:
        result['failed'] = f.failed
    result['pending'] = list(record['pending']) if record is not None else []
    return result


def unique(items):
    seen = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen


# --- main -----------------------------------------------------------------------------------------

def check(request):
    """FilesError unless the request has the shape its op needs (paths absolute)."""
    op = request.get('op')
    need = {'facts': ('host', 'files'), 'apply': ('host', 'write', 'meta', 'remove', 'handlers', 'managed')}
    if op not in need:
        raise FilesError('unknown op %r (this script does "facts" and "apply")' % (op,))
    missing = [k for k in need[op] if k not in request]
    if missing:
        raise FilesError('the %s request lacks %s' % (op, ', '.join(missing)))
    state_dir = request.get('stateDir')
    if state_dir is not None and not os.path.isabs(state_dir):
        raise FilesError('stateDir %r is not an absolute path' % state_dir)
    fields = {'files': ('path', 'sha256'), 'write': ('path', 'content', 'sha256', 'mode'), 'meta': ('path', 'mode')}
    paths = list(request.get('remove') or []) if op == 'apply' else []
    for key in need[op]:
        if key not in fields:
            continue
        items = request[key]
        if not isinstance(items, list) or not all(isinstance(f, dict) and all(k in f for k in fields[key]) for f in items):
            raise FilesError('the %s request is malformed: "%s" must list objects with %s' % (op, key, ', '.join(fields[key])))
        paths += [f['path'] for f in items]
    for path in paths:
        if not isinstance(path, str) or not os.path.isabs(path):
            raise FilesError('the file path %r is not absolute' % (path,))


def main():
    stop = []

    # A stop (Ctrl-C forwarded as SIGTERM, a hangup) must not cut the renames in half: it is noted, and
    # no handler starts after it.
    def on_signal(signum, frame):
        stop.append(signum)

    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, on_signal)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    try:
        request = protocol.read_request()
        check(request)
        if request['op'] == 'facts':
            protocol.answer(facts(request))
            return 0
    except (protocol.RequestError, FilesError) as e:
        return error_answer(str(e), getattr(e, 'hint', None))
    result = apply(request, stop)
    protocol.answer(result)
    if result['failed'] is not None:
        sys.stderr.write('vdeploy files: %s%s\n' % (result['failed'].get('path', '') and result['failed']['path'] + ': ',
                                                   result['failed']['message'].splitlines()[0]))
    return 0 if result['ok'] else 1


def error_answer(message, hint=None):
    out = {'error': message}
    if hint:
        out['hint'] = hint
    protocol.answer(out)
    sys.stderr.write('vdeploy files: %s\n' % message)
    return 3
