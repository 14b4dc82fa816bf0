/** What a test venv holds, read by independent tools (pip itself, sqlite3), not by vdeploy's own code. */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { LocalConnection } from '../../src/remote/local-connection.js';
import { SHARED_WHEELS } from './paths.js';

const local = new LocalConnection();

/** The shared real wheels whose file names start with each prefix (`django-`, `asgiref-`, …). */
export async function sharedWheels(prefixes: string[]): Promise<string[]> {
  const files = await readdir(SHARED_WHEELS);
  return prefixes.map((p) => join(SHARED_WHEELS, files.find((f) => f.startsWith(p))!));
}

/** name (lower case) → version of what is installed in a venv, read by pip itself (the oracle). */
export async function pipList(venv: string): Promise<Record<string, string>> {
  const r = await local.exec([join(venv, 'bin', 'python'), '-m', 'pip', 'list', '--format=json', '--isolated'], { env: { PIP_CONFIG_FILE: '/dev/null' } });
  return Object.fromEntries((JSON.parse(r.stdout) as Array<{ name: string; version: string }>).map((p) => [p.name.toLowerCase(), p.version]));
}

/** The tables of a SQLite database, sorted, read with Debian's Python. */
export async function sqliteTables(db: string): Promise<string[]> {
  const r = await local.exec(['/usr/bin/python3', '-c', 'import sqlite3,sys,json; print(json.dumps(sorted(r[0] for r in sqlite3.connect(sys.argv[1]).execute("select name from sqlite_master where type=\'table\'"))))', db]);
  return JSON.parse(r.stdout) as string[];
}
