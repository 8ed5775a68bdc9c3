import { describe, expect, it } from 'vitest';
import { isNodeOpcuaClosed } from './process-guard.js';

/** An error as node-opcua's secure channel makes it (the message and the top of the stack, as seen in a CI run). */
function fromNodeOpcua(message: string): Error {
  const err = new Error(message);
  err.stack = `Error: ${message}\n    at process_request_callback (/x/node_modules/node-opcua-secure-channel/source/client/client_secure_channel_layer.ts:156:15)\n    at ClientSecureChannelLayer.#_on_message_received (/x/node_modules/node-opcua-secure-channel/source/client/client_secure_channel_layer.ts:1122:9)`;
  return err;
}

describe('the rejections node-opcua leaves behind a closed session', () => {
  it('are recognised by message and origin', () => {
    for (const m of [' serviceResult = BadSessionIdInvalid (0x80250000)', ' serviceResult = BadSessionClosed (0x80260000)', 'Session has been closed and should not be used to perform a transaction anymore', 'Cannot recreate session', 'Cannot recreate session: session has no client']) {
      expect(isNodeOpcuaClosed(fromNodeOpcua(m)), m).toBe(true);
    }
  });

  it('but not the same words from our own code, nor other service results', () => {
    expect(isNodeOpcuaClosed(new Error(' serviceResult = BadSessionIdInvalid (0x80250000)'))).toBe(false);
    expect(isNodeOpcuaClosed(fromNodeOpcua(' serviceResult = BadNodeIdUnknown (0x80340000)'))).toBe(false);
    expect(isNodeOpcuaClosed('Session has been closed')).toBe(false);
  });
});
