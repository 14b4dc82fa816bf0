import { expect } from 'chai';
import { parseConfig } from '../../src/config/load-deployfile.js';
import { ConfigError } from '../../src/errors.js';
import { selectVenvs } from '../../src/selectors/select-venvs.js';
import { parseSelector } from '../../src/selectors/selector.js';

describe('parseSelector', () => {
  const good: Array<[string, object]> = [
    ['web1', { host: 'web1' }],
    ['10.0.0.1', { host: '10.0.0.1' }],
    ['app@web1', { user: 'app', host: 'web1' }],
    ['app@web1:/srv/app/venv', { user: 'app', host: 'web1', path: '/srv/app/venv' }],
    ['web1:/srv/app/venv/', { host: 'web1', path: '/srv/app/venv' }],
    [':/srv/app/venv', { path: '/srv/app/venv' }],
    ['app@', { user: 'app' }],
    ['app@:/srv/x', { user: 'app', path: '/srv/x' }],
    ['web1:/srv/we@ird', { host: 'web1', path: '/srv/we@ird' }],
  ];
  for (const [text, expected] of good) {
    it(`parses ${text}`, () => {
      const { text: _t, ...rest } = parseSelector(text);
      expect(rest).to.deep.equal(expected);
    });
  }
  const bad: Array<[string, RegExp]> = [
    ['', /is empty/],
    ['@web1', /user before "@" is empty/],
    ['a@b@c', /more than one "@"/],
    ['web1:', /path after ":" is empty/],
    ['web1:srv/venv', /not absolute/],
    ['web 1', /white space/],
    [':', /path after ":" is empty/],
  ];
  for (const [text, pattern] of bad) {
    it(`refuses ${JSON.stringify(text)}`, () => {
      expect(() => parseSelector(text)).to.throw(ConfigError, pattern);
    });
  }
});

describe('selectVenvs', () => {
  const config = parseConfig(
    {
      hosts: [
        { name: 'web1', address: '10.0.0.1', user: 'deploy', roles: ['web'] },
        { name: 'web2', address: '10.0.0.2', user: 'deploy', roles: ['web'] },
        { name: 'db1', user: 'root', roles: ['db'] },
      ],
      venvs: [
        { host: 'web1', user: 'app', path: '/srv/app/venv' },
        { host: 'web1', path: '/srv/tools/venv' },
        { host: 'web2', user: 'app', path: '/srv/app/venv' },
        { host: 'db1', path: '/srv/app/venv' },
      ],
    },
    '/p/deployfile.ts',
  );
  const ids = (selectors: string[], roles: string[] = []) => selectVenvs(config, { selectors, roles }).map((v) => v.id);

  const table: Array<[string[], string[], string[]]> = [
    [[], [], ['app@web1:/srv/app/venv', 'deploy@web1:/srv/tools/venv', 'app@web2:/srv/app/venv', 'root@db1:/srv/app/venv']],
    [['web1'], [], ['app@web1:/srv/app/venv', 'deploy@web1:/srv/tools/venv']],
    [['10.0.0.2'], [], ['app@web2:/srv/app/venv']],
    [['app@web1'], [], ['app@web1:/srv/app/venv']],
    [['app@'], [], ['app@web1:/srv/app/venv', 'app@web2:/srv/app/venv']],
    [[':/srv/app/venv'], [], ['app@web1:/srv/app/venv', 'app@web2:/srv/app/venv', 'root@db1:/srv/app/venv']],
    [['web2:/srv/app/venv'], [], ['app@web2:/srv/app/venv']],
    [['app@web1:/srv/app/venv'], [], ['app@web1:/srv/app/venv']],
    [['web2', 'app@', 'web2'], [], ['app@web1:/srv/app/venv', 'app@web2:/srv/app/venv']],
    [[], ['web'], ['app@web1:/srv/app/venv', 'deploy@web1:/srv/tools/venv', 'app@web2:/srv/app/venv']],
    [[':/srv/app/venv'], ['db'], ['root@db1:/srv/app/venv']],
  ];
  for (const [selectors, roles, expected] of table) {
    it(`selects ${JSON.stringify(selectors)} roles=${JSON.stringify(roles)}`, () => {
      expect(ids(selectors, roles)).to.deep.equal(expected);
    });
  }

  it('refuses a selector that matches nothing, suggesting the nearest name of the same shape', () => {
    const hintFor = (selector: string) => {
      try {
        ids([selector]);
      } catch (e) {
        expect((e as ConfigError).message).to.equal(`selector "${selector}" matches no venv`);
        return (e as ConfigError).hint;
      }
      expect.fail(`${selector} matched`);
    };
    expect(hintFor('web3')).to.match(/^did you mean "web1"\?/);
    expect(hintFor('db2')).to.match(/^did you mean "db1"\?/);
    expect(hintFor('ap@web1')).to.match(/^did you mean "app@web1"\?/);
    expect(hintFor('web1:/srv/ap/venv')).to.match(/^did you mean "web1:\/srv\/app\/venv"\?/);
    expect(hintFor('app@web3:/srv/app/venv')).to.match(/^did you mean "app@web1:\/srv\/app\/venv"\?/);
    // Nothing near: a short line naming the hosts and where the venvs are listed, not every id.
    expect(hintFor('nobody@')).to.equal('hosts: web1, web2, db1; `vdeploy venvs` lists all 4 venvs');
  });
  it('refuses an unknown role', () => {
    expect(() => ids([], ['cache'])).to.throw(ConfigError, /role "cache" matches no host/);
    try {
      ids([], ['wbe']);
      expect.fail('matched');
    } catch (e) {
      expect((e as ConfigError).hint).to.equal('did you mean "web"? roles in the deployfile: web, db');
    }
  });
  it('refuses selectors and roles that match nothing together', () => {
    expect(() => ids(['db1'], ['web'])).to.throw(ConfigError, /match no venv together/);
  });
});
