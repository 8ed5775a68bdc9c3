/**
 * A real node-opcua server hosting simulated equipment, with the fault injection the gateway's
 * tests need: restart on the same port, freezing values, bad-quality nodes and node removal.
 *
 * The equipment models (CNC machines, PLCs) keep their state in plain objects; the address space
 * is rebuilt from them on every (re)start, like a controller coming back after a power cycle.
 * The server certificate lives in `pkiDir`, so a restart keeps the identity the gateway trusted.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  type AddressSpace,
  type BaseNode,
  type DataValue,
  type IVariableHistorian,
  MessageSecurityMode,
  type Namespace,
  NodeClass,
  OPCUACertificateManager,
  OPCUAServer,
  type ReadRawModifiedDetails,
  SecurityPolicy,
  StatusCode,
  StatusCodes,
  type UAVariable,
  Variant,
} from 'node-opcua';

export type SimSecurity = 'none' | 'secure' | 'both';

export interface SimServerOptions {
  port: number;
  /** Loopback only unless asked otherwise. */
  host?: string;
  security?: SimSecurity;
  /** Server certificate and the client certificates it has seen. */
  pkiDir: string;
  nodesets: string[];
  /** Namespace URI of the simulated equipment. */
  namespaceUri: string;
  /** `user:password` pairs accepted besides anonymous (anonymous stays allowed). */
  users?: Array<{ username: string; password: string }>;
  /** Value update period. */
  intervalMs?: number;
  /** Refuse client certificates it has not been told to trust (default: accept any, as a lab server). */
  rejectUnknownClients?: boolean;
  /**
   * Keep the history of every variable (HistoryRead of raw values), across restarts as a
   * controller's historian would: a client can read back what it missed.
   */
  historize?: boolean;
}

/** History values kept per variable. */
const HISTORY_VALUES = 20_000;

/**
 * A variable's history in an array the SimServer owns, so that it outlives the address space of
 * one run (node-opcua's own historian lives in the variable, and a restart would empty it).
 */
class KeptHistory implements IVariableHistorian {
  constructor(private readonly values: DataValue[]) {}

  async push(dv: DataValue): Promise<void> {
    this.values.push(dv);
    if (this.values.length > HISTORY_VALUES) this.values.splice(0, this.values.length - HISTORY_VALUES);
  }

  extractDataValues(details: ReadRawModifiedDetails, max: number, isReversed: boolean, reverseDataValue: boolean, callback: (err: Error | null, values?: DataValue[]) => void): void {
    // an unset bound is OPC UA's minimum date (1601)
    const bound = (d: Date | null | undefined) => (d && d.getTime() > Date.UTC(1700, 0, 1) ? d.getTime() : undefined);
    const start = bound(details.startTime);
    const end = bound(details.endTime);
    let r = this.values.filter((dv) => {
      const t = dv.sourceTimestamp?.getTime() ?? 0;
      return (start === undefined || t >= start) && (end === undefined || t <= end);
    });
    if (isReversed) r.reverse();
    if (max) r = r.slice(0, max);
    if (reverseDataValue) r.reverse();
    callback(null, r);
  }
}

/** Something that puts nodes into an address space and moves their values. */
export interface SimModel {
  readonly name: string;
  build(addressSpace: AddressSpace, ns: Namespace): void;
  /** Updates values; `now` is epoch ms; `held(path)` variables are held by a fault and left alone. */
  tick(now: number, held: (path: string) => boolean): void;
  /** The model's variables by path below its root, for fault injection and tests. */
  variables(): Map<string, UAVariable>;
}

export class SimServer {
  private server?: OPCUAServer;
  private timer?: NodeJS.Timeout;
  private frozen = false;
  /** Paths held at a bad status code until cleared: `machine/path` -> status. */
  private readonly bad = new Map<string, StatusCode>();
  private readonly removed = new Set<string>();
  /** Variable histories by `model/path` (with `historize`), kept across restarts. */
  private readonly histories = new Map<string, DataValue[]>();

  constructor(readonly options: SimServerOptions, readonly models: SimModel[]) {}

  get url(): string {
    return `opc.tcp://${this.options.host ?? '127.0.0.1'}:${this.options.port}`;
  }

  get certificateFile(): string {
    return join(this.options.pkiDir, 'own', 'certs', 'certificate.pem');
  }

