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
import os
import pwd
import signal
import stat
import sys
import time

from vdeploy_remote import files_record, files_stage, protocol
from vdeploy_remote.files_record import FilesError
from vdeploy_remote.files_stage import Failure

# Content beyond this is not sent back for a diff (the plan says "too big").
CONTENT_LIMIT = 256 * 1024
# Lines of a handler's output kept for messages.
HANDLER_TAIL = 10


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
    state_dir = request.get('stateDir') or files_record.default_state_dir()
    record = files_record.read_record(state_dir, request['host'])
    files = [file_fact(f['path'], f['sha256'], bool(f.get('content'))) for f in request['files']]
    return {'files': files, 'managed': record['managed'], 'pending': record['pending'],
            'user': user_name(os.geteuid())}


# --- apply ----------------------------------------------------------------------------------------

def put_in_place(staged, result):
    for tmp, path in staged:
        try:
            os.replace(tmp, path)
        except OSError as e:
            files_stage.unstage([t for t, _ in staged if os.path.lexists(t)])
            raise Failure('rename', 'cannot rename the temp file into place: %s' % (e.strerror or e), path)
        result['written'].append(path)
    for directory in sorted(set(os.path.dirname(p) for _, p in staged)):
        files_record.fsync_dir(directory)


def fix_meta(metas, result):
    for spec in metas:
        path = spec['path']
        try:
            st = os.lstat(path)
        except OSError as e:
            raise Failure('meta', 'cannot look at it: %s' % (e.strerror or e), path)
        if not stat.S_ISREG(st.st_mode):
            raise Failure('meta', 'it is not a regular file: vdeploy never changes one', path)
        files_stage.set_meta(path, spec, 'meta')
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
        code, output = files_stage.run_shell(command)
        tail = protocol.tail(output, HANDLER_TAIL)
        result['handlers'].append({'command': command, 'ok': code == 0, 'exitCode': code,
                                   'ms': int((time.time() - started) * 1000), 'tail': tail})
        if code != 0:
            how = 'was killed' if code is None else 'exited with %d' % code
            raise Failure('handler', '`%s` %s' % (command, how), output=tail)
        if command in record['pending']:
            record['pending'].remove(command)
            files_record.write_record(state_dir, record)


def apply(request, stop):
    """The 'files.result' of applying request; `stop` is a list that a signal appends to."""
    result = {'ok': False, 'written': [], 'meta': [], 'removed': [], 'failed': None, 'handlers': [],
              'pending': [], 'stopped': False}
    state_dir = request.get('stateDir') or files_record.default_state_dir()
    record = None
    try:
        record = files_record.read_record(state_dir, request['host'])
        staged, made = files_stage.stage_all(request['write'])
        # The handlers are pending before the first file changes: whatever stops us from here on, the
        # next run still runs them.
        record['pending'] = record['pending'] + [h for h in unique(request['handlers']) if h not in record['pending']]
        try:
            files_record.write_record(state_dir, record)
        except FilesError:
            files_stage.unstage(made)
            raise
        put_in_place(staged, result)
        fix_meta(request['meta'], result)
        remove_orphans(request['remove'], result)
        record['managed'] = dict(request['managed'])
        files_record.write_record(state_dir, record)
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
