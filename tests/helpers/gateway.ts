/** Starts a gateway from a YAML snippet for tests, with its own buffer folder and a quiet logger. */
import pino from 'pino';
import { parseConfig } from '../../src/config/load.js';
import { startGateway, type Gateway } from '../../src/gateway.js';
import { tempDir } from './servers.js';

/** `reuseDir`: start on the folder of an earlier (stopped) gateway, as a restart would; cleanup then leaves it. */
export async function testGateway(yaml: string, env: Record<string, string> = {}, reuseDir?: string): Promise<Gateway & { dir: string; cleanup(): Promise<void> }> {
  const dir = reuseDir === undefined ? tempDir('gw') : { path: reuseDir, remove() {} };
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
