"""What every script shares: the protocol version, reading its request, writing its answer, and
starting another script in a child process (the host apply script's per-venv applies).

Every request and every answer carries "v": PROTOCOL. vdeploy checks answers against zod schemas
(src/remote/contracts/); test/fixtures/contracts/ holds examples that the Python and the TypeScript
tests both check.
"""
import json
import os
import select
import sys

PROTOCOL = 1


class RequestError(Exception):
    """The request is not what this script reads (a vdeploy of another version sent it)."""


def check_request(request):
    if not isinstance(request, dict):
        raise RequestError('the request is not a JSON object')
    if request.get('v') != PROTOCOL:
        raise RequestError('the request speaks protocol %r; this script speaks %d (vdeploy and its remote scripts differ)'
                           % (request.get('v'), PROTOCOL))
    return request


def read_request(stream=None):
    """The rest of stdin as one JSON request."""
    data = (stream or sys.stdin.buffer).read()
    try:
        return check_request(json.loads(data.decode('utf-8')))
    except ValueError as e:
        raise RequestError('the request is not JSON: %s' % e)


class LineReader(object):
    """Lines from a file descriptor, read with os.read so nothing past a line is taken from it (the rest
    of stdin is control lines: host_apply's "uploaded"/"stop", a held apply_venv's "go")."""

    def __init__(self, fd=0):
        self.fd = fd
        self.buffered = b''
        self.open = True

    def read_line(self, wait=True):
        """The next line, or None when none is there (without wait) or the input has ended."""
        while b'\n' not in self.buffered:
            if not self.open:
                return None
            if not wait and not select.select([self.fd], [], [], 0)[0]:
                return None
            chunk = os.read(self.fd, 65536)
            if not chunk:
                self.open = False
                return None
            self.buffered += chunk
        line, _, self.buffered = self.buffered.partition(b'\n')
        return line.decode('utf-8', 'replace').strip()

    def read_first_line(self):
        """The first line, or everything up to the end when there is no newline (None: nothing at all)."""
        line = self.read_line(True)
        if line is None and self.buffered:
            line, self.buffered = self.buffered.decode('utf-8', 'replace').strip(), b''
        return line

    def rest(self):
        """Everything left, up to the end of the input."""
        while self.open:
            chunk = os.read(self.fd, 65536)
            if not chunk:
                self.open = False
            self.buffered += chunk
        data, self.buffered = self.buffered, b''
        return data


def read_request_line(reader):
    """The request as the first line of `reader` (the lines after it are control lines); a request spread
    over several lines (pretty-printed by hand) is read up to the end of the input instead."""
    first = reader.read_first_line()
    if first is None:
        raise RequestError('the request is not JSON: stdin is empty')
    try:
        return check_request(json.loads(first))
    except ValueError:
        pass
    data = first.encode('utf-8') + b'\n' + reader.rest()
    try:
        return check_request(json.loads(data.decode('utf-8')))
    except ValueError as e:
        raise RequestError('the request is not JSON: %s' % e)


def answer(obj, stream=None):
    """Writes obj (with the protocol version) as one JSON line; a client that went away is not an error."""
    out = dict(obj)
    out['v'] = PROTOCOL
    stream = stream or sys.stdout
    try:
        stream.write(json.dumps(out) + '\n')
        stream.flush()
    except (OSError, ValueError):
        pass


def progress(obj):
    """A `@vdeploy {...}` progress line on stderr, read live by vdeploy."""
    try:
        sys.stderr.write('@vdeploy ' + json.dumps(obj) + '\n')
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def tail(text, n=20):
    """The last n non-blank lines of a command's output, for messages."""
    lines = [line for line in text.splitlines() if line.strip()]
    return '\n'.join(lines[-n:])


def payload(main):
    """The payload that runs `main` in another process: the one this process was started with, or, when
    running from the source files (tests), one read from them."""
    import vdeploy_remote
    current = getattr(vdeploy_remote, 'PAYLOAD', None)
    if current is not None:
        return dict(current, main=main)
    package = os.path.dirname(os.path.abspath(vdeploy_remote.__file__))
    modules = {}
    for name in sorted(os.listdir(package)):
        if name.endswith('.py'):
            with open(os.path.join(package, name), encoding='utf-8') as f:
                modules[name[:-3]] = f.read()
    with open(os.path.join(os.path.dirname(package), 'bootstrap.py'), encoding='utf-8') as f:
        bootstrap = f.read()
    return {'v': PROTOCOL, 'main': main, 'bootstrap': bootstrap, 'modules': modules}


def child_command(main, python=None, prefix=()):
    """(argv, stdin prefix) that start `main` as bootstrap.py does; write the child's input after the prefix."""
    data = payload(main)
    body = json.dumps(data).encode('utf-8')
    argv = list(prefix) + [python or sys.executable, '-I', '-c', data['bootstrap']]
    return argv, str(len(body)).encode('ascii') + b'\n' + body
