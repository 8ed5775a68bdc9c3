/** A configuration's problems as `path: message` lines ([] when it loads): what `plantgate check` names. */
import { parseConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/core/errors.js';

export function configProblems(yaml: string, env: Record<string, string> = {}): string[] {
  try {
    parseConfig(yaml, 'plant.yaml', env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map((p) => `${p.path}: ${p.message}`);
    throw err;
  }
  return [];
}
