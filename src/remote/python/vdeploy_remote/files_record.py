"""vdeploy's record of config files on a host (issue 17, docs/files.md): <stateDir>/files.json,
{"v": 1, "host": name, "managed": {path: sha256}, "pending": [cmd]}, and writing files durably (a temp
file beside the target, fsync, rename(2), fsync of the directory) for the record and the files alike."""
import json
import os
import pwd

from vdeploy_remote import protocol

RECORD = 'files.json'


class FilesError(Exception):
    """The request or the record cannot be used: nothing was changed."""

    def __init__(self, message, hint=None):
        Exception.__init__(self, message)
        self.hint = hint


def default_state_dir():
    """/var/lib/vdeploy for root, else ~/.local/state/vdeploy of the effective user (not $HOME: under
    sudo it may still be the login user's)."""
    if os.geteuid() == 0:
        return '/var/lib/vdeploy'
    return os.path.join(pwd.getpwuid(os.geteuid()).pw_dir, '.local', 'state', 'vdeploy')


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

