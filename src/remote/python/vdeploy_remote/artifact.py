"""Build once, ship everywhere (issue 16): a release's manifest, its tars, and receiving them.

The manifest lists every entry of a release (its own .vdeploy, the lock relocate takes, excepted) with
what a receiver checks: [relpath, "f", mode, size, sha256] | [relpath, "l", target] | [relpath, "d",
mode], sorted by relpath, with the builder's release path (sourcePath), the interpreter fingerprint
and the desired wheels. Its digest (sha256 of the canonical JSON) names the artifact.

A full tar holds vdeploy-manifest.json, then every entry under files/ in manifest order (a directory
before what it holds). A delta tar holds the full manifest, vdeploy-delta.json {"base", "removed"}, and
only the entries that changed since the base release. Tars are uncompressed: for a Django + gunicorn
release (9144 entries) gzip -1 made the tar 18 MiB instead of 60 but took 1.6 s to write instead of
0.6-1.0 s, and every receiver would pay gunzip too: on a LAN or loopback the bytes are cheaper.

Receiving writes each member itself (never tarfile's extract): the name must be in the manifest and
safe (relative, no '..', under no symlink), its kind, mode, size and sha256 (computed while it is
written: one pass) must be what the manifest says; anything else raises Mismatch naming the path.
"""
import hashlib
import io
import json
import os
import shutil
import stat
import tarfile
import time

from vdeploy_remote import relocate

MANIFEST = 'vdeploy-manifest.json'
DELTA = 'vdeploy-delta.json'
PREFIX = 'files/'
META = '.vdeploy'      # a release's lock (relocate's): never shipped, never checked
TEMP_PREFIX = '.vdeploy-pack-'
KEEP_TARS = 4
BLOCK = 1 << 20
JSON_LIMIT = 512 << 20  # a manifest bigger than this is not one


class Mismatch(Exception):
    """What was packed or received is not what its manifest says; the message names the path."""


# --- manifest ---

def walk(root):
    """[(relpath, lstat)] of everything under root except its top-level .vdeploy, sorted by relpath
    (a directory comes before what it holds: its path is their prefix). Symlinks are not followed."""
    found = []

    def visit(directory, prefix):
        with os.scandir(directory) as it:
            entries = list(it)
        for e in entries:
            if not prefix and e.name == META:
                continue
            st = e.stat(follow_symlinks=False)
            found.append((prefix + e.name, st))
            if stat.S_ISDIR(st.st_mode):
                visit(e.path, prefix + e.name + '/')

    visit(root, '')
    found.sort(key=lambda item: item[0])
    return found


def kind_of(st):
    return 'd' if stat.S_ISDIR(st.st_mode) else 'l' if stat.S_ISLNK(st.st_mode) else 'f' if stat.S_ISREG(st.st_mode) else None


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, 'rb', buffering=0) as f:
        for block in iter(lambda: f.read(BLOCK), b''):
            h.update(block)
    return h.hexdigest()


def entry_of(root, rel, st):
    path = os.path.join(root, rel)
    kind = kind_of(st)
    if kind == 'f':
        return [rel, 'f', stat.S_IMODE(st.st_mode), st.st_size, sha256_file(path)]
    if kind == 'l':
        return [rel, 'l', os.readlink(path)]
    if kind == 'd':
        return [rel, 'd', stat.S_IMODE(st.st_mode)]
    raise Mismatch('%s: not a file, directory or symlink: cannot be shipped' % rel)


def build_manifest(root, fingerprint, desired):
    """(manifest, {relpath: (inode, ctime_ns)} of its files and symlinks) of the release at root."""
    entries = walk(root)
    files = [entry_of(root, rel, st) for rel, st in entries]
    inodes = dict((rel, (st.st_ino, st.st_ctime_ns)) for rel, st in entries if not stat.S_ISDIR(st.st_mode))
    manifest = {'version': 1, 'sourcePath': root, 'fingerprint': fingerprint, 'desired': list(desired), 'files': files}
    return manifest, inodes


def canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(',', ':')).encode('ascii')


def digest_of(manifest):
    return hashlib.sha256(canonical(manifest)).hexdigest()


