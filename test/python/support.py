"""Shared by the Python tests (run by scripts/test-python.mjs under every host Python we support):
makes src/remote/python importable, and checks values against the contracts (the JSON Schemas
generated from vdeploy's zod schemas, test/fixtures/contracts/schemas.json)."""
import json
import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
PYTHON_DIR = os.path.join(ROOT, 'src', 'remote', 'python')
FIXTURES = os.path.join(ROOT, 'test', 'fixtures')
CONTRACTS = os.path.join(FIXTURES, 'contracts')

if PYTHON_DIR not in sys.path:
    sys.path.insert(0, PYTHON_DIR)


def contract_fixture(name):
    """test/fixtures/contracts/NAME.json, parsed."""
    with open(os.path.join(CONTRACTS, name + '.json'), encoding='utf-8') as f:
        return json.load(f)


def check_contract(name, value):
    """Raises AssertionError (naming the path) unless value satisfies the contract NAME, e.g. 'probe.answer'."""
    import jsonschema_lite
    with open(os.path.join(CONTRACTS, 'schemas.json'), encoding='utf-8') as f:
        schemas = json.load(f)
    if name not in schemas:
        raise AssertionError('no contract %r in schemas.json (run `npm run contracts`)' % name)
    problems = jsonschema_lite.validate(schemas[name], value)
    if problems:
        raise AssertionError('%s: %s' % (name, '; '.join(problems[:5])))


def write(path, data, mode=None):
    """Writes data (bytes or text) to path, making its directory; mode: chmod afterwards."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as f:
        f.write(data if isinstance(data, bytes) else data.encode('utf-8'))
    if mode is not None:
        os.chmod(path, mode)


def read(path):
    with open(path, 'rb') as f:
        return f.read()
