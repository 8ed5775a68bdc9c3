/**
 * OPC UA servers with many plain tags, for the scale benchmark (`plantgate sim scale`): each server
 * has `machines` objects (`M0001` ...) with `tags` Double variables each (`T001` ...), all moved
 * every `intervalMs`. This is the shape of a line of PLCs exported tag by tag, not a companion
 * specification; the CNC and PLC simulators model those.
 */
import { type AddressSpace, DataType, type Namespace, nodesets, StatusCodes, type UAVariable, Variant } from 'node-opcua';
import { type SimModel, SimServer } from './opcua-server.js';

export const SCALE_NAMESPACE = 'urn:plantgate:sim:scale';

export function scaleMachineName(i: number): string {
  return `M${String(i + 1).padStart(4, '0')}`;
}

export function scaleTagName(i: number): string {
  return `T${String(i + 1).padStart(3, '0')}`;
}

class ScaleModel implements SimModel {
  readonly name = 'Scale';
  private readonly vars = new Map<string, UAVariable>();
  private readonly list: UAVariable[] = [];
  private n = 0;

  constructor(private readonly machines: number, private readonly tags: number) {}

  build(addressSpace: AddressSpace, ns: Namespace): void {
    this.vars.clear();
    this.list.length = 0;
    const root = ns.addObject({ browseName: this.name, nodeId: 's=Scale', organizedBy: addressSpace.rootFolder.objects });
    for (let m = 0; m < this.machines; m++) {
      const machine = scaleMachineName(m);
      const obj = ns.addObject({ browseName: machine, nodeId: `s=${machine}`, componentOf: root });
      for (let t = 0; t < this.tags; t++) {
        const tag = scaleTagName(t);
        const v = ns.addVariable({ browseName: tag, nodeId: `s=${machine}.${tag}`, componentOf: obj, dataType: 'Double', minimumSamplingInterval: 50 });
        this.vars.set(`${machine}/${tag}`, v);
        this.list.push(v);
      }
    }
  }

  tick(now: number): void {
    this.n++;
    const ts = new Date(now);
    // a different value every tick, so every sample is a change the server reports
    for (let i = 0; i < this.list.length; i++) {
      this.list[i]!.setValueFromSource(new Variant({ dataType: DataType.Double, value: this.n + i / 1000 }), StatusCodes.Good, ts);
    }
  }

  variables(): Map<string, UAVariable> {
    return this.vars;
  }
}

export interface ScaleFleetOptions {
  basePort: number;
  servers: number;
  machines: number;
  tags: number;
  intervalMs: number;
  pkiDir: string;
}

export function scaleFleet(o: ScaleFleetOptions): SimServer[] {
  const out: SimServer[] = [];
  for (let s = 0; s < o.servers; s++) {
    out.push(
      new SimServer(
        { port: o.basePort + s, pkiDir: `${o.pkiDir}/server-${o.basePort + s}`, nodesets: [nodesets.standard], namespaceUri: SCALE_NAMESPACE, security: 'none', intervalMs: o.intervalMs },
        [new ScaleModel(o.machines, o.tags)],
      ),
    );
  }
  return out;
}
