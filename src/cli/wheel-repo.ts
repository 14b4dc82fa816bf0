/** Which wheel repository a wheel command works on: --repo, else the deployfile's, else ./wheels. */
import { resolve } from 'node:path';
import { findDeployfile } from '../config/load-deployfile.js';
import { loadConfig, type GlobalArgs } from './context.js';

export interface RepoArgs extends GlobalArgs {
  repo?: string;
}

export const repoOption = {
  type: 'string',
  describe: "Wheel repository directory (default: the deployfile's `wheels`, else ./wheels)",
} as const;

export async function resolveRepoDir(args: RepoArgs): Promise<string> {
  if (args.repo) return resolve(args.repo);
  // A deployfile that is there but broken is an error, not a reason to fall back to ./wheels.
  if (args.deployfile || findDeployfile(process.cwd())) return (await loadConfig(args)).wheels;
  return resolve('wheels');
}