  async start(): Promise<void> {
    if (this.server) return;
    const o = this.options;
    mkdirSync(o.pkiDir, { recursive: true });
    const security = o.security ?? 'both';
    const serverCertificateManager = new OPCUACertificateManager({ rootFolder: o.pkiDir, automaticallyAcceptUnknownCertificate: !o.rejectUnknownClients });
    const server = new OPCUAServer({
      port: o.port,
      host: o.host ?? '127.0.0.1',
      hostname: o.host ?? '127.0.0.1',
      nodeset_filename: o.nodesets,
      serverCertificateManager,
      certificateFile: this.certificateFile,
      privateKeyFile: join(o.pkiDir, 'own', 'private', 'private_key.pem'),
      securityModes: security === 'none' ? [MessageSecurityMode.None] : security === 'secure' ? [MessageSecurityMode.Sign, MessageSecurityMode.SignAndEncrypt] : [MessageSecurityMode.None, MessageSecurityMode.Sign, MessageSecurityMode.SignAndEncrypt],
      securityPolicies: security === 'none' ? [SecurityPolicy.None] : security === 'secure' ? [SecurityPolicy.Basic256Sha256, SecurityPolicy.Aes128_Sha256_RsaOaep, SecurityPolicy.Aes256_Sha256_RsaPss] : [SecurityPolicy.None, SecurityPolicy.Basic256Sha256, SecurityPolicy.Aes128_Sha256_RsaOaep, SecurityPolicy.Aes256_Sha256_RsaPss],
      allowAnonymous: true,
      userManager: {
        isValidUser: (username: string, password: string) => (o.users ?? []).some((u) => u.username === username && u.password === password),
      },
      buildInfo: { productName: 'plantgate simulator', manufacturerName: 'plantgate', softwareVersion: '1.0.0' },
      serverInfo: { applicationUri: `urn:plantgate:sim:${o.port}`, productUri: 'urn:plantgate:sim' },
      maxConnectionsPerEndpoint: 100,
      // a controller that reports every change when asked for samplingInterval 0 (exception-based
      // acquisition); the variables that allow it say so with a MinimumSamplingInterval of 0
      serverCapabilities: { minSupportedSampleRate: 0 },
    });
    await server.initialize();
    const addressSpace = server.engine.addressSpace!;
    // binds ConditionRefresh, Acknowledge and the other Alarms & Conditions methods
    addressSpace.installAlarmsAndConditionsService();
    const ns = addressSpace.registerNamespace(o.namespaceUri);
    for (const m of this.models) m.build(addressSpace, ns);
    if (o.historize) {
      for (const m of this.models) {
        for (const [path, v] of m.variables()) {
          const key = `${m.name}/${path}`;
          if (!this.histories.has(key)) this.histories.set(key, []);
          addressSpace.installHistoricalDataNode(v, { historian: new KeptHistory(this.histories.get(key)!) });
        }
      }
    }
    // faults survive a restart: a removed node stays removed, a bad one stays bad
    for (const key of this.removed) this.deleteNow(key);
    await server.start();
    this.server = server;
    this.tick();
    this.timer = setInterval(() => this.tick(), o.intervalMs ?? 1000);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    const server = this.server;
    this.server = undefined;
    if (server) {
      await server.shutdown(0);
      await server.serverCertificateManager.dispose().catch(() => undefined);
    }
  }

  /** The server's administrator trusts a client certificate (with `rejectUnknownClients`). */
  async trustClient(certificate: Buffer): Promise<void> {
    await this.server?.serverCertificateManager.trustCertificate(certificate);
  }

  /**
   * Sessions a client reads through now: activated and on an open channel. A client killed with
   * SIGKILL leaves its session behind until the session timeout, but without a channel it reads
   * nothing, so it is not counted.
   */
  activeSessions(): number {
    return (this.server?.engine.getSessions() ?? []).filter((s) => s.status === 'active' && !s.aborted && (s.channel as { isOpened?: boolean } | undefined)?.isOpened).length;
  }

  /** Stops the server and starts it again on the same port after `downMs`: a controller reboot. */
  async restart(downMs = 0): Promise<void> {
    await this.stop();
    if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
    await this.start();
  }

  /** Values stop changing (a hung controller that still answers). */
  freeze(on: boolean): void {
    this.frozen = on;
  }

  /** Holds one variable at a bad status (BadSensorFailure by default) until cleared with `null`. */
  setBad(model: string, path: string, status: StatusCode | null = StatusCodes.BadSensorFailure): void {
    const key = `${model}/${path}`;
    if (status) this.bad.set(key, status);
    else this.bad.delete(key);
    this.tick();
  }

  /** Deletes a variable from the address space while clients may be subscribed to it. */
  removeNode(model: string, path: string): void {
    const key = `${model}/${path}`;
    this.removed.add(key);
    this.deleteNow(key);
  }

  /** Puts removed nodes back (at the next restart, as a controller would after a program change). */
  restoreNodes(): void {
    this.removed.clear();
  }

  /** The variable a fault key (`model/path`) names, in the current address space. */
  private variableAt(key: string): UAVariable | undefined {
    const [model, ...rest] = key.split('/');
    return this.models.find((m) => m.name === model)?.variables().get(rest.join('/'));
  }

  private deleteNow(key: string): void {
    const v = this.variableAt(key);
    if (v && this.server) this.server.engine.addressSpace!.deleteNode(v);
  }

  private tick(): void {
    if (!this.server) return;
    const now = Date.now();
    if (!this.frozen) for (const m of this.models) m.tick(now, (path) => this.bad.has(`${m.name}/${path}`) || this.removed.has(`${m.name}/${path}`));
    for (const [key, status] of this.bad) {
      const v = this.variableAt(key);
      if (v) v.setValueFromSource(new Variant({ dataType: v.dataTypeObj.basicDataType, value: null }), status, new Date(now));
    }
  }
}

/** Variables below a node, keyed by their browse-name path joined with `/` (properties left out). */
export function collectVariables(root: BaseNode, addressSpace: AddressSpace): Map<string, UAVariable> {
  const out = new Map<string, UAVariable>();
  const hasProperty = addressSpace.findReferenceType('HasProperty')!;
  const walk = (node: BaseNode, prefix: string) => {
    for (const ref of node.findReferencesEx('HierarchicalReferences' as never)) {
      if (ref.referenceType.toString() === hasProperty.nodeId.toString()) continue;
      const child = addressSpace.findNode(ref.nodeId);
      if (!child) continue;
      const path = prefix ? `${prefix}/${child.browseName.name}` : child.browseName.name!;
      if (child.nodeClass === NodeClass.Variable) out.set(path, child as UAVariable);
      walk(child, path);
    }
  };
  walk(root, '');
  return out;
}
