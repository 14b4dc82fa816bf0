/**
 * Interpreter facts remembered on the machine running vdeploy, so that a probe need not start every
 * interpreter on every run: 50–60 ms of CPU per host for facts that almost never change. The host
 * checks each remembered entry against a fingerprint it computes without starting the interpreter
 * (vdeploy_remote/probe.py says what goes into it); nothing is ever stored on the hosts.
 *
 * One JSON file: `$VDEPLOY_CACHE_DIR/interpreters.json`, else `$XDG_CACHE_HOME/vdeploy/…`, else
 * `~/.cache/vdeploy/…`. Entries are keyed by the connection's target (`user@address:port`) and the
 * interpreter's realpath there; the facts themselves are stored once per distinct content, since the
 * hosts of a fleet mostly run the same python build.
 *
 * The cache is an optimization, never a reason to fail: a missing, unreadable or corrupt file reads as
 * empty (and is replaced at the next write); a file or directory that cannot be written is left alone.
 * Writes replace the whole file (local-cache.ts), so a reader never sees half of one; before
 * writing, what is on disk is read again and merged, so concurrent vdeploy processes lose little, and
 * the last writer wins an entry both wrote. Writes are synchronous: the probes of one run (hosts in
 * parallel) then cannot interleave a read-merge-write, and nothing is left half-done at exit.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import * as z from 'zod';
import { localCacheDir, readCacheFile, writeCacheFile } from '../local-cache.js';
import { interpreterSchema } from './probe-contract.js';
import type { ConfirmedInterpreter, LearnedInterpreter } from './probe-output.js';
import type { InterpreterFacts } from './types.js';

/**
 * Entries older than this are not offered, so the host computes the facts afresh: a backstop for
 * what the fingerprint cannot see (say, a `_manylinux` module installed beside pip), at the price of
 * one interpreter start per host and week.
 */
export const MAX_AGE_MS = 7 * 24 * 3600 * 1000;

/**
 * How long the interpreter a venv was seen with is remembered for `vdeploy fetch`, which never
 * connects: longer than MAX_AGE_MS, since a guess a few weeks old beats "run plan first".
 */
export const VENV_MAX_AGE_MS = 30 * 24 * 3600 * 1000;

/** A remembered venv entry younger than this is not rewritten when a probe sees the same facts again. */
const VENV_REFRESH_MS = 24 * 3600 * 1000;

/** The interpreter a venv was last probed with, and when. */
export interface KnownVenvInterpreter {
  facts: InterpreterFacts;
  learned: number;
}

const entrySchema = z.object({
  fingerprint: z.string().min(1),
  files: z.array(z.string()),
  /** Key into `facts`. */
  facts: z.string(),
  /** When it was learned, ms since the epoch. */
  learned: z.number(),
  /** Hash of the identity SFTP can check (quick-identity.ts): lets a probe run without a command. */
  quick: z.string().optional(),
});

/** Which interpreter a venv path of a host was last seen with: `vdeploy fetch` reads it, offline. */
const venvEntrySchema = z.object({
  /** Key into `facts`. */
  facts: z.string(),
  learned: z.number(),
});

const fileSchema = z.object({
  v: z.literal(1),
  /** host → interpreter realpath → entry */
  hosts: z.record(z.string(), z.record(z.string(), entrySchema)),
  facts: z.record(z.string(), interpreterSchema),
  /** host → venv path → entry (optional: files written before `vdeploy fetch` existed have none). */
  venvs: z.record(z.string(), z.record(z.string(), venvEntrySchema)).optional(),
});

type CacheData = z.infer<typeof fileSchema>;

/** Where the cache file is, from the environment (VDEPLOY_CACHE_DIR, XDG_CACHE_HOME, HOME). */
export function interpreterCacheFile(env: NodeJS.ProcessEnv = process.env): string {
  return join(localCacheDir(env), 'interpreters.json');
}

const instances = new Map<string, InterpreterCache>();

/** The cache the environment names; one instance per file, so every probe of a run shares what was read. */
export function defaultInterpreterCache(env: NodeJS.ProcessEnv = process.env): InterpreterCache {
  const file = interpreterCacheFile(env);
  let cache = instances.get(file);
  if (cache === undefined) instances.set(file, (cache = new InterpreterCache(file)));
  return cache;
}

export class InterpreterCache {
  private data: CacheData | undefined;

  constructor(
    readonly file: string,
    private readonly now: () => number = Date.now,
  ) {}

  /** What is remembered about `host`'s interpreters and young enough to offer to its probe. */
  known(host: string): LearnedInterpreter[] {
    const data = (this.data ??= this.read());
    const now = this.now();
    // Own properties only: a corrupt file must not reach Object.prototype ("constructor" as a key).
    const entries = Object.hasOwn(data.hosts, host) ? data.hosts[host]! : {};
    return Object.entries(entries).flatMap(([python, entry]) => {
      if (!Object.hasOwn(data.facts, entry.facts) || !isFresh(entry.learned, now)) return [];
      const facts = data.facts[entry.facts]!;
      return [{ python, fingerprint: entry.fingerprint, files: entry.files, facts, ...(entry.quick === undefined ? {} : { quick: entry.quick }) }];
    });
  }

