"""The releases layout: <root>/releases/<id>/ is a complete venv per release, <root>/current a
relative symlink to the live one, and <root>/.vdeploy/ holds the app's lock and history.

Which releases count is read from the history, never from marks inside the releases: a release is
successful when a history line with outcome "deployed" names it ("release"). Anything else in
releases/ that is not live was left by a build that failed or was cut short (a killed sshd, a
SIGKILL, a full disk) and is removed by the next apply, under the lock, so never while it is built.

Release ids are `<UTC time>-<history number>` (20261203T221500Z-0007): unique (one history line per
apply, taken under the lock) and in deploy order; they are ordered by the number, so a host clock
that goes back cannot reorder them.
"""
import os
import re
import shutil
import subprocess
import time

RELEASES = 'releases'
CURRENT = 'current'
ID = re.compile(r'^\d{8}T\d{6}Z-(\d+)$')


def releases_dir(root):
    return os.path.join(root, RELEASES)


def current_link(root):
    return os.path.join(root, CURRENT)


def release_path(root, release_id):
    return os.path.join(root, RELEASES, release_id)


def number(release_id):
    m = ID.match(release_id)
    return int(m.group(1)) if m else 0


def new_id(history_count, now=None):
    return '%s-%04d' % (time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(now)), history_count + 1)


def next_id(root, history_count, wanted=None, now=None):
    """The id of the release an apply builds: `wanted` (a shipped release keeps its builder's id, so a
    receiver at the builder's path relocates nothing) when free and numbered after every release and
    history line here; else a new one, numbered after both (an adopted id may be ahead of the history)."""
    highest = max([number(r) for r in list_releases(root)] + [0])
    if (wanted and ID.match(wanted) and number(wanted) > max(highest, history_count)
            and not os.path.lexists(release_path(root, wanted))):
        return wanted
    return new_id(max(history_count, highest), now)


def list_releases(root):
    """The release ids in releases/, oldest first (by their number)."""
    try:
        names = [n for n in os.listdir(releases_dir(root)) if ID.match(n) and os.path.isdir(release_path(root, n))]
    except OSError:
        return []
    return sorted(names, key=lambda n: (number(n), n))


def live(root):
    """The id `current` points to, or None (no link, or a link that is not to releases/<id>)."""
    try:
        target = os.readlink(current_link(root))
    except OSError:
        return None
    parts = os.path.normpath(target).split(os.sep)
    if len(parts) == 2 and parts[0] == RELEASES and ID.match(parts[1]) and os.path.isdir(release_path(root, parts[1])):
        return parts[1]
    return None


def successful(history):
    """The ids of the releases a successful apply made live."""
    return set(e['release'] for e in history if e.get('outcome') == 'deployed' and isinstance(e.get('release'), str))


def rollback_release(history):
    """The release `vdeploy rollback` would go back to: the one live before the newest successful deploy
    that no rollback undid (the rule of chooseRollbackTarget in src/history/history-entry.ts)."""
    undone = set(e['undoes'] for e in history
                 if e.get('action', 'deploy') != 'deploy' and e.get('outcome') == 'deployed' and isinstance(e.get('undoes'), int))
    for n in range(len(history), 0, -1):
        e = history[n - 1]
        if e.get('action', 'deploy') == 'deploy' and e.get('outcome') == 'deployed' and n not in undone:
            return e.get('previousRelease')
    return None


def switch(root, release_id):
    """Points `current` at the release atomically: a new symlink renamed over the old one (rename(2)
    replaces it in one step; `ln -sfn` unlinks first, leaving a moment with no `current`)."""
    tmp = os.path.join(root, '.%s.%d.tmp' % (CURRENT, os.getpid()))
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(os.path.join(RELEASES, release_id), tmp)
    try:
        os.replace(tmp, current_link(root))
    except OSError:
        os.unlink(tmp)
        raise


def remove_stale_links(root):
    """Temporary symlinks a switch that died between symlink() and rename() left behind."""
    try:
        names = os.listdir(root)
    except OSError:
        return
    for name in names:
        if name.startswith('.%s.' % CURRENT) and name.endswith('.tmp'):
            try:
                os.unlink(os.path.join(root, name))
            except OSError:
                pass


def tree_bytes(path):
    """(bytes, own): the disk space the tree takes (each inode once), and the part no other tree
    shares (files with one link: what deleting it frees; releases cloned by hardlinks share the rest)."""
    total = own = 0
    seen = set()
    for directory, dirs, files in os.walk(path):
        for name in dirs + files:
            try:
                st = os.lstat(os.path.join(directory, name))
            except OSError:
                continue
            if st.st_ino in seen:
                continue
            seen.add(st.st_ino)
            size = st.st_blocks * 512
            total += size
            if st.st_nlink == 1 or os.path.isdir(os.path.join(directory, name)):
                own += size
    return total, own


def free_bytes(path):
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def remove(root, release_id, why):
    """Deletes one release; {"id", "bytes", "why"} (bytes: what it took that no other release shares)."""
    path = release_path(root, release_id)
    _, own = tree_bytes(path)
    shutil.rmtree(path)
    return {'id': release_id, 'bytes': own, 'why': why}


def sweep(root, history, live_id):
    """Removes what failed or interrupted builds left: releases neither live nor successful."""
    done = successful(history)
    return [remove(root, r, 'unfinished') for r in list_releases(root) if r != live_id and r not in done]


def clean_up(root, history, live_id, keep):
    """Keeps the newest `keep` successful releases, the live one and the one a rollback returns to;
    removes the other successful ones (unfinished ones are sweep's)."""
    done = successful(history)
    kept = [r for r in list_releases(root) if r in done]
    protected = set(kept[-keep:]) | set([live_id, rollback_release(history)])
    return [remove(root, r, 'beyond keep') for r in kept if r not in protected]


def clone(source, target, hardlinks):
    """Copies the live release to build the next one beside it; (ok, output).

    Hardlinks (cp -al) are the default: a clone costs directory entries, not a venv's size, and
    every writer that touches a release replaces files instead of writing into them, so the live
    release never sees the new one's changes: relocate writes a temporary file and renames it over
    the old; pip (18.1 and later; vdeploy's install needs 8 or later, so older pips get a full copy)
    unlinks a file before writing it (pip's wheel installer does so for mmap'd shared objects),
    stashes what it uninstalls by rename, and distlib removes a script before writing it; Python
    writes bytecode to a temporary file and renames it. A pip older than 18.1, or a filesystem
    without hardlinks, gets `cp -a --reflink=auto` (a copy-on-write clone where the filesystem has
    them, else a copy)."""
    os.makedirs(os.path.dirname(target), exist_ok=True)
    argv = ['cp', '-al' if hardlinks else '-a', source, target]
    if not hardlinks:
        argv.insert(2, '--reflink=auto')
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    except OSError as e:
        return False, str(e)
    out = p.stdout.decode('utf-8', 'replace')
    if p.returncode != 0 and hardlinks and os.path.lexists(target):
        shutil.rmtree(target, ignore_errors=True)
    return p.returncode == 0, out
