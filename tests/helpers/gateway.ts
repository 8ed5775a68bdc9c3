/** Starts a gateway from a YAML snippet for tests, with its own buffer folder and a quiet logger. */
import type { DestinationStream } from 'pino';
import { parseConfig } from '../../src/config/load.js';
import { createLogger, startGateway, type Gateway } from '../../src/gateway/gateway.js';
import { tempDir } from './servers.js';

/**
 * `reuseDir`: start on the folder of an earlier (stopped) gateway, as a restart would; cleanup then
 * leaves it. `logTo`: the gateway's log (the production logger, with its redaction) at debug level.
 */
export async function testGateway(
  yaml: string,
  env: Record<string, string> = {},
  opts: { reuseDir?: string; logTo?: DestinationStream } = {},
): Promise<Gateway & { dir: string; cleanup(): Promise<void> }> {
  const { reuseDir, logTo } = opts;
  const dir = reuseDir === undefined ? tempDir('gw') : { path: reuseDir, remove() {} };
  const config = parseConfig(yaml, 'test.yaml', { ...process.env, DATA: dir.path, ...env });
  const log = logTo ? createLogger('debug', logTo) : createLogger(process.env.PLANTGATE_TEST_LOG ?? 'silent');
  const gw = await startGateway(config, log);
  return Object.assign(gw, {
    dir: dir.path,
    async cleanup() {
      await gw.stop();
      dir.remove();
    },
  });
}