  /** Store what a probe of `host` computed; silently does nothing when the file cannot be written. */
  remember(host: string, learned: readonly LearnedInterpreter[]): void {
    if (learned.length === 0) return;
    const data = this.read();
    const now = this.now();
    const entries = Object.hasOwn(data.hosts, host) ? data.hosts[host]! : (data.hosts[host] = {});
    for (const { python, fingerprint, files, facts, quick } of learned) {
      const key = factsKey(facts);
      data.facts[key] = facts;
      entries[python] = { fingerprint, files, facts: key, learned: now, ...(quick === undefined ? {} : { quick }) };
    }
    prune(data, now);
    this.data = data;
    this.write(data);
  }

  /**
   * Record the quick identity of entries the host just confirmed by fingerprint. Their age is kept:
   * confirming must not push back the week after which facts are computed afresh.
   */
  confirm(host: string, confirmed: readonly ConfirmedInterpreter[]): void {
    const known = this.known(host);
    const changed = confirmed.filter((c) => known.some((k) => k.python === c.python && k.fingerprint === c.fingerprint && k.quick !== c.quick));
    if (changed.length === 0) return;
    const data = this.read();
    const entries = Object.hasOwn(data.hosts, host) ? data.hosts[host]! : {};
    for (const { python, fingerprint, quick } of changed) {
      const entry = Object.hasOwn(entries, python) ? entries[python] : undefined;
      if (entry?.fingerprint === fingerprint) entry.quick = quick;
    }
    this.data = data;
    this.write(data);
  }

  /**
   * Remember which interpreter each venv of `host` has (a missing venv: the one that would create it).
   * Writes only when something changed or the entry is a day old, so a no-op deploy costs no write.
   */
  rememberVenvs(host: string, venvs: ReadonlyArray<{ path: string; interpreter?: InterpreterFacts | null }>): void {
    const seen = venvs.flatMap((v) => (v.interpreter ? [{ path: v.path, facts: v.interpreter, key: factsKey(v.interpreter) }] : []));
    const now = this.now();
    const current = (this.data ??= this.read());
    const stale = seen.filter(({ path, key }) => {
      const entry = ownEntry(ownEntry(current.venvs ?? {}, host) ?? {}, path);
      return entry?.facts !== key || !Object.hasOwn(current.facts, key) || Math.abs(now - entry.learned) > VENV_REFRESH_MS;
    });
    if (stale.length === 0) return;
    const data = this.read();
    const hosts = (data.venvs ??= {});
    const entries = Object.hasOwn(hosts, host) ? hosts[host]! : (hosts[host] = {});
    for (const { path, facts, key } of stale) {
      data.facts[key] = facts;
      entries[path] = { facts: key, learned: now };
    }
    prune(data, now);
    this.data = data;
    this.write(data);
  }

  /** The interpreter `host`'s venv at `path` was last probed with (up to VENV_MAX_AGE_MS old), if any. */
  venvInterpreter(host: string, path: string): KnownVenvInterpreter | undefined {
    const data = (this.data ??= this.read());
    const entry = ownEntry(ownEntry(data.venvs ?? {}, host) ?? {}, path);
    if (entry === undefined || !Object.hasOwn(data.facts, entry.facts)) return undefined;
    if (Math.abs(this.now() - entry.learned) >= VENV_MAX_AGE_MS) return undefined;
    return { facts: data.facts[entry.facts]!, learned: entry.learned };
  }

  private read(): CacheData {
    const parsed = fileSchema.safeParse(readCacheFile(this.file));
    return parsed.success ? parsed.data : { v: 1, hosts: {}, facts: {} };
  }

  private write(data: CacheData): void {
    writeCacheFile(this.file, data);
  }
}

/** Same content, same key: identical facts of many hosts are stored once. */
function factsKey(facts: unknown): string {
  return createHash('sha256').update(JSON.stringify(facts)).digest('hex').slice(0, 32);
}

/** Either way: a clock set back must not make an entry young for ever. */
function isFresh(learned: number, now: number): boolean {
  return Math.abs(now - learned) < MAX_AGE_MS;
}

/** Own properties only: a corrupt file must not reach Object.prototype ("constructor" as a key). */
function ownEntry<T>(record: Record<string, T>, key: string): T | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}

/** Drop what will never be offered again, so the file stays as large as the fleets in use. */
function prune(data: CacheData, now: number): void {
  const used = new Set<string>();
  for (const [host, entries] of Object.entries(data.venvs ?? {})) {
    for (const [path, entry] of Object.entries(entries)) {
      if (Math.abs(now - entry.learned) < VENV_MAX_AGE_MS && Object.hasOwn(data.facts, entry.facts)) used.add(entry.facts);
      else delete entries[path];
    }
    if (Object.keys(entries).length === 0) delete data.venvs![host];
  }
  for (const [host, entries] of Object.entries(data.hosts)) {
    for (const [python, entry] of Object.entries(entries)) {
      if (isFresh(entry.learned, now) && Object.hasOwn(data.facts, entry.facts)) used.add(entry.facts);
      else delete entries[python];
    }
    if (Object.keys(entries).length === 0) delete data.hosts[host];
  }
  for (const key of Object.keys(data.facts)) if (!used.has(key)) delete data.facts[key];
}
