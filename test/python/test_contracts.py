"""The contracts, Python side: every example in test/fixtures/contracts/ passes the JSON Schema (from
schemas.json, generated from the zod schemas) its file name names, wrong values are rejected, and
jsonschema_lite itself checks what it claims to. (test/unit/contracts.test.ts checks the same
examples against the zod schemas.)"""
import copy
import json
import os
import unittest

import support
from jsonschema_lite import SchemaError, check_schema, validate


def load_schemas():
    path = os.path.join(support.CONTRACTS, 'schemas.json')
    if not os.path.exists(path):
        raise AssertionError('%s is missing: run `npm run contracts`' % path)
    with open(path, encoding='utf-8') as f:
        return json.load(f)


def fixture_files():
    if not os.path.isdir(support.CONTRACTS):
        return []
    return sorted(f for f in os.listdir(support.CONTRACTS) if f.endswith('.json') and f != 'schemas.json')


def contract_of(file_name, names):
    """`<contract>.json` or `<contract>.<case>.json`: the longest prefix of the name that is a contract."""
    parts = file_name[:-len('.json')].split('.')
    for n in range(len(parts), 0, -1):
        name = '.'.join(parts[:n])
        if name in names:
            return name
    return None


def read_fixture(file_name):
    with open(os.path.join(support.CONTRACTS, file_name), encoding='utf-8') as f:
        return json.load(f)


class FixturesTest(unittest.TestCase):
    def setUp(self):
        self.schemas = load_schemas()

    def test_every_schema_is_in_the_subset_jsonschema_lite_knows(self):
        for name, schema in sorted(self.schemas.items()):
            with self.subTest(contract=name):
                check_schema(schema)

    def test_every_fixture_passes_its_contract(self):
        files = fixture_files()
        self.assertTrue(files, 'no examples in %s' % support.CONTRACTS)
        for file_name in files:
            with self.subTest(fixture=file_name):
                name = contract_of(file_name, self.schemas)
                self.assertIsNotNone(name, '%s names no contract (%s)' % (file_name, ', '.join(sorted(self.schemas))))
                self.assertEqual(validate(self.schemas[name], read_fixture(file_name)), [])
                support.check_contract(name, read_fixture(file_name))

    def test_every_contract_has_an_example(self):
        covered = set(contract_of(f, self.schemas) for f in fixture_files())
        self.assertEqual(sorted(set(self.schemas) - covered), [], 'contracts without an example')

    def test_wrong_values_are_rejected(self):
        """Each contract's examples, spoiled three ways: the validator is not a no-op."""
        for file_name in fixture_files():
            name = contract_of(file_name, self.schemas)
            if name is None:
                continue
            schema, good = self.schemas[name], read_fixture(file_name)
            spoiled = [('not an object', 'not an object')]
            if isinstance(good, dict):
                extra = copy.deepcopy(good)
                extra['surely_not_a_field'] = 1
                spoiled.append(('an undeclared key', extra))
                if 'v' in good:
                    wrong_v = copy.deepcopy(good)
                    wrong_v['v'] = 999
                    spoiled.append(('another protocol version', wrong_v))
                for key in sorted(good):
                    dropped = copy.deepcopy(good)
                    del dropped[key]
                    if validate(schema, dropped):
                        spoiled.append(('without %r' % key, dropped))
                        break
            for what, value in spoiled:
                with self.subTest(fixture=file_name, spoiled=what):
                    problems = validate(schema, value)
                    self.assertTrue(problems, '%s with %s passed %s' % (file_name, what, name))
                    self.assertTrue(all(p.startswith('$') for p in problems), problems)
                    with self.assertRaises(AssertionError):
                        support.check_contract(name, value)


