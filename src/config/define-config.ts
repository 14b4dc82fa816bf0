import type { UserConfig } from './schema.js';

/**
 * Identity function that gives a deployfile full typing (as vite's `defineConfig` does). Validation
 * happens when vdeploy loads the file, so a plain object export works too.
 */
export function defineConfig(config: UserConfig): UserConfig {
  return config;
}
