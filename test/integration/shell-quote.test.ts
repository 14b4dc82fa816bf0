import { execFileSync } from 'node:child_process';
import { expect } from 'chai';
import { formatCommand, prefixEnv } from '../../src/remote/connection.js';
import { quoteArg, quoteCommand } from '../../src/remote/shell-quote.js';
import { VdeployError } from '../../src/errors.js';

// Strings that break naive quoting; each must reach the program byte for byte.
const NASTY = [
  '',
  ' ',
  'plain',
  'two words',
  "it's",
  "''",
  '"double"',
  '$HOME',
  '$(touch /tmp/vdeploy-pwned)',
  '`id`',
  'a;b',
  'a && b || c',
  'line1\nline2\n',
  'tab\there',
  '\\backslash\\',
  '*',
  '?',
  '[abc]',
  '~',
  '~/x',
  '#comment',
  '-n',
  '--flag=value',
  'A=b',
  '!',
  '{a,b}',
  'ünïcødé ✓',
  '\u0001\u007f',
  'x'.repeat(5000),
];

describe('shell-quote', () => {
  describe('quoteArg', () => {
    const cases: Array<[string, string]> = [
      ['plain', 'plain'],
      ['/usr/bin/python3', '/usr/bin/python3'],
      ['--flag=value', '--flag=value'],
      ['user@host:22', 'user@host:22'],
      ['', "''"],
      ['two words', "'two words'"],
      ["it's", "'it'\\''s'"],
      ['$(x)', "'$(x)'"],
      ['~', "'~'"],
      ['a\nb', "'a\nb'"],
      ['*', "'*'"],
    ];
    for (const [input, expected] of cases) {
      it(`quotes ${JSON.stringify(input)} as ${JSON.stringify(expected)}`, () => {
        expect(quoteArg(input)).to.equal(expected);
      });
    }

    it('refuses a NUL byte', () => {
      expect(() => quoteArg('a\0b')).to.throw(VdeployError, /NUL/);
    });
  });

  describe('quoteCommand', () => {
    const cases: Array<[string[], string]> = [
      [['echo', 'hi'], 'echo hi'],
      [['sh', '-c', 'echo $0', 'hello world'], "sh -c 'echo $0' 'hello world'"],
      [['A=b', 'x'], "'A=b' x"], // not an assignment in command position
      [['if', 'x'], "'if' x"], // not a keyword
      [['env', 'A=b', 'x'], 'env A=b x'],
    ];
    for (const [argv, expected] of cases) {
      it(`quotes ${JSON.stringify(argv)} as ${expected}`, () => {
        expect(quoteCommand(argv)).to.equal(expected);
      });
    }

    it('refuses an empty argv', () => {
      expect(() => quoteCommand([])).to.throw(VdeployError, /empty command/);
    });

    // The real test: a POSIX shell given the quoted line hands the program exactly these arguments.
    for (const shell of ['/bin/sh', '/bin/bash']) {
      it(`round-trips every nasty argument through ${shell}`, () => {
        const line = quoteCommand(['printf', '%s\\0', ...NASTY]);
        const out = execFileSync(shell, ['-c', line], { encoding: 'utf8' });
        expect(out.split('\0').slice(0, -1)).to.deep.equal(NASTY);
      });
    }

    it('runs a command named like an assignment or keyword as a command', () => {
      const out = execFileSync('/bin/sh', ['-c', `${quoteCommand(['if', 'x'])} 2>&1 || true`], { encoding: 'utf8' });
      expect(out).to.match(/not found/);
    });
  });

  describe('prefixEnv / formatCommand', () => {
    it('leaves argv alone without env', () => {
      expect(prefixEnv(['ls'], undefined)).to.deep.equal(['ls']);
      expect(prefixEnv(['ls'], {})).to.deep.equal(['ls']);
    });

    it('prefixes env NAME=value, quoted as a whole', () => {
      expect(formatCommand(['sh', '-c', 'echo "$A"'], { A: 'x y$(z)' })).to.equal(`env 'A=x y$(z)' sh -c 'echo "$A"'`);
      const out = execFileSync('/bin/sh', ['-c', formatCommand(['sh', '-c', 'printf %s "$A"'], { A: "x y$(z)'\n" })], {
        encoding: 'utf8',
      });
      expect(out).to.equal("x y$(z)'\n");
    });

    for (const bad of ['', '1X', 'A-B', 'A B', 'A=B']) {
      it(`refuses the variable name ${JSON.stringify(bad)}`, () => {
        expect(() => prefixEnv(['ls'], { [bad]: 'v' })).to.throw(VdeployError, /environment variable name/);
      });
    }
  });
});
