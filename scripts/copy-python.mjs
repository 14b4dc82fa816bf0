#!/usr/bin/env node
// Build step between tsc and bundle-cli: tsc compiles only TypeScript, but the library (dist/index.js)
// reads the Python it runs on hosts from dist/remote/python/ (src/remote/python-files.ts), so the
// folder's .py and .sh files are copied there. A fresh copy each time: a file deleted from src/ must
// not live on in dist/. (The CLI bundle inlines the same files: scripts/bundle-cli.mjs.)
import { cpSync, readdirSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const from = join(root, 'src', 'remote', 'python');
const to = join(root, 'dist', 'remote', 'python');

rmSync(to, { recursive: true, force: true });
cpSync(from, to, {
  recursive: true,
  filter: (path) => basename(path) !== '__pycache__' && (statSync(path).isDirectory() || /\.(py|sh)$/.test(path)),
});
const copied = readdirSync(to, { recursive: true }).map(String).filter((n) => /\.(py|sh)$/.test(n));
if (copied.length === 0) throw new Error(`${from}: no .py or .sh files to copy`);
console.log(`copied ${copied.length} Python files → dist/remote/python/`);
