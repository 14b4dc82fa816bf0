import type { FilesPlan } from '../files/types.js';

export function renderFilesPlan(host: string, _plan: FilesPlan, _colour: boolean): string[] {
  return [`files on ${host}:`];
}
