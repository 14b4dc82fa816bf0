/**
 * What each released wheel's METADATA says about dependencies, remembered on this machine: reading
 * it means walking the zip's central directory entry by entry, 200 ms for Django's 3,700 members,
 * and every plan needs it before it can show anything. A wheel in the repository never changes
 * under its name (add-wheel refuses that without --force, which writes a new file), so an entry
 * keyed by the file's path and checked against its size, mtime and inode is as good as the file.
 *
 * One JSON file, `wheel-metadata.json` in vdeploy's cache directory; like every local cache an
 * optimization only: unreadable or corrupt reads as empty, an unwritable one is left alone.
 */
import * as z from 'zod';
import { readCacheFile, writeCacheFile } from '../local-cache.js';
import type { WheelDependencies } from './resolve-venv.js';

const FILE = 'wheel-metadata.json';

const entrySchema = z.object({
  size: z.number(),
  mtimeMs: z.number(),
  ino: z.number(),
  requiresDist: z.array(z.string()),
  requiresPython: z.string().optional(),
  providesExtra: z.array(z.string()).optional(),
});

const fileSchema = z.object({ v: z.literal(1), wheels: z.record(z.string(), entrySchema) });

export interface FileIdentity {
  size: number;
  mtimeMs: number;
  ino: number;
}

export class WheelMetadataCache {
  private data: z.infer<typeof fileSchema> | undefined;

  constructor(private readonly env: NodeJS.ProcessEnv = process.env) {}

  /** The remembered dependencies of the wheel at `path`, if the file is still the one they came from. */
  get(path: string, file: FileIdentity): WheelDependencies | undefined {
    this.data ??= this.read();
    if (!Object.hasOwn(this.data.wheels, path)) return undefined;
    const { size, mtimeMs, ino, ...deps } = this.data.wheels[path]!;
    return size === file.size && mtimeMs === file.mtimeMs && ino === file.ino ? deps : undefined;
  }

  remember(path: string, file: FileIdentity, deps: WheelDependencies): void {
    // Read again before writing: another vdeploy may have added entries meanwhile.
    const data = this.read();
    data.wheels[path] = { size: file.size, mtimeMs: file.mtimeMs, ino: file.ino, ...deps };
    this.data = data;
    writeCacheFile(FILE, data, this.env);
  }

  private read(): z.infer<typeof fileSchema> {
    const parsed = fileSchema.safeParse(readCacheFile(FILE, this.env));
    return parsed.success ? parsed.data : { v: 1, wheels: {} };
  }
}
