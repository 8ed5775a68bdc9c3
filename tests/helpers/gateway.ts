/** Starts a gateway from a YAML snippet for tests, with its own buffer folder and a quiet logger. */
import pino from 'pino';
import { parseConfig } from '../../src/config/load.js';
import { startGateway, type Gateway } from '../../src/gateway.js';
import { tempDir } from './servers.js';

export async function testGateway(yaml: string, env: Record<string, string> = {}): Promise<Gateway & { dir: string; cleanup(): Promise<void> }> {
  const dir = tempDir('gw');
  const config = parseConfig(yaml, 'test.yaml', { ...process.env, DATA: dir.path, ...env });
  const gw = await startGateway(config, pino({ level: process.env.PLANTGATE_TEST_LOG ?? 'silent' }));
  return {
    ...gw,
    dir: dir.path,
    async cleanup() {
      await gw.stop();
      dir.remove();
    },
  };
}