class JsonSchemaLiteTest(unittest.TestCase):
    def assertValid(self, schema, value):
        self.assertEqual(validate(schema, value), [])

    def assertProblem(self, schema, value, expected):
        problems = validate(schema, value)
        self.assertTrue(any(expected in p for p in problems), 'expected %r among %r' % (expected, problems))

    def test_types(self):
        self.assertValid({'type': 'integer'}, 3)
        self.assertValid({'type': 'integer'}, 3.0)
        self.assertProblem({'type': 'integer'}, 3.5, '$: expected integer, got number')
        self.assertProblem({'type': 'integer'}, True, '$: expected integer, got boolean')
        self.assertProblem({'type': 'number'}, False, 'expected number')
        self.assertValid({'type': ['string', 'null']}, None)
        self.assertProblem({'type': ['string', 'null']}, 1, 'expected string or null, got integer')
        self.assertProblem({'type': 'object'}, [], 'got array')
        self.assertProblem({'type': 'boolean'}, 0, 'got integer')

    def test_const_and_enum_are_json_equality(self):
        self.assertValid({'const': 1}, 1.0)
        self.assertProblem({'const': 1}, True, 'expected 1, got true')
        self.assertProblem({'const': True}, 1, 'expected true')
        self.assertProblem({'enum': ['a', 'b']}, 'c', 'expected one of "a", "b", got "c"')
        self.assertProblem({'enum': [0]}, False, 'expected one of 0')
        self.assertValid({'const': {'a': [1, None]}}, {'a': [1, None]})

    def test_objects(self):
        schema = {'type': 'object', 'properties': {'a': {'type': 'string'}}, 'required': ['a'],
                  'additionalProperties': False}
        self.assertValid(schema, {'a': 'x'})
        self.assertProblem(schema, {}, "$: missing required property 'a'")
        self.assertProblem(schema, {'a': 'x', 'b': 1}, "$: unexpected property 'b'")
        self.assertProblem(schema, {'a': 1}, '$.a: expected string')
        record = {'type': 'object', 'propertyNames': {'type': 'string', 'pattern': '^[a-z]+$'},
                  'additionalProperties': {'type': 'integer'}}
        self.assertValid(record, {'ab': 1})
        self.assertProblem(record, {'ab': 'x'}, '$.ab: expected integer')
        self.assertProblem(record, {'odd key': 1}, "$['odd key'] (the name): \"odd key\" does not match")
        self.assertValid({'type': 'object', 'additionalProperties': {}}, {'x': [1]})

    def test_arrays(self):
        self.assertProblem({'type': 'array', 'items': {'type': 'string'}}, ['a', 2], '$[1]: expected string')
        self.assertProblem({'type': 'array', 'minItems': 1}, [], 'at least 1 items')
        self.assertProblem({'type': 'array', 'maxItems': 1}, [1, 2], 'at most 1 items')
        pair = {'type': 'array', 'prefixItems': [{'type': 'string'}, {'type': 'number'}], 'items': False}
        self.assertValid(pair, ['a', 1])
        self.assertProblem(pair, [1, 1], '$[0]: expected string')
        self.assertProblem(pair, ['a', 1, 2], '$[2]: no value is allowed here')

    def test_numbers_and_strings(self):
        self.assertProblem({'minimum': 0}, -1, 'at least 0')
        self.assertProblem({'maximum': 9}, 10, 'at most 9')
        self.assertProblem({'exclusiveMinimum': 0}, 0, 'more than 0')
        self.assertProblem({'exclusiveMaximum': 1}, 1, 'less than 1')
        self.assertValid({'minimum': 0}, 'not a number: not checked')
        self.assertProblem({'minLength': 1}, '', 'at least 1 characters')
        self.assertProblem({'maxLength': 1}, 'ab', 'at most 1 characters')
        self.assertValid({'pattern': '^a+$'}, 'aa')
        self.assertProblem({'pattern': '^a+$'}, 'aa\n', 'does not match')
        self.assertProblem({'pattern': 'b'}, 'aa', 'does not match /b/')

    def test_unions(self):
        union = {'oneOf': [
            {'type': 'object', 'properties': {'state': {'const': 'ok'}, 'n': {'type': 'integer'}},
             'required': ['state', 'n'], 'additionalProperties': False},
            {'type': 'object', 'properties': {'state': {'const': 'gone'}}, 'required': ['state'],
             'additionalProperties': False},
        ]}
        self.assertValid(union, {'state': 'gone'})
        self.assertProblem(union, {'state': 'ok', 'n': 'x'}, 'the closest: $.n: expected integer')
        self.assertProblem({'oneOf': [{'type': 'integer'}, {'type': 'number'}]}, 1, 'matches 2 of the oneOf')
        self.assertValid({'anyOf': [{'type': 'integer'}, {'type': 'number'}]}, 1)
        self.assertProblem({'allOf': [{'type': 'integer'}, {'minimum': 5}]}, 1, 'at least 5')
        self.assertProblem({'not': {}}, 1, 'must not match')

    def test_references(self):
        schema = {'$defs': {'name': {'type': 'string'}},
                  'type': 'object', 'properties': {'a': {'$ref': '#/$defs/name'}}}
        self.assertValid(schema, {'a': 'x'})
        self.assertProblem(schema, {'a': 1}, '$.a: expected string')
        with self.assertRaises(SchemaError):
            validate({'$ref': '#/$defs/missing'}, 1)
        with self.assertRaises(SchemaError):
            validate({'$ref': 'https://example.com/schema'}, 1)

    def test_unknown_keywords_raise_wherever_they_are(self):
        for schema in ({'format': 'email'},
                       {'type': 'object', 'properties': {'a': {'type': 'string', 'format': 'uuid'}}},
                       {'anyOf': [{'type': 'null'}, {'multipleOf': 2}]},
                       {'items': [{'type': 'string'}]},
                       {'type': 'date'}):
            with self.subTest(schema=schema):
                with self.assertRaises(SchemaError):
                    validate(schema, None)

    def test_annotations_are_ignored(self):
        self.assertValid({'$schema': 'https://json-schema.org/draft/2020-12/schema', 'description': 'x',
                          'title': 't', 'type': 'null'}, None)


if __name__ == '__main__':
    unittest.main()
