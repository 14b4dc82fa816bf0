"""A JSON Schema validator for the subset that zod's z.toJSONSchema emits for vdeploy's contracts
(test/fixtures/contracts/schemas.json), so the Python tests can check real answers against the same
contracts the TypeScript side parses with, using the standard library only (hosts run 3.6).

validate(schema, value) returns a list of problems, each naming the JSON path ("$.venvs[0].path: ...");
an empty list means the value is valid. A keyword outside the subset raises SchemaError before any
value is looked at: a schema this module does not understand must never pass silently.
"""
import json
import re

# Keywords that hold no constraint.
ANNOTATIONS = frozenset(['$schema', '$id', 'id', 'title', 'description', 'default', 'examples',
                         'deprecated', 'readOnly', 'writeOnly'])
# Keywords whose value is one schema, a list of schemas, or a map of name -> schema.
ONE_SCHEMA = frozenset(['additionalProperties', 'items', 'propertyNames', 'not'])
SCHEMA_LIST = frozenset(['anyOf', 'oneOf', 'allOf', 'prefixItems'])
SCHEMA_MAP = frozenset(['properties', '$defs', 'definitions'])
# Keywords with a plain value.
PLAIN = frozenset(['type', 'required', 'enum', 'const', 'minimum', 'maximum', 'exclusiveMinimum',
                   'exclusiveMaximum', 'minLength', 'maxLength', 'pattern', 'minItems', 'maxItems',
                   '$ref'])
KNOWN = ANNOTATIONS | ONE_SCHEMA | SCHEMA_LIST | SCHEMA_MAP | PLAIN
TYPES = frozenset(['object', 'array', 'string', 'number', 'integer', 'boolean', 'null'])


class SchemaError(Exception):
    """The schema uses something outside the subset (or is malformed)."""


def validate(schema, value):
    """Problems with value against schema (a list of strings naming the JSON path; empty: valid)."""
    check_schema(schema)
    problems = []
    _Validator(schema).check(schema, value, '$', problems)
    return problems


def check_schema(schema, where='#'):
    """Raises SchemaError for any keyword (anywhere in schema) this module does not implement."""
    if isinstance(schema, bool):
        return
    if not isinstance(schema, dict):
        raise SchemaError('%s: a schema must be an object or a boolean, not %s' % (where, _kind(schema)))
    for key, sub in schema.items():
        at = '%s/%s' % (where, key)
        if key not in KNOWN:
            raise SchemaError('%s: unsupported JSON Schema keyword %r (extend test/python/jsonschema_lite.py)'
                              % (where, key))
        if key in ONE_SCHEMA:
            if isinstance(sub, list):
                raise SchemaError('%s: a list here (draft-07 tuple form) is not supported' % at)
            check_schema(sub, at)
        elif key in SCHEMA_LIST:
            for i, item in enumerate(sub):
                check_schema(item, '%s/%d' % (at, i))
        elif key in SCHEMA_MAP:
            for name, item in sub.items():
                check_schema(item, '%s/%s' % (at, name))
        elif key == 'type':
            for t in sub if isinstance(sub, list) else [sub]:
                if t not in TYPES:
                    raise SchemaError('%s: unknown type %r' % (at, t))
        elif key == '$ref' and not sub.startswith('#'):
            raise SchemaError('%s: only references inside the document are supported, not %r' % (at, sub))


