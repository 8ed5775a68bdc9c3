/**
 * The OPC UA endpoint factory. node-opcua is loaded only when the first endpoint is built: it is
 * large, and on import it runs a self-test that generates an RSA key, which MQTT-only gateways and
 * `plantgate check` skip. So this file imports the source and the PKI only dynamically.
 */
import type { Logger } from 'pino';
import { changedKeys, defineFactory } from '../../core/factory.js';
import type { SourceContext } from '../source.js';
import { endpointSchema, type OpcuaConfig } from './config.js';
import type { OpcuaEndpointSource } from './opcua-source.js';

/** One certificate manager for all endpoints: one client identity, one trust list. */
export interface OpcuaCertificates {
  manager: import('node-opcua').OPCUACertificateManager;
  applicationName: string;
  dispose(): Promise<void>;
}

export async function openOpcuaCertificates(pkiDir: string, applicationName: string, log: Logger): Promise<OpcuaCertificates> {
  const [{ openCertificateManager }, { routeOpcuaLogs }] = await Promise.all([import('./pki.js'), import('./logging.js')]);
  routeOpcuaLogs(log);
  const manager = openCertificateManager(pkiDir);
  return { manager, applicationName, dispose: () => manager.dispose() };
}

export const opcuaEndpointFactory = defineFactory({
  type: 'opcua',
  schema: endpointSchema,
  create: async (name, config, deps: { certificates: () => Promise<OpcuaCertificates>; ctx: SourceContext }): Promise<OpcuaEndpointSource> => {
    const [{ OpcuaEndpointSource }, certificates] = await Promise.all([import('./opcua-source.js'), deps.certificates()]);
    return new OpcuaEndpointSource(name, config, certificates, deps.ctx);
  },
});

/** The client identity all endpoints share cannot change under their sessions. */
export function opcuaIdentityFixed(prev: Pick<OpcuaConfig, 'pkiDir' | 'applicationName'>, next: Pick<OpcuaConfig, 'pkiDir' | 'applicationName'>): string | undefined {
  const keys = changedKeys({ pkiDir: prev.pkiDir, applicationName: prev.applicationName }, { pkiDir: next.pkiDir, applicationName: next.applicationName });
  return keys.length ? `opcua.${keys.join(', opcua.')} (the client certificate every endpoint uses) apply at the next start` : undefined;
}
