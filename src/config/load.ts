/** Loads the gateway's configuration file: the YAML rules of core/yaml-config.ts with the whole schema. */
import { loadYamlWith, parseYamlWith } from '../core/yaml-config.js';
import { configSchema, type PlantgateConfig } from './schema.js';

export function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): PlantgateConfig {
  return loadYamlWith(configSchema, file, env);
}

export function parseConfig(text: string, file: string, env: NodeJS.ProcessEnv = process.env): PlantgateConfig {
  return parseYamlWith(configSchema, text, file, env);
}
