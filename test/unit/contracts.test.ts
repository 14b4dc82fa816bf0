/**
 * The contracts between vdeploy and its Python, TypeScript side: schemas.json (what the Python tests
 * check against) is generated from the zod schemas and must not drift; every example in
 * test/fixtures/contracts/ passes the zod schema its file name names; every contract has an example.
 * (test/python/test_contracts.py checks the same examples against schemas.json.)
 */
import { expect } from 'chai';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as z from 'zod';
import { FIXTURES_DIR, jsonSchemas, loadContracts, SCHEMAS_FILE, schemasText } from '../../scripts/export-contracts.js';

/** `<contract>.json` or `<contract>.<case>.json`: the longest prefix of the name that is a contract. */
function contractOf(file: string, names: Iterable<string>): string | undefined {
  const parts = file.replace(/\.json$/, '').split('.');
  const known = new Set(names);
  for (let n = parts.length; n > 0; n--) {
    const name = parts.slice(0, n).join('.');
    if (known.has(name)) return name;
  }
  return undefined;
}

const fixtures = existsSync(FIXTURES_DIR)
  ? readdirSync(FIXTURES_DIR)
      .filter((f) => f.endsWith('.json') && f !== 'schemas.json')
      .sort()
  : [];

describe('contracts', () => {
  let contracts: Map<string, z.ZodType>;
  before(async () => {
    contracts = await loadContracts();
  });

  it('test/fixtures/contracts/schemas.json is what `npm run contracts` writes from the zod schemas now', () => {
    const schemas = jsonSchemas(contracts);
    const have = existsSync(SCHEMAS_FILE) ? readFileSync(SCHEMAS_FILE, 'utf8') : '{}';
    if (have === schemasText(schemas)) return;
    const old = JSON.parse(have) as Record<string, unknown>;
    const differ = [...new Set([...Object.keys(old), ...Object.keys(schemas)])]
      .filter((name) => JSON.stringify(old[name]) !== JSON.stringify(schemas[name]))
      .sort();
    expect.fail(`schemas.json is out of date with the zod schemas (${differ.join(', ') || 'formatting'}): run \`npm run contracts\``);
  });

  it('finds the file name of a fixture in the contract names', () => {
    const names = ['probe.answer', 'probe.request', 'host_apply.line'];
    expect(contractOf('probe.answer.json', names)).to.equal('probe.answer');
    expect(contractOf('probe.answer.error.json', names)).to.equal('probe.answer');
    expect(contractOf('host_apply.line.progress.json', names)).to.equal('host_apply.line');
    expect(contractOf('probe.json', names)).to.equal(undefined);
  });

  it('every contract has at least one example in test/fixtures/contracts/', () => {
    const covered = new Set(fixtures.map((f) => contractOf(f, contracts.keys())));
    const without = [...contracts.keys()].filter((name) => !covered.has(name)).sort();
    expect(without, `contracts without an example (add test/fixtures/contracts/<name>.json): ${without.join(', ')}`).to.deep.equal([]);
  });

  describe('every example passes the contract its file name names', () => {
    for (const file of fixtures) {
      it(file, () => {
        const name = contractOf(file, contracts.keys());
        expect(name, `${file}: no contract is named by its file name (contracts: ${[...contracts.keys()].join(', ')})`).to.be.a('string');
        const parsed = contracts.get(name!)!.safeParse(JSON.parse(readFileSync(join(FIXTURES_DIR, file), 'utf8')));
        expect(parsed.success, parsed.success ? '' : `${file} fails ${name}:\n${z.prettifyError(parsed.error)}`).to.equal(true);
      });
    }
  });
});