def snapshot(root):
    """{relpath: (inode, ctime_ns)} of a release's files and symlinks: taken right after a clone's
    relocation, it tells which files pip wrote afterwards (a new inode; the ctime guards against a
    freed inode number given to a new file)."""
    return dict((rel, (st.st_ino, st.st_ctime_ns)) for rel, st in walk(root) if not stat.S_ISDIR(st.st_mode))


def artifact_of(history, release_id):
    """The artifact digest of the release (from the newest history line that names it and has one)."""
    for entry in reversed(history):
        if entry.get('release') == release_id and isinstance(entry.get('artifact'), str):
            return entry['artifact']
    return None


# --- pack ---

class HashingWriter(object):
    """A file that hashes and counts what is written through it (tarfile's stream mode needs only write)."""

    def __init__(self, f):
        self.f = f
        self.sha256 = hashlib.sha256()
        self.bytes = 0

    def write(self, data):
        self.f.write(data)
        self.sha256.update(data)
        self.bytes += len(data)


def json_member(tar, name, obj):
    data = canonical(obj)
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
    tar.addfile(info, io.BytesIO(data))


def add_entry(tar, root, entry):
    rel, kind = entry[0], entry[1]
    path = os.path.join(root, rel)
    st = os.lstat(path)
    info = tarfile.TarInfo(PREFIX + rel)
    info.mtime = int(st.st_mtime)
    if kind == 'l':
        info.type, info.linkname, info.mode = tarfile.SYMTYPE, entry[2], 0o777
        tar.addfile(info)
    elif kind == 'd':
        info.type, info.mode = tarfile.DIRTYPE, entry[2]
        tar.addfile(info)
    else:
        if st.st_size != entry[3]:
            raise Mismatch('%s: changed while it was packed' % rel)
        info.type, info.mode, info.size = tarfile.REGTYPE, entry[2], entry[3]
        with open(path, 'rb') as f:
            tar.addfile(info, f)


def write_tar(path, root, heads, entries):
    """Writes the tar (temp file + rename); {path, bytes, sha256}."""
    tmp = os.path.join(os.path.dirname(path), '%s%d-%s' % (TEMP_PREFIX, os.getpid(), os.path.basename(path)))
    try:
        with open(tmp, 'wb') as raw:
            out = HashingWriter(raw)
            tar = tarfile.open(fileobj=out, mode='w|', format=tarfile.PAX_FORMAT, encoding='utf-8', errors='surrogateescape')
            for name, obj in heads:
                json_member(tar, name, obj)
            for entry in entries:
                add_entry(tar, root, entry)
            tar.close()
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return {'path': path, 'bytes': out.bytes, 'sha256': out.sha256.hexdigest()}


def delta_entries(manifest, inodes, live_path, snap):
    """(changed entries, removed relpaths) of the new release vs the live one it was cloned from. A file
    is unchanged when it is still the live release's inode (a hardlink) or still the inode the
    post-relocation snapshot saw (only its paths were rewritten); anything else pip wrote."""
    live = dict(walk(live_path))
    changed = []
    for entry in manifest['files']:
        rel, kind = entry[0], entry[1]
        old = live.get(rel)
        if old is None or kind_of(old) != kind:
            changed.append(entry)
        elif kind == 'd':
            if stat.S_IMODE(old.st_mode) != entry[2]:
                changed.append(entry)
        elif inodes[rel][0] != old.st_ino and inodes[rel] != snap.get(rel):
            changed.append(entry)
    kinds = dict((e[0], e[1]) for e in manifest['files'])
    removed = [rel for rel, st in sorted(live.items()) if kinds.get(rel) != kind_of(st)]
    return changed, removed


