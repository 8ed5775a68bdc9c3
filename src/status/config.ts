import { z } from 'zod';
import { listenAddress } from '../config/types.js';

export const httpSchema = z.strictObject({
  /** Status API and dashboard. Loopback by default: see the README before exposing it. */
  listen: listenAddress.default({ host: '127.0.0.1', port: 8080 }),
});
export type HttpConfig = z.output<typeof httpSchema>;
