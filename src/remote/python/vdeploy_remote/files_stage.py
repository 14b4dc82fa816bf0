"""Staging config files (issue 17): every file is written to a temp file in its destination directory,
checked against its sha256, chowned, chmodded and validated BEFORE anything is renamed into place; a
failure removes every temp file and directory made, so a failed validate changes nothing."""
import base64
import grp
import hashlib
import os
import pwd
import shlex
import stat
import subprocess

from vdeploy_remote import files_record, protocol

# Lines of a validator's output kept for messages.
VALIDATE_TAIL = 20


class Failure(Exception):
    """One file operation or handler failed: the result's `failed`."""

    def __init__(self, stage, message, path=None, output=None):
        Exception.__init__(self, message)
        self.failed = {'stage': stage, 'message': message}
        if path is not None:
            self.failed['path'] = path
        if output:
            self.failed['output'] = output


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
        tmp = files_record.write_durably(path, data, 0o600)
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