class _Validator(object):
    def __init__(self, root):
        self.root = root

    def check(self, schema, value, path, problems):
        if schema is True:
            return
        if schema is False:
            problems.append('%s: no value is allowed here' % path)
            return
        if '$ref' in schema:
            self.check(self.resolve(schema['$ref']), value, path, problems)
        if 'type' in schema and not _has_type(value, schema['type']):
            want = schema['type']
            problems.append('%s: expected %s, got %s' % (path, ' or '.join(want) if isinstance(want, list) else want,
                                                         _kind(value)))
            return
        if 'const' in schema and not _same(value, schema['const']):
            problems.append('%s: expected %s, got %s' % (path, _show(schema['const']), _show(value)))
        if 'enum' in schema and not any(_same(value, e) for e in schema['enum']):
            problems.append('%s: expected one of %s, got %s' % (path, ', '.join(_show(e) for e in schema['enum']),
                                                                _show(value)))
        if _is_number(value):
            _check_number(schema, value, path, problems)
        elif isinstance(value, str):
            _check_string(schema, value, path, problems)
        elif isinstance(value, list):
            self.check_array(schema, value, path, problems)
        elif isinstance(value, dict):
            self.check_object(schema, value, path, problems)
        self.check_combinations(schema, value, path, problems)

    def resolve(self, ref):
        node = self.root
        for part in ref[1:].split('/')[1:] if ref != '#' else []:
            part = part.replace('~1', '/').replace('~0', '~')
            if not isinstance(node, dict) or part not in node:
                raise SchemaError('$ref %r: nothing there' % ref)
            node = node[part]
        return node

    def check_object(self, schema, value, path, problems):
        properties = schema.get('properties', {})
        for name in schema.get('required', []):
            if name not in value:
                problems.append('%s: missing required property %r' % (path, name))
        extra = schema.get('additionalProperties', True)
        for name, item in sorted(value.items()):
            at = _child(path, name)
            if 'propertyNames' in schema:
                self.check(schema['propertyNames'], name, at + ' (the name)', problems)
            if name in properties:
                self.check(properties[name], item, at, problems)
            elif extra is False:
                problems.append('%s: unexpected property %r' % (path, name))
            else:
                self.check(extra, item, at, problems)

    def check_array(self, schema, value, path, problems):
        if 'minItems' in schema and len(value) < schema['minItems']:
            problems.append('%s: expected at least %d items, got %d' % (path, schema['minItems'], len(value)))
        if 'maxItems' in schema and len(value) > schema['maxItems']:
            problems.append('%s: expected at most %d items, got %d' % (path, schema['maxItems'], len(value)))
        prefix = schema.get('prefixItems', [])
        for i, item in enumerate(value):
            at = '%s[%d]' % (path, i)
            if i < len(prefix):
                self.check(prefix[i], item, at, problems)
            elif 'items' in schema:
                self.check(schema['items'], item, at, problems)

    def check_combinations(self, schema, value, path, problems):
        for sub in schema.get('allOf', []):
            self.check(sub, value, path, problems)
        for key in ('anyOf', 'oneOf'):
            if key not in schema:
                continue
            results = []
            for sub in schema[key]:
                found = []
                self.check(sub, value, path, found)
                results.append(found)
            matching = sum(1 for r in results if not r)
            if key == 'oneOf' and matching > 1:
                problems.append('%s: matches %d of the oneOf alternatives, not exactly one' % (path, matching))
            elif matching == 0:
                # The closest alternative (fewest problems) says best what is wrong, e.g. the branch of
                # a discriminated union whose tag matched.
                closest = min(results, key=len)
                problems.append('%s: matches none of the %d alternatives; the closest: %s'
                                % (path, len(results), '; '.join(closest)))
        if 'not' in schema:
            found = []
            self.check(schema['not'], value, path, found)
            if not found:
                problems.append('%s: must not match %s' % (path, _show(schema['not'])))


def _check_number(schema, value, path, problems):
    for key, fails, words in (('minimum', lambda b: value < b, 'at least'),
                              ('maximum', lambda b: value > b, 'at most'),
                              ('exclusiveMinimum', lambda b: value <= b, 'more than'),
                              ('exclusiveMaximum', lambda b: value >= b, 'less than')):
        if key in schema and fails(schema[key]):
            problems.append('%s: expected %s %s, got %s' % (path, words, _show(schema[key]), _show(value)))


def _check_string(schema, value, path, problems):
    if 'minLength' in schema and len(value) < schema['minLength']:
        problems.append('%s: expected at least %d characters, got %d' % (path, schema['minLength'], len(value)))
    if 'maxLength' in schema and len(value) > schema['maxLength']:
        problems.append('%s: expected at most %d characters, got %d' % (path, schema['maxLength'], len(value)))
    if 'pattern' in schema and not re.search(_python_pattern(schema['pattern']), value):
        problems.append('%s: %s does not match /%s/' % (path, _show(value), schema['pattern']))


def _python_pattern(pattern):
    """A JavaScript regular expression as Python's re reads it: a final `$` matches only at the very
    end (in Python it also matches before a final newline)."""
    if pattern.endswith('$') and not pattern.endswith('\\$'):
        return pattern[:-1] + r'\Z'
    return pattern


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _has_type(value, want):
    if isinstance(want, list):
        return any(_has_type(value, w) for w in want)
    if want == 'integer':
        # JSON has one number type: 2.0 is an integer (JavaScript's Number.isInteger agrees).
        return _is_number(value) and float(value).is_integer()
    return {
        'object': lambda: isinstance(value, dict),
        'array': lambda: isinstance(value, list),
        'string': lambda: isinstance(value, str),
        'number': lambda: _is_number(value),
        'boolean': lambda: isinstance(value, bool),
        'null': lambda: value is None,
    }[want]()


def _same(a, b):
    """JSON equality: true is not 1, and 1 is 1.0."""
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return type(a) is type(b) and a == b
    if _is_number(a) and _is_number(b):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return set(a) == set(b) and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def _kind(value):
    if value is None:
        return 'null'
    if isinstance(value, bool):
        return 'boolean'
    if _is_number(value):
        return 'integer' if isinstance(value, int) else 'number'
    return {dict: 'object', list: 'array', str: 'string'}.get(type(value), type(value).__name__)


def _show(value):
    text = json.dumps(value) if not isinstance(value, (dict, list)) else 'an ' + _kind(value)
    return text if len(text) <= 60 else text[:57] + '...'


def _child(path, name):
    if re.match(r'^[A-Za-z_][A-Za-z0-9_]*$', name):
        return '%s.%s' % (path, name)
    return '%s[%r]' % (path, name)
