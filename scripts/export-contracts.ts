/**
 * `npm run contracts`: writes test/fixtures/contracts/schemas.json, the JSON Schema of every contract
 * between vdeploy and its Python (one zod schema per '<script>.<what>' name, exported as `contracts`
 * by one module per area), so the Python tests can check their real answers against the very schemas
 * the TypeScript side parses with (test/python/jsonschema_lite.py). test/unit/contracts.test.ts fails
 * when the file is not what this would write now.
 *
 * The JSON Schema is zod's output schema: a plain z.object becomes `additionalProperties: false`, so
 * the Python side may not send a key the TypeScript side does not declare (zod would drop it).
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as z from 'zod';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The modules that export `contracts`, relative to the repository. */
export const CONTRACT_MODULES = ['src/facts/probe-contract.ts', 'src/deploy/apply-contract.ts', 'src/relocate/relocate-contract.ts', 'src/files/files-contract.ts'];
export const FIXTURES_DIR = join(root, 'test', 'fixtures', 'contracts');
export const SCHEMAS_FILE = join(FIXTURES_DIR, 'schemas.json');

const NAME = /^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$/;

/** Every contract by name, from `modules`; a missing module, a missing export or a duplicate name throws. */
export async function loadContracts(modules: readonly string[] = CONTRACT_MODULES): Promise<Map<string, z.ZodType>> {
  const all = new Map<string, z.ZodType>();
  for (const module of modules) {
    const file = resolve(root, module);
    if (!existsSync(file)) throw new Error(`${module} does not exist: it must export \`contracts\` (see scripts/export-contracts.ts)`);
    const exported = ((await import(pathToFileURL(file).href)) as { contracts?: unknown }).contracts;
    if (typeof exported !== 'object' || exported === null) throw new Error(`${module}: no \`export const contracts = { '<script>.<what>': schema }\``);
    for (const [name, schema] of Object.entries(exported)) {
      if (!NAME.test(name)) throw new Error(`${module}: contract name ${JSON.stringify(name)} is not '<script>.<what>' (lowercase, one dot)`);
      if (!(schema instanceof z.ZodType)) throw new Error(`${module}: contracts[${JSON.stringify(name)}] is not a zod schema`);
      if (all.has(name)) throw new Error(`${module}: contract ${name} is defined twice`);
      all.set(name, schema);
    }
  }
  return all;
}

/** name → JSON Schema (draft 2020-12), names sorted; a zod feature JSON Schema cannot express throws. */
export function jsonSchemas(contracts: ReadonlyMap<string, z.ZodType>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const name of [...contracts.keys()].sort()) {
    try {
      out[name] = z.toJSONSchema(contracts.get(name)!, { target: 'draft-2020-12', io: 'output', unrepresentable: 'throw', reused: 'inline' });
    } catch (error) {
      throw new Error(`contract ${name}: no JSON Schema for it (${(error as Error).message}); use only zod features JSON Schema can express`);
    }
  }
  return out;
}

/** The text of schemas.json. */
export function schemasText(schemas: Record<string, unknown>): string {
  return `${JSON.stringify(schemas, null, 2)}\n`;
}

async function main(): Promise<void> {
  const schemas = jsonSchemas(await loadContracts());
  mkdirSync(FIXTURES_DIR, { recursive: true });
  writeFileSync(SCHEMAS_FILE, schemasText(schemas));
  console.log(`wrote ${Object.keys(schemas).length} contracts to ${SCHEMAS_FILE.slice(root.length + 1)}`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) await main();