def pack(root, artifacts, fingerprint, desired, delta_from=None):
    """Packs the release at root into <artifacts>/<digest>.tar, and with delta_from (live release path,
    its artifact digest, the post-relocation snapshot) into <digest>.from-<base16>.tar; the answer's
    release.artifact."""
    started = time.time()
    manifest, inodes = build_manifest(root, fingerprint, desired)
    digest = digest_of(manifest)
    manifested = time.time()
    os.makedirs(artifacts, exist_ok=True)
    full = write_tar(os.path.join(artifacts, digest + '.tar'), root, [(MANIFEST, manifest)], manifest['files'])
    delta = None
    if delta_from:
        live_path, base, snap = delta_from
        changed, removed = delta_entries(manifest, inodes, live_path, snap)
        delta = write_tar(os.path.join(artifacts, '%s.from-%s.tar' % (digest, base[:16])), root,
                          [(MANIFEST, manifest), (DELTA, {'base': base, 'removed': removed})], changed)
        delta['base'] = base
    done = time.time()
    prune_tars(artifacts, protect=[full['path']] + ([delta['path']] if delta else []))
    return {'digest': digest, 'files': len(manifest['files']), 'full': full, 'delta': delta,
            'ms': {'manifest': int((manifested - started) * 1000), 'pack': int((done - manifested) * 1000)}}


def prune_tars(directory, keep=KEEP_TARS, protect=(), now=None):
    """Keeps the `keep` newest tars (by mtime) and those in protect; removes the rest, and temporary
    files a killed pack left (older than an hour). Errors are ignored: another user's tar stays."""
    now = time.time() if now is None else now
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    tars, removed = [], []
    for name in names:
        path = os.path.join(directory, name)
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if name.startswith(TEMP_PREFIX):
            if st.st_mtime < now - 3600:
                tars.append((float('-inf'), path))
        elif name.endswith('.tar') and stat.S_ISREG(st.st_mode):
            tars.append((st.st_mtime, path))
    tars.sort(reverse=True)
    for mtime, path in tars[keep:] if keep else tars:
        if path in protect:
            continue
        try:
            os.unlink(path)
            removed.append(os.path.basename(path))
        except OSError:
            pass
    return removed


# --- receive ---

def safe_rel(rel):
    """Whether a manifest or tar path stays inside the release: relative, no '', '.', '..' part,
    not the release's own .vdeploy."""
    if not isinstance(rel, str) or not rel or rel.startswith('/') or '\x00' in rel:
        return False
    parts = rel.split('/')
    return all(p not in ('', '.', '..') for p in parts) and parts[0] != META


def check_manifest(manifest, digest):
    """{relpath: entry} of a manifest read from a tar, after its digest and shape are checked."""
    if digest_of(manifest) != digest:
        raise Mismatch('%s: digest mismatch (expected %s, got %s)' % (MANIFEST, digest, digest_of(manifest)))
    index = {}
    shapes = {'f': (int, int, str), 'l': (str,), 'd': (int,)}
    for entry in manifest.get('files') or []:
        ok = isinstance(entry, list) and len(entry) >= 2 and entry[1] in shapes and len(entry) == 2 + len(shapes[entry[1]])
        if not ok or not all(isinstance(v, t) for v, t in zip(entry[2:], shapes[entry[1]])):
            raise Mismatch('%s: malformed entry %r' % (MANIFEST, entry))
        if not safe_rel(entry[0]):
            raise Mismatch('%s: unsafe path in the manifest' % entry[0])
        index[entry[0]] = entry
    return index


def read_json(tar, name, what):
    member = tar.next()
    if member is None or member.name != name or not member.isfile() or member.size > JSON_LIMIT:
        raise Mismatch('%s is not a vdeploy %s: its next member is %s, not %s'
                       % (what, 'artifact', member.name if member else 'missing', name))
    try:
        return json.loads(tar.extractfile(member).read().decode('utf-8'))
    except ValueError as e:
        raise Mismatch('%s: not JSON (%s)' % (name, e))


