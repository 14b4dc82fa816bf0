"""Applies a host's share of a deploy in ONE remote command: moves the wheels just uploaded into the
cache (after checking their sha256), applies each venv in turn (apply_venv in a child process, under
`sudo -n -u USER` for a venv owned by another user), and runs the host's reload. Every remote command
costs a login shell and a python start: one per host, instead of one per venv plus one per upload
batch plus one per reload, is what keeps an upgrade near pip's own time.

Protocol. stdin, after the payload: the request as one JSON line ('host_apply.request'), then control
lines while it runs:
  "uploaded" — the SFTP uploads are complete (only awaited when the request says waitForUploads);
  "stop"     — start nothing new (Ctrl-C); the venv being applied finishes and is reported (a
               releases venv is told to stop too: it ends before its switch, see forward_stop).
End of stdin means "stop" too: a client that went away must not have venvs started on its behalf.
Everything is read with os.read on fd 0, never through sys.stdin, whose buffer would swallow the
control lines. stdout: one JSON object per line ('host_apply.line') — {"push": …}, {"venv": i, …}
after each venv, {"files": …} after the config files, {"reload": …}, and last {"done": …}. stderr:
`@vdeploy {"venv": i, "step", "phase"}` progress lines ('host_apply.progress').
It stops after the first venv that did not deploy ("halted"), so the client can restore that venv
before anything else happens on the host, as it would have done one venv at a time.
Config files (issue 17: the request's "files") are applied after every venv installed and migrated and
before any reload, so the reloads see the new config: a venv with a reload or a health check is told
to hold before them (holdBeforeReload: apply_venv says so on stderr and waits for "go" on its stdin),
the next venv starts, then files.py applies the files in a child (under `sudo -n` for root's files),
then each held venv goes on, in order. The venv lines stay in venv order. A files apply that failed or
stopped skips the host reload, and so does a held venv that failed its reload or health check (the
others held still finish: they are past their switch).
"""
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time

from vdeploy_remote import apply_venv, files, protocol

# The entry modules of the children: each venv's apply, and the config files' (imported above so the
# payload carries them).
CHILD = apply_venv.__name__.rpartition('.')[2]
FILES_CHILD = files.__name__.rpartition('.')[2]


class Control(protocol.LineReader):
    """The request and control lines on a file descriptor (fd 0), read without buffering past a line."""

    def __init__(self, fd=0):
        protocol.LineReader.__init__(self, fd)
        self.stop_asked = []

    def stopping(self):
        """Whether to start nothing new: "stop" was said (or a signal came), or the input ended."""
        while True:
            line = self.read_line(False)
            if line is None:
                break
            if line == 'stop':
                self.stop_asked.append('stop')
        return bool(self.stop_asked) or not self.open


def finalize(uploads):
    """Each upload whose sha256 matches is renamed into place atomically; a bad one is deleted."""
    bad, total = [], 0
    for u in uploads:
        h = hashlib.sha256()
        try:
            with open(u['tmp'], 'rb') as f:
                for block in iter(lambda: f.read(1 << 20), b''):
                    h.update(block)
                    total += len(block)
        except OSError as e:
            bad.append({'final': u['final'], 'got': str(e)})
            continue
        if h.hexdigest() == u['sha256']:
            # Readable by the venvs' owners whatever the login's umask: they install from it under sudo.
            os.chmod(u['tmp'], 0o644)
            os.replace(u['tmp'], u['final'])
        else:
            bad.append({'final': u['final'], 'got': h.hexdigest()})
            os.unlink(u['tmp'])
    return bad, total


def discard(uploads):
    for u in uploads:
        try:
            os.unlink(u['tmp'])
        except OSError:
            pass


def last_json_object(data, key='outcome'):
    """The child's answer: its last non-empty stdout line as a JSON object with `key`, else None."""
    lines = [line for line in data.decode('utf-8', 'replace').splitlines() if line.strip()]
    try:
        output = json.loads(lines[-1]) if lines else None
    except ValueError:
        return None
    return output if isinstance(output, dict) and key in output else None


def forward_progress(index, stream, on_hold=None):
    """Passes the child's progress lines on, tagged with the venv's index; the rest of its stderr. Its
    hold line (holdBeforeReload) also calls on_hold."""
    other = []
    for raw in stream:
        line = raw.decode('utf-8', 'replace')
        if line.startswith('@vdeploy '):
            try:
                event = json.loads(line[len('@vdeploy '):])
            except ValueError:
                event = None
            if isinstance(event, dict):
                event['venv'] = index
                protocol.progress(event)
                if event.get('phase') == 'hold' and on_hold is not None:
                    on_hold()
                continue
        other.append(line)
    return ''.join(other)


