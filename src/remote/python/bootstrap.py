# vdeploy's bootstrap: the one program every remote script starts with (`python3 -I -c BOOTSTRAP`, see
# start.sh). It reads the payload from stdin, makes the `vdeploy_remote` package importable from it,
# and runs the payload's entry module's main(). What is left on stdin is that script's input.
#
# Payload: one line with its length in bytes, then that many bytes of JSON:
#   {"v": PROTOCOL, "main": "probe", "bootstrap": <this file's text>, "modules": {"probe": <source>, ...}}
# It is read with os.read on fd 0, never through sys.stdin's buffer, so not a byte of the script's own
# input is consumed here (the host apply script reads control lines from fd 0 while it runs).
#
# Plain syntax on purpose: an interpreter older than 3.6 must get as far as the version check.
import sys

if sys.version_info < (3, 6):
    sys.stderr.write('vdeploy: %s is Python %d.%d; vdeploy needs Python 3.6 or newer on the host\n'
                     % (sys.executable, sys.version_info[0], sys.version_info[1]))
    sys.exit(127)

import importlib.abc  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402

PACKAGE = 'vdeploy_remote'


def read_exactly(size):
    chunks = []
    while size > 0:
        chunk = os.read(0, min(size, 1 << 16))
        if not chunk:
            raise EOFError('stdin ended inside the payload')
        chunks.append(chunk)
        size -= len(chunk)
    return b''.join(chunks)


def read_payload():
    digits = b''
    while not digits.endswith(b'\n'):
        byte = os.read(0, 1)
        if not byte or len(digits) > 12:
            raise EOFError('no payload length on stdin')
        digits += byte
    return json.loads(read_exactly(int(digits)).decode('utf-8'))


class Finder(importlib.abc.MetaPathFinder, importlib.abc.ExecutionLoader):
    """Imports vdeploy_remote.* from the payload's sources; get_source lets tracebacks show the lines."""

    def __init__(self, modules):
        self.modules = modules

    def find_spec(self, fullname, path=None, target=None):
        name = self.short(fullname)
        if name is None:
            return None
        spec = importlib.util.spec_from_loader(fullname, self, origin=PACKAGE + '/' + (name or '__init__') + '.py',
                                               is_package=name == '')
        spec.has_location = True
        return spec

    def short(self, fullname):
        if fullname == PACKAGE:
            return ''
        if fullname.startswith(PACKAGE + '.') and fullname[len(PACKAGE) + 1:] in self.modules:
            return fullname[len(PACKAGE) + 1:]
        return None

    def get_source(self, fullname):
        name = self.short(fullname)
        if name is None:
            raise ImportError(fullname)
        return self.modules.get(name or '__init__', '')

    def get_filename(self, fullname):
        return PACKAGE + '/' + (self.short(fullname) or '__init__') + '.py'

    def is_package(self, fullname):
        return fullname == PACKAGE


def main():
    try:
        payload = read_payload()
    except (EOFError, ValueError) as e:
        sys.stderr.write('vdeploy bootstrap: unreadable payload on stdin: %s\n' % e)
        return 3
    sys.meta_path.insert(0, Finder(payload['modules']))
    package = importlib.import_module(PACKAGE)
    package.PAYLOAD = payload
    entry = importlib.import_module(PACKAGE + '.' + payload['main'])
    return entry.main()


sys.exit(main())