class Writer(object):
    """Writes checked members into a release; `written`: their relpaths in tar order."""

    def __init__(self, dest, index, fresh):
        self.dest = dest
        self.fresh = fresh      # dest was empty (a full receive): nothing to clear before a write
        self.index = index
        self.written = []
        self.seen = set()
        self.dirs = set([''])   # relpaths known to be real directories (no symlink on the way)
        self.dir_modes = []     # (path, mode, mtime): set last, so a read-only directory can be filled

    def parent_ok(self, rel):
        parent = os.path.dirname(rel)
        todo = []
        while parent not in self.dirs:
            todo.append(parent)
            parent = os.path.dirname(parent)
        for d in reversed(todo):
            try:
                st = os.lstat(os.path.join(self.dest, d))
            except OSError:
                return False
            if not stat.S_ISDIR(st.st_mode):
                return False
            self.dirs.add(d)
        return True

    def clear(self, path):
        """Removes what a clone holds at path (the delta replaces it); a hardlink is only unlinked."""
        if self.fresh:
            return
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
            # No longer a directory: what the delta writes under that name next must be checked again.
            rel = path[len(self.dest) + 1:]
            self.dirs = set(d for d in self.dirs if d != rel and not d.startswith(rel + '/'))
        elif os.path.lexists(path):
            os.unlink(path)

    def member(self, tar, member):
        name = member.name
        rel = name[len(PREFIX):] if name.startswith(PREFIX) else None
        if rel is None or not safe_rel(rel):
            raise Mismatch('%s: unsafe name in the tar' % name)
        entry = self.index.get(rel)
        if entry is None:
            raise Mismatch('%s: in the tar but not in the manifest' % rel)
        if rel in self.seen:
            raise Mismatch('%s: twice in the tar' % rel)
        if not self.parent_ok(rel):
            raise Mismatch('%s: its directory is not a directory of the release (a symlink or missing)' % rel)
        self.seen.add(rel)
        kind = 'f' if member.isreg() else 'd' if member.isdir() else 'l' if member.issym() else None
        if kind != entry[1]:
            raise Mismatch('%s: a %s in the tar, a %s in the manifest' % (rel, KINDS.get(kind, 'special file'), KINDS[entry[1]]))
        path = os.path.join(self.dest, rel)
        if kind == 'l':
            if member.linkname != entry[2]:
                raise Mismatch('%s: symlink to %s in the tar, to %s in the manifest' % (rel, member.linkname, entry[2]))
            self.clear(path)
            os.symlink(entry[2], path)
        else:
            if member.mode & 0o7777 != entry[2]:
                raise Mismatch('%s: mode %o in the tar, %o in the manifest' % (rel, member.mode & 0o7777, entry[2]))
            if kind == 'd':
                if self.fresh or not os.path.isdir(path) or os.path.islink(path):
                    self.clear(path)
                    os.mkdir(path, 0o700)
                self.dirs.add(rel)
                self.dir_modes.append((path, entry[2], member.mtime))
            else:
                self.clear(path)
                write_file(tar, member, path, entry)
        self.written.append(rel)

    def finish(self):
        for path, mode, mtime in reversed(self.dir_modes):
            os.chmod(path, mode)
            os.utime(path, (mtime, mtime))


KINDS = {'f': 'file', 'd': 'directory', 'l': 'symlink'}


def write_file(tar, member, path, entry):
    """Writes one file member, hashing it as it goes; it must match the manifest's size and sha256."""
    rel = entry[0]
    if member.size != entry[3]:
        raise Mismatch('%s: %d bytes in the tar, %d in the manifest' % (rel, member.size, entry[3]))
    h = hashlib.sha256()
    source = tar.extractfile(member)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, 'wb') as out:
        for block in iter(lambda: source.read(BLOCK), b''):
            h.update(block)
            out.write(block)
        if h.hexdigest() != entry[4]:
            raise Mismatch('%s: sha256 mismatch (manifest %s, got %s)' % (rel, entry[4], h.hexdigest()))
        out.flush()
        os.fchmod(fd, entry[2])
        os.utime(fd, (member.mtime, member.mtime))


def open_tar(f):
    return tarfile.open(fileobj=f, mode='r|', encoding='utf-8', errors='surrogateescape')


def read_members(tar, writer):
    try:
        member = tar.next()  # not `for member in tar`: that starts again at the manifest
        while member is not None:
            writer.member(tar, member)
            member = tar.next()
    except tarfile.TarError as e:
        raise Mismatch('the tar is damaged: %s' % e)
    writer.finish()


def receive_full(tar_path, dest, digest):
    """Writes the full artifact into dest (a new directory); (manifest, relpaths written)."""
    with open(tar_path, 'rb') as f:
        try:
            tar = open_tar(f)
            manifest = read_json(tar, MANIFEST, tar_path)
        except tarfile.TarError as e:
            raise Mismatch('%s: not a readable tar (%s)' % (tar_path, e))
        index = check_manifest(manifest, digest)
        os.mkdir(dest, 0o755)
        writer = Writer(dest, index, True)
        read_members(tar, writer)
    missing = [rel for rel in sorted(index) if rel not in writer.seen]
    if missing:
        raise Mismatch('%s: in the manifest but not in the tar%s' % (missing[0], ' (and %d more)' % (len(missing) - 1) if len(missing) > 1 else ''))
    return manifest, writer.written


