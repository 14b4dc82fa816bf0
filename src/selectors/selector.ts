/**
 * Target selectors: `host`, `user@host`, `user@host:/path`, `host:/path`, `:/path`, `user@`.
 * `user` is the venv's owning user; `host` matches a host's name or address; `path` is the venv path.
 */
import { posix } from 'node:path';
import { ConfigError } from '../errors.js';

export interface Selector {
  /** As the user typed it, for messages. */
  text: string;
  user?: string;
  host?: string;
  path?: string;
}

const SELECTOR_HINT = 'selectors look like host, user@host, user@host:/path, host:/path, :/path or user@';

/** Parses one selector; a malformed one is a ConfigError saying what is wrong with it. */
export function parseSelector(text: string): Selector {
  const bad = (why: string) => new ConfigError(`bad selector "${text}": ${why}`, { hint: SELECTOR_HINT });
  if (text.length === 0) throw bad('it is empty');
  if (/\s/.test(text)) throw bad('it contains white space');
  let rest = text;
  const selector: Selector = { text };

  const at = rest.indexOf('@');
  const colon = rest.indexOf(':');
  // An `@` after the `:` belongs to the path, so only an `@` before any `:` separates the user.
  if (at !== -1 && (colon === -1 || at < colon)) {
    const user = rest.slice(0, at);
    if (user.length === 0) throw bad('the user before "@" is empty');
    selector.user = user;
    rest = rest.slice(at + 1);
    if (rest.includes('@') && (rest.indexOf(':') === -1 || rest.indexOf('@') < rest.indexOf(':'))) {
      throw bad('it has more than one "@"');
    }
  }

  const pathStart = rest.indexOf(':');
  const host = pathStart === -1 ? rest : rest.slice(0, pathStart);
  if (host.length > 0) selector.host = host;
  if (pathStart !== -1) {
    const path = rest.slice(pathStart + 1);
    if (path.length === 0) throw bad('the path after ":" is empty');
    if (!path.startsWith('/')) throw bad(`the path "${path}" is not absolute (it must start with /)`);
    selector.path = normalizeVenvPath(path);
  }
  if (!selector.user && !selector.host && !selector.path) throw bad('it names no user, host or path');
  return selector;
}

/** Venv paths compare without trailing slashes or `//`, as the deployfile's paths are stored. */
export function normalizeVenvPath(path: string): string {
  const normal = posix.normalize(path);
  return normal.length > 1 ? normal.replace(/\/+$/, '') : normal;
}

export function formatSelector(s: Pick<Selector, 'user' | 'host' | 'path'>): string {
  return `${s.user ? `${s.user}@` : ''}${s.host ?? ''}${s.path ? `:${s.path}` : ''}`;
}
