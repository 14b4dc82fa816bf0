#!/usr/bin/env node
// Second build step (after tsc): bundles the CLI into one ESM file, dist/cli/main.js (the package's
// `bin`), so that starting vdeploy reads one file instead of resolving and linking some 300 modules
// (ours, yargs', zod's, ...). The library (`exports`: dist/index.js and its .d.ts) stays tsc's output.
//
// Left out of the bundle, loaded from node_modules as before:
// - ssh2: optional native addons (sshcrypto.node, cpu-features) that it finds relative to its own files;
// - jiti: loads its transpiler from its own dist/ on demand (and is imported only to read a deployfile);
// - listr2, @inquirer/prompts: imported lazily (only on a TTY, only when prompting); external keeps them so.
//
// Inside the bundle, import.meta.url is dist/cli/main.js for every bundled module: code under src/ must
// not find files relative to its own location (today only load-deployfile.ts uses it: to resolve jiti,
// which works from either place).
import { chmodSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outfile = join(root, 'dist', 'cli', 'main.js');

/**
 * yargs' ESM shim locates itself with `import.meta.url`: its locales (`../../../locales`) and the
 * directory where it starts looking for package.json (`--version`, the "yargs" key) are found from
 * there. Bundled, import.meta.url is dist/cli/main.js; point it back at the installed yargs.
 */
const yargsShimPlugin = {
  name: 'yargs-shim-location',
  setup(b) {
    b.onLoad({ filter: /[\\/]yargs[\\/]lib[\\/]platform-shims[\\/]esm\.mjs$/ }, (args) => {
      const source = readFileSync(args.path, 'utf8');
      const from = 'const __dirname = fileURLToPath(import.meta.url);';
      if (!source.includes(from)) throw new Error(`${args.path}: expected \`${from}\` (yargs changed; update scripts/bundle-cli.mjs)`);
      const to =
        "const __dirname = join(dirname(createRequire(import.meta.url).resolve('yargs')), 'lib', 'platform-shims', 'esm.mjs');";
      return { contents: source.replace(from, to), loader: 'js' };
    });
  },
};

/**
 * string-width (yargs' and cliui's) builds an Intl.Segmenter and Unicode-property regular expressions
 * when it is loaded (~30 ms), and yargs lays out the command's help text on every run (it caches it
 * in case a handler asks for it), so every command paid for it. Every import of string-width gets a
 * stand-in: printable ASCII (all of vdeploy's help text) is one column per character, exactly what
 * string-width computes for it; anything else goes to the real module, bundled and initialised on
 * its first call.
 */
const lazyStringWidthPlugin = {
  name: 'lazy-string-width',
  setup(b) {
    b.onResolve({ filter: /^string-width$/ }, async (args) => {
      if (args.pluginData === 'real') return undefined;
      const real = await b.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, importer: args.importer, pluginData: 'real' });
      if (real.errors.length > 0) return { errors: real.errors };
      return { path: relative(root, real.path), namespace: 'lazy-string-width' };
    });
    b.onLoad({ filter: /.*/, namespace: 'lazy-string-width' }, (args) => ({
      // esbuild turns the require() of a bundled ES module into a call that initialises it on demand.
      contents: [
        'export default function stringWidth(string, options) {',
        '  if (typeof string === "string" && /^[\\x20-\\x7e]*$/.test(string)) return string.length;',
        `  return require(${JSON.stringify(join(root, args.path))}).default(string, options);`,
        '}',
        '',
      ].join('\n'),
      loader: 'js',
      resolveDir: root,
    }));
  },
};

/**
 * The Python vdeploy runs on hosts lives in src/remote/python/ as real files; src/remote/python-files.ts
 * reads them from disk. In the bundle that module becomes a table of their texts (esbuild's text
 * loader, one import per file), so the CLI reads no file of its own at run time.
 */
const pythonFilesPlugin = {
  name: 'inline-python-files',
  setup(b) {
    b.onLoad({ filter: /[\\/]src[\\/]remote[\\/]python-files\.ts$/ }, () => {
      const dir = join(root, 'src', 'remote', 'python');
      const names = readdirSync(dir, { recursive: true })
        .map(String)
        .filter((n) => /\.(py|sh)$/.test(n) && !n.includes('__pycache__'))
        .sort();
      const lines = names.map((n, i) => `import f${i} from ${JSON.stringify(`./python/${n}`)};`);
      lines.push(`const FILES = { ${names.map((n, i) => `${JSON.stringify(n)}: f${i}`).join(', ')} };`);
      lines.push('export function readPythonFile(name) {');
      lines.push('  const text = FILES[name];');
      lines.push('  if (text === undefined) throw new Error(`no remote file ${name} in the bundle`);');
      lines.push('  return text;');
      lines.push('}');
      return { contents: lines.join('\n'), loader: 'js', resolveDir: join(root, 'src', 'remote') };
    });
  },
};

const result = await build({
  absWorkingDir: root,
  entryPoints: ['src/cli/main.ts'],
  outfile,
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  tsconfig: 'tsconfig.json',
  external: ['ssh2', 'jiti', 'listr2', '@inquirer/prompts'],
  // Bundled CommonJS packages (yauzl, proper-lockfile, ...) call require() for Node's built-ins.
  banner: {
    js: "import { createRequire as __vdeployCreateRequire } from 'node:module';\nconst require = __vdeployCreateRequire(import.meta.url);",
  },
  sourcemap: true,
  legalComments: 'none',
  logLevel: 'warning',
  metafile: true,
  loader: { '.py': 'text', '.sh': 'text' },
  plugins: [yargsShimPlugin, lazyStringWidthPlugin, pythonFilesPlugin],
});

const firstLine = readFileSync(outfile, 'utf8').split('\n', 1)[0];
if (firstLine !== '#!/usr/bin/env node') throw new Error(`${outfile}: first line is ${JSON.stringify(firstLine)}, not the shebang`);
chmodSync(outfile, 0o755);

const inputs = Object.keys(result.metafile.inputs).length;
const bytes = result.metafile.outputs[Object.keys(result.metafile.outputs).find((o) => o.endsWith('main.js'))].bytes;
console.log(`bundled the CLI: ${inputs} modules → dist/cli/main.js (${(bytes / 1024).toFixed(0)} KiB)`);