def receive_delta(tar_path, dest, digest, base):
    """Applies the delta to dest (a clone of the base release, relocated): removes what the delta
    says, writes its members; (manifest, relpaths written). check_tree must follow."""
    with open(tar_path, 'rb') as f:
        try:
            tar = open_tar(f)
            manifest = read_json(tar, MANIFEST, tar_path)
            delta = read_json(tar, DELTA, tar_path)
        except tarfile.TarError as e:
            raise Mismatch('%s: not a readable tar (%s)' % (tar_path, e))
        index = check_manifest(manifest, digest)
        if not isinstance(delta, dict) or delta.get('base') != base:
            raise Mismatch('%s: a delta from %s, not from %s' % (DELTA, delta.get('base') if isinstance(delta, dict) else None, base))
        writer = Writer(dest, index, False)
        removed = delta.get('removed') or []
        for rel in sorted(removed, reverse=True):
            if not safe_rel(rel):
                raise Mismatch('%s: unsafe path in %s' % (rel, DELTA))
            if writer.parent_ok(rel):
                writer.clear(os.path.join(dest, rel))
        read_members(tar, writer)
    return manifest, writer.written


def check_tree(dest, manifest):
    """The release's paths (and their kinds) must be the manifest's. Bytecode Python wrote at run time
    into the release the delta was cloned from is removed, not a mismatch (it is a cache)."""
    kinds = dict((e[0], e[1]) for e in manifest['files'])
    found, caches = {}, []
    for rel, st in walk(dest):
        kind = kind_of(st)
        if any(rel.startswith(c + '/') for c in caches[-1:]):
            continue
        if rel not in kinds and is_bytecode(rel, kind):
            path = os.path.join(dest, rel)
            if kind == 'd':
                caches.append(rel)
                shutil.rmtree(path)
            else:
                os.unlink(path)
            continue
        found[rel] = kind
    for rel in sorted(set(kinds) | set(found)):
        if rel not in found:
            raise Mismatch('%s: in the manifest but not in the release' % rel)
        if rel not in kinds:
            raise Mismatch('%s: in the release but not in the manifest' % rel)
        if found[rel] != kinds[rel]:
            raise Mismatch('%s: a %s in the release, a %s in the manifest' % (rel, KINDS.get(found[rel], 'special file'), KINDS[kinds[rel]]))


def is_bytecode(rel, kind):
    name = os.path.basename(rel)
    in_cache = os.path.basename(os.path.dirname(rel)) == '__pycache__'
    return (kind == 'd' and name == '__pycache__') or (kind == 'f' and in_cache and name.endswith('.pyc'))


class Entry(object):
    """What relocate.plan_entry reads of a DirEntry, for one path of a release."""

    def __init__(self, venv, rel):
        self.path = os.path.join(venv, rel)
        self.name = os.path.basename(rel)

    def is_symlink(self):
        return os.path.islink(self.path)

    def is_file(self, follow_symlinks=True):
        return os.path.isfile(self.path) and not os.path.islink(self.path)


def relocate_entries(venv, old, new, rels, holder):
    """Relocates only these files and symlinks of the venv from old to new (the rest of a delta's
    release was relocated with its clone); the problems, as relocate reports them."""
    result = relocate.empty_result({'venv': venv})
    run = relocate.Run({'holder': holder}, result)
    paths, plan = relocate.Paths(old, new), relocate.Plan()
    try:
        for rel in rels:
            relocate.plan_entry(run, plan, paths, venv, Entry(venv, rel))
        relocate.apply_plan(run, venv, old, new, plan)
    except relocate.Fatal as e:
        result['errors'].append({'path': venv, 'message': e.message})
    finally:
        if run.lock_file is not None:
            run.lock_file.close()
    return ['%s: %s' % (e['path'], e['message']) for e in result['errors']]