def drop_damaged_wheels(venv):
    """A venv applied as another user (sudo) cannot delete from the login user's wheel cache: the wheels
    it takes are checked here first, as the login user, and a damaged one removed (the child then finds
    it missing and fails asking for a re-run, which pushes it again)."""
    install = venv['input'].get('install')
    if venv.get('sudo') and install:
        try:
            apply_venv.check_cache(install['cacheDir'], install.get('wheels') or [])
        except apply_venv.CacheUnreadable:
            pass  # the child says what it cannot read


def forward_stop(child, control, ended):
    """Releases layout: a stop (Ctrl-C, or a vdeploy that went away) reaches the apply as SIGTERM, so it
    ends after the running step and before the switch, and removes the release it was building:
    `current` never moves. (In place the running venv finishes instead: a stop would leave it half
    changed.) Only this thread reads the control lines while the child runs; it ends when the child
    ends or holds (past its switch: a stop must not cut it then)."""
    while not ended.wait(0.2):
        if control.stopping():
            try:
                child.send_signal(signal.SIGTERM)
            except OSError:
                pass
            return


class Child(object):
    """A child script fed `stdin`, its stdout and stderr read by threads. With `control`, a stop reaches
    it as SIGTERM (forward_stop). With `hold`, its stdin stays open: the child may say it holds (its
    stderr reader calls on_hold), and finish() tells it "go". `settled` is set once it held or ended.
    OSError when it cannot start."""

    def __init__(self, argv, stdin, read_stderr, control=None, hold=False):
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.settled = threading.Event()
        self.held = False
        self.out, self.err = [], []

        def feed():
            try:
                self.proc.stdin.write(stdin)
                self.proc.stdin.flush()
                if not hold:
                    self.proc.stdin.close()
            except OSError:
                pass  # it ended early (sudo refused?): its exit code and stderr say why

        def read_err():
            self.err.append(read_stderr(self.proc.stderr, self.on_hold))
            self.settled.set()

        self.feeder = threading.Thread(target=feed)
        self.threads = [threading.Thread(target=lambda: self.out.append(self.proc.stdout.read())), self.feeder,
                        threading.Thread(target=read_err)]
        if control is not None:
            self.threads.append(threading.Thread(target=forward_stop, args=(self.proc, control, self.settled)))
        for t in self.threads:
            t.start()

    def on_hold(self):
        self.held = True
        self.settled.set()

    def finish(self):
        """Lets a held child go on (its stdin's end says go, should "go" not get through), waits for its
        end: (exit code, stdout, what read_stderr returned)."""
        self.feeder.join()
        try:
            if self.held:
                self.proc.stdin.write(b'go\n')
                self.proc.stdin.flush()
        except OSError:
            pass
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        for t in self.threads:
            t.join()
        code = self.proc.wait()
        self.settled.set()
        return code, self.out[0] if self.out else b'', self.err[0] if self.err else ''


def run_child(argv, stdin, read_stderr, control=None):
    """Runs a child script fed `stdin` to its end; (exit code, stdout, what read_stderr returned)."""
    return Child(argv, stdin, lambda stream, on_hold: read_stderr(stream), control).finish()


def apply_one(index, venv, control=None):
    """Runs apply_venv for one venv in a child; its line for stdout. A child that holds before its
    reload (holdBeforeReload) is left waiting: then a function that lets it go on and returns its line."""
    drop_damaged_wheels(venv)
    argv, prefix = protocol.child_command(CHILD, prefix=venv.get('sudo') or ())
    request = dict(venv['input'], v=protocol.PROTOCOL)
    started = time.time()
    forward = control if venv['input'].get('releases') else None
    try:
        child = Child(argv, prefix + json.dumps(request).encode('utf-8') + b'\n',
                      lambda stream, on_hold: forward_progress(index, stream, on_hold), forward,
                      bool(request.get('holdBeforeReload')))
    except OSError as e:
        return {'venv': index, 'output': None, 'exitCode': 127, 'stderrTail': str(e), 'ms': 0}

    def line():
        code, out, other = child.finish()
        output = last_json_object(out)
        result = {'venv': index, 'output': output, 'exitCode': code, 'ms': int((time.time() - started) * 1000)}
        if output is None:
            result['stderrTail'] = protocol.tail(other, 5)
        return result

    child.settled.wait()
    return line if child.held else line()


def apply_files(spec, control=None):
    """Runs files.py's apply in a child (as root through `sudo -n` when spec says sudo); its line for
    stdout. Always a child, so a stop reaches it as SIGTERM: it finishes its renames and starts no
    further handler (the rest stay pending on the host)."""
    protocol.progress({'files': 'start'})
    argv, prefix = protocol.child_command(FILES_CHILD, prefix=('sudo', '-n') if spec.get('sudo') else ())
    request = dict(spec['request'], v=protocol.PROTOCOL)
    started = time.time()
    try:
        code, out, other = run_child(argv, prefix + json.dumps(request).encode('utf-8') + b'\n',
                                     lambda stream: stream.read().decode('utf-8', 'replace'), control)
    except OSError as e:
        return {'files': None, 'exitCode': 127, 'stderrTail': str(e), 'ms': 0}
    output = last_json_object(out, 'ok')
    result = {'files': output, 'exitCode': code, 'ms': int((time.time() - started) * 1000)}
    if output is None or not output.get('ok'):
        tail = protocol.tail(other, 5)
        if tail:
            result['stderrTail'] = tail
    return result


