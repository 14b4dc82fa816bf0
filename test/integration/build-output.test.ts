/**
 * What `npm run build` leaves in dist/ for the Python vdeploy runs on hosts: the library reads it from
 * dist/remote/python/ (copied by scripts/copy-python.mjs), the CLI bundle carries it inlined
 * (scripts/bundle-cli.mjs). Reads the build output, so it runs after a build (npm test builds first).
 */
import { expect } from 'chai';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../helpers/paths.js';

const SRC = join(REPO_ROOT, 'src', 'remote', 'python');
const DIST = join(REPO_ROOT, 'dist', 'remote', 'python');
const BUNDLE = join(REPO_ROOT, 'dist', 'cli', 'main.js');

function pythonFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true })
    .map(String)
    .filter((n) => /\.(py|sh)$/.test(n) && !n.includes('__pycache__'))
    .sort();
}

describe('the build output', () => {
  before(function () {
    if (!existsSync(BUNDLE)) throw new Error(`${BUNDLE} is missing: run \`npm run build\` first`);
  });

  it('dist/remote/python/ holds exactly the .py and .sh files of src/remote/python/, unchanged', () => {
    expect(pythonFiles(DIST)).to.deep.equal(pythonFiles(SRC));
    for (const name of pythonFiles(SRC)) {
      expect(readFileSync(join(DIST, name), 'utf8') === readFileSync(join(SRC, name), 'utf8'), `dist/remote/python/${name} differs: rebuild`).to.equal(true);
    }
    expect(readdirSync(DIST, { recursive: true }).map(String).filter((n) => n.includes('__pycache__'))).to.deep.equal([]);
  });

  it('the CLI bundle inlines every Python file (its def and class lines are in dist/cli/main.js)', () => {
    const bundle = readFileSync(BUNDLE, 'utf8');
    const missing = pythonFiles(SRC).filter((name) => {
      const lines = readFileSync(join(SRC, name), 'utf8')
        .split('\n')
        .filter((l) => /^\s*(def|class) \w+/.test(l) && !/[\\`$]/.test(l));
      return lines.length === 0 ? !bundle.includes(readFileSync(join(SRC, name), 'utf8').split('\n')[0]!) : !lines.every((l) => bundle.includes(l));
    });
    expect(missing, 'not in the CLI bundle: is src/remote/remote-python.ts reached from the CLI, and does scripts/bundle-cli.mjs inline python-files.ts?').to.deep.equal([]);
  });
});
