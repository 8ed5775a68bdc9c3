/** The gateway's log lines, parsed, for tests that check what an operator would read (the production logger). */
import { Writable } from 'node:stream';

export function logCapture(): { logs: Record<string, unknown>[]; stream: Writable } {
  const logs: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _e, cb) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) logs.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { logs, stream };
}