def push(request, control):
    """Waits for the uploads (if told to) and moves them into place; False when nothing may follow."""
    uploads = request.get('uploads') or []
    if not uploads:
        return True
    if request.get('waitForUploads'):
        while True:
            line = control.read_line(True)
            if line == 'uploaded':
                break
            if line is None or line == 'stop':
                discard(uploads)
                return False
    started = time.time()
    bad, total = finalize(uploads)
    protocol.answer({'push': {'bad': bad, 'bytes': total, 'ms': int((time.time() - started) * 1000)}})
    return not bad


def host_reload(command):
    protocol.progress({'reload': 'start'})
    started = time.time()
    try:
        p = subprocess.run(['sh', '-c', command], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        code, text = p.returncode, (p.stderr or p.stdout).decode('utf-8', 'replace')
    except OSError as e:
        code, text = 127, str(e)
    protocol.answer({'reload': {'ok': code == 0, 'exitCode': code, 'ms': int((time.time() - started) * 1000),
                                'tail': protocol.tail(text, 5)}})


def wants_hold(venv):
    """A venv whose reload or health check must see the config files of the same run holds before them."""
    return bool(venv.get('input', {}).get('reload') or venv.get('input', {}).get('healthcheck'))


class Answers(object):
    """The venvs' lines, printed in venv order: a line waits for the held venvs before it."""

    def __init__(self):
        self.waiting = {}
        self.next = 0

    def put(self, index, line):
        self.waiting[index] = line
        while self.next in self.waiting:
            protocol.answer(self.waiting.pop(self.next))
            self.next += 1


def deployed_line(line):
    return line['output'] is not None and line['output'].get('outcome') == 'deployed'


def run(request, control, apply=None, files_apply=None):
    """The whole host apply after the request; the "done" line's value. With config files, a venv with
    a reload or health check holds before them (phase 1), the files are applied (phase 2), then each held
    venv goes on to its reload and health check, in order (phase 3): the reload sees the new config."""
    apply = apply or (lambda index, venv: apply_one(index, venv, control))
    files_apply = files_apply or (lambda spec: apply_files(spec, control))
    if not push(request, control):
        return {'started': 0, 'stoppedBy': 'push'}
    deployed, started, stopped_by = 0, 0, None
    answers, held = Answers(), []
    for index, venv in enumerate(request.get('venvs') or []):
        if control.stopping():
            stopped_by = 'stop'
            break
        started += 1
        protocol.progress({'venv': index, 'phase': 'venv-start'})
        if request.get('files') and wants_hold(venv):
            venv = dict(venv, input=dict(venv['input'], holdBeforeReload=True))
        result = apply(index, venv)
        if callable(result):
            held.append((index, result))
            continue
        answers.put(index, result)
        if deployed_line(result):
            deployed += 1
        else:
            stopped_by = 'halted'
            break
    files_ok = True
    if request.get('files') and stopped_by is None:
        if control.stopping():
            stopped_by = 'stop'
        else:
            line = files_apply(request['files'])
            protocol.answer(line)
            files_ok = line['files'] is not None and bool(line['files'].get('ok'))
            if line['files'] is not None and line['files'].get('stopped'):
                stopped_by = 'stop'
    # Past their switch (releases) the held venvs finish whatever happened since: after a halt or a stop
    # they reload with the config as it is. One that fails does not keep the others from finishing.
    for index, resume in held:
        result = resume()
        answers.put(index, result)
        if deployed_line(result):
            deployed += 1
        else:
            stopped_by = 'halted'
    command = request.get('reload')
    # A reload after files that failed (or stopped before their handlers) would start the services on a
    # config vdeploy could not finish: it waits for the run that finishes them.
    if command and stopped_by != 'halted' and files_ok and (deployed or request.get('reloadAnyway')):
        host_reload(command)
    return {'started': started, 'stoppedBy': stopped_by}


def main():
    control = Control(0)

    # Ctrl-C reaching the host (or a hangup) must not cut a venv in half: treat it as "stop".
    def on_signal(signum, frame):
        control.stop_asked.append(signum)

    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, on_signal)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    line = control.read_line(True)
    if line is None:
        protocol.answer({'done': {'started': 0, 'stoppedBy': 'stop'}})
        return 0
    try:
        request = protocol.check_request(json.loads(line))
    except (ValueError, protocol.RequestError) as e:
        sys.stderr.write('vdeploy host apply: unreadable request: %s\n' % e)
        return 2
    protocol.answer({'done': run(request, control)})
    return 0
