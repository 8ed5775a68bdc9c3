/**
 * Simulated CNC machines on real node-opcua servers, built from the OPC UA for CNC Systems
 * companion specification (OPC 40502, `Opc.Ua.CNC.NodeSet.xml` from node-opcua-nodesets): each
 * machine is a CncInterfaceType with axes X, Y, Z and the rotary A in its CncAxisList, spindle S1
 * and Channel_1, plus a Production folder (part counter, operating state, alarm, cycle time,
 * energy) because the CNC specification leaves those to the machine tool.
 *
 * Machines move like real ones: setup with the spindle stopped and the channel in Manual, machining
 * cycles in Automatic (axes tracing the part, spindle at speed with load, feed and override, the
 * program line advancing, a part counted at the end of each cycle), idle gaps between batches and
 * now and then an alarm that interrupts the program for a while. Each machine has its own rhythm.
 */
import { type AddressSpace, DataType, VariantArrayType, type Namespace, type UAAlarmConditionEx, type UAObject, type UAVariable, Variant, StatusCodes, nodesets } from 'node-opcua';
import { collectVariables, type SimModel, SimServer, type SimSecurity } from './opcua-server.js';

export const CNC_NAMESPACE = 'urn:plantgate:sim:cnc';
const CNC_URI = 'http://opcfoundation.org/UA/CNC';
const MACHINERY_URI = 'http://opcfoundation.org/UA/Machinery/';
export const CNC_NODESETS = [nodesets.standard, nodesets.di, nodesets.ia, nodesets.machinery, nodesets.cnc];

type Phase = 'setup' | 'cycle' | 'idle' | 'alarm';
const PHASE_CODE: Record<Phase, number> = { setup: 1, cycle: 2, idle: 0, alarm: 3 };
/** Code, text and OPC UA severity (1-1000) of the alarms a machine raises. */
const ALARMS = [
  [1010, 'Spindle overload', 800],
  [2041, 'Coolant level low', 400],
  [3102, 'Axis Z following error', 900],
  [4007, 'Tool life expired', 300],
] as const;

export interface CncMachineOptions {
  /** Seconds per machining cycle at timeScale 1 (default 30). */
  cycleSeconds?: number;
  /** Speeds the machine's life up (tests use 10-50). */
  timeScale?: number;
}

export class CncMachine implements SimModel {
  private vars = new Map<string, UAVariable>();
  private updaters: Array<(t: number, held: (path: string) => boolean) => void> = [];
  private phase: Phase = 'setup';
  private phaseEnds = 0;
  private cycleStart = 0;
  parts = 0;
  private alarm: (typeof ALARMS)[number] | undefined;
  private energy = 0;
  private lastTick = 0;
  /** The machine's condition (CncAlarmType of the CNC companion spec), raised in the alarm phase. */
  private condition?: UAAlarmConditionEx;
  private nsCnc = 0;
  /** Alarms raised and cleared as events, for tests to count against. */
  readonly alarmLog: Array<{ code: number; text: string; severity: number; raised: number; cleared?: number }> = [];
  private readonly seed: number;
  private readonly cycleMs: number;

  constructor(readonly name: string, index: number, opts: CncMachineOptions = {}) {
    this.seed = index * 7919;
    this.cycleMs = ((opts.cycleSeconds ?? 30) * 1000) / (opts.timeScale ?? 1);
  }

  variables(): Map<string, UAVariable> {
    return this.vars;
  }

  build(addressSpace: AddressSpace, ns: Namespace): void {
    const nsCnc = (this.nsCnc = addressSpace.getNamespaceIndex(CNC_URI));
    const nsMachinery = addressSpace.getNamespaceIndex(MACHINERY_URI);
    // Machinery's "Machines" folder (i=1001) is where OPC 40001 says machines are found
    const machines = nsMachinery >= 0 ? addressSpace.findNode(`ns=${nsMachinery};i=1001`) : null;
    const type = (n: string) => {
      const t = addressSpace.findObjectType(n, nsCnc);
      if (!t) throw new Error(`${n} missing: the CNC nodeset is not loaded`);
      return t;
    };
    const machine = type('CncInterfaceType').instantiate({
      browseName: { name: this.name, namespaceIndex: ns.index },
      nodeId: `s=${this.name}`,
      namespace: ns,
      organizedBy: machines ?? addressSpace.rootFolder.objects,
      // its alarms reach a client subscribed to the Server object's events
      eventSourceOf: addressSpace.rootFolder.objects.server,
    }) as UAObject;
    const list = (n: string) => machine.getComponentByName(n, nsCnc) as UAObject;
    for (const axis of ['X', 'Y', 'Z', 'A']) {
      type('CncAxisType').instantiate({ browseName: { name: axis, namespaceIndex: ns.index }, nodeId: `s=${this.name}.${axis}`, namespace: ns, componentOf: list('CncAxisList') });
    }
    type('CncSpindleType').instantiate({ browseName: { name: 'S1', namespaceIndex: ns.index }, nodeId: `s=${this.name}.S1`, namespace: ns, componentOf: list('CncSpindleList'), copyAlsoAllOptionals: true });
    type('CncChannelType').instantiate({ browseName: { name: 'Channel_1', namespaceIndex: ns.index }, nodeId: `s=${this.name}.Channel_1`, namespace: ns, componentOf: list('CncChannelList'), copyAlsoAllOptionals: true });
    const production = ns.addObject({ browseName: 'Production', nodeId: `s=${this.name}.Production`, componentOf: machine });
    const add = (name: string, dataType: DataType, value: unknown) =>
      ns.addVariable({ browseName: name, nodeId: `s=${this.name}.Production.${name}`, componentOf: production, dataType: DataType[dataType], value: { dataType, arrayType: VariantArrayType.Scalar, value } });
    add('PartCount', DataType.UInt32, 0);
    add('OperatingState', DataType.String, 'Setup');
    add('OperatingStateCode', DataType.Int32, 1);
    add('AlarmActive', DataType.Boolean, false);
    add('AlarmCode', DataType.UInt32, 0);
    add('AlarmText', DataType.String, '');
    add('LastCycleTime', DataType.Double, 0);
    add('EnergyTotal', DataType.Int64, [0, 0]);
    add('SpindleHours', DataType.Double, 1200 + (this.seed % 500));
    this.vars = collectVariables(machine, addressSpace);
    this.updaters = [...this.vars].map(([path, v]) => this.updaterFor(path, v, addressSpace));
    this.condition = ns.instantiateAlarmCondition(type('CncAlarmType'), {
      browseName: { name: 'Alarm', namespaceIndex: ns.index },
      nodeId: `s=${this.name}.Alarm`,
      componentOf: machine,
      conditionSource: machine,
      conditionName: 'CncAlarm',
      inputNode: this.vars.get('Production/AlarmActive')!,
    });
    // node-opcua names the source by its qualified browse name ("6:cnc-01"); a controller says "cnc-01"
    this.condition.sourceName.setValueFromSource({ dataType: DataType.String, value: this.name });
    // a controller that comes back from a power cycle still has its alarm
    if (this.phase === 'alarm') this.raiseCondition(Date.now(), false);
    this.vars.get('VendorName')?.setValueFromSource({ dataType: DataType.String, value: 'plantgate simulated CNC' });
  }

  /** One closure per variable, chosen by its path, so a tick is a loop without lookups. */
  private updaterFor(path: string, v: UAVariable, addressSpace: AddressSpace): (t: number, held: (p: string) => boolean) => void {
    const name = path.split('/').at(-1)!;
    const axis = /CncAxisList\/([XYZA])\//.exec(path)?.[1];
    const k = this.seed + path.length;
    const dt = v.dataTypeObj.basicDataType;
    const set = (value: unknown, type = dt) => v.setValueFromSource(new Variant({ dataType: type, arrayType: VariantArrayType.Scalar, value }), StatusCodes.Good);
    const numeric = dt >= DataType.SByte && dt <= DataType.Double && dt !== DataType.Int64 && dt !== DataType.UInt64;
    const num = (f: (t: number) => number) => (t: number, held: (p: string) => boolean) => {
      if (held(path) || !numeric) return;
      const x = f(t);
      set(dt === DataType.Float || dt === DataType.Double ? x : Math.round(x));
    };
    const running = () => this.phase === 'cycle';
    const progress = (t: number) => (t - this.cycleStart) / this.cycleMs;
    const pos = (t: number) => {
      if (!axis) return 0;
      const amp = { X: 250, Y: 180, Z: 60, A: 180 }[axis]!;
      return running() ? +(amp * Math.sin(2 * Math.PI * 3 * progress(t) + k)).toFixed(3) : axis === 'Z' ? 100 : 0;
    };
    const noise = (t: number, s: number) => s * Math.sin(t / 700 + k) * Math.cos(t / 1300 + k / 3);
    if (dt === DataType.ExtensionObject) {
      // CncPositionDataType {ActPos, CmdPos, RemDist}: built from the structure's own definition
      const dataTypeNode = addressSpace.findDataType(v.dataType)!;
      return (t, held) => {
        if (held(path)) return;
        const p = pos(t);
        try {
          const value = addressSpace.constructExtensionObject(dataTypeNode, { actPos: p, cmdPos: p + 0.01, remDist: running() ? Math.abs(noise(t, 5)) : 0 });
          v.setValueFromSource(new Variant({ dataType: DataType.ExtensionObject, value }), StatusCodes.Good);
        } catch {
          /* a structure this server cannot build stays at its initial value */
        }
      };
    }
    switch (name) {
      case 'ActPos':
        return num((t) => pos(t));
      case 'CmdPos':
        return num((t) => pos(t) + (running() ? 0.012 : 0));
      case 'RemDist':
        return num((t) => (running() ? Math.abs(noise(t, 8)) : 0));
      case 'ActSpeed':
        return num((t) => (running() ? (axis ? 2000 + noise(t, 400) : 8000 + noise(t, 60)) : 0));
      case 'CmdSpeed':
        return num(() => (running() ? (axis ? 2000 : 8000) : 0));
      case 'ActLoad':
        return num((t) => (running() ? 45 + noise(t, 15) : 2 + noise(t, 0.5)));
      case 'ActPower':
        return num((t) => (running() ? (axis ? 1.2 : 11) + noise(t, 0.8) : 0.1));
      case 'ActTorque':
      case 'CmdTorque':
        return num((t) => (running() ? (axis ? 8 : 35) + noise(t, 3) : 0));
      case 'ActOverride':
      case 'CmdOverride':
      case 'FeedOverride':
        return num(() => (running() ? 100 : 0));
      case 'ActFeedrate':
        return num((t) => (running() ? 1500 + noise(t, 200) : 0));
      case 'CmdFeedrate':
        return num(() => (running() ? 1500 : 0));
      case 'ActStatus':
        if (path.includes('CncSpindleList')) return num(() => (running() ? 1 : 0)); // InTargetArea / Stopped
        if (path.includes('CncChannelList')) return num(() => (this.phase === 'alarm' ? 1 : running() ? 0 : 2)); // Active / Interrupted / Reset
        return num(() => (running() ? 1 : 0)); // Moving / InPosition
      case 'ActProgramStatus':
        return num(() => ({ cycle: 1, alarm: 3, setup: 0, idle: 0 })[this.phase]);
      case 'ActOperationMode':
        return num(() => (this.phase === 'setup' ? 0 : 2));
      case 'ActTurnDirection':
        return num(() => (running() ? 1 : 0));
      case 'ActGear':
      case 'CmdGear':
        return num(() => (running() ? 2 : 1));
      case 'ActProgramLine':
      case 'ActMainProgramLine': {
        // the specification types the line as String (a block number may carry letters)
        const line = (t: number) => (running() ? 10 + Math.floor(progress(t) * 480) : 0);
        if (dt === DataType.String) return (t, held) => held(path) || set(String(line(t)));
        return num(line);
      }
      case 'ActProgramBlock':
        return (t, held) => held(path) || set(running() ? `N${10 + Math.floor(progress(t) * 480)} G01 X${pos(t).toFixed(1)}` : '');
      case 'ActProgramName':
      case 'ActMainProgramName':
        return (_t, held) => held(path) || set(`O${1000 + (this.seed % 90)}_BRACKET`);
      case 'ActProgramFile':
      case 'ActMainProgramFile':
        return (_t, held) => held(path) || set(`/nc/O${1000 + (this.seed % 90)}_BRACKET.nc`);
      case 'AnglePos':
        return num((t) => (running() ? (t / 10) % 360 : 0));
      case 'PartCount':
        return num(() => this.parts);
      case 'OperatingState':
        return (_t, held) => held(path) || set({ setup: 'Setup', cycle: 'Running', idle: 'Idle', alarm: 'Alarm' }[this.phase]);
      case 'OperatingStateCode':
        return num(() => PHASE_CODE[this.phase]);
      case 'AlarmActive':
        return (_t, held) => held(path) || set(this.phase === 'alarm');
      case 'AlarmCode':
        return num(() => (this.phase === 'alarm' ? this.alarm![0] : 0));
      case 'AlarmText':
        return (_t, held) => held(path) || set(this.phase === 'alarm' ? this.alarm![1] : '');
      case 'LastCycleTime':
        return num(() => this.cycleMs / 1000);
      case 'EnergyTotal':
        return (_t, held) => held(path) || set([0, Math.floor(this.energy)], DataType.Int64);
      case 'SpindleHours':
        return num((t) => 1200 + (this.seed % 500) + (running() ? t / 3.6e6 : 0));
      default:
        // identification, flags and G/M-function lists keep the values the type gave them
        return () => undefined;
    }
  }

  tick(now: number, held: (path: string) => boolean = () => false): void {
    const dtMs = this.lastTick ? now - this.lastTick : 0;
    this.lastTick = now;
    this.energy += (dtMs / 3.6e6) * (this.phase === 'cycle' ? 14_000 : 900); // Wh
    if (now >= this.phaseEnds) this.advance(now);
    for (const u of this.updaters) u(now, held);
  }

  /** Interrupts the program with an alarm now (`--alarm-every`, tests); it clears when the phase ends. */
  raiseAlarm(now = Date.now(), which?: number): void {
    if (this.phase === 'alarm') return;
    this.enterAlarm(now, ALARMS[(which ?? this.alarmLog.length) % ALARMS.length]!);
    this.cycleStart = now;
    this.phaseEnds = now + this.cycleMs * 0.6;
    for (const u of this.updaters) u(now, () => false);
  }

  /** Ends the alarm phase at the next tick, as an operator's reset would. */
  resetAlarm(): void {
    if (this.phase === 'alarm') this.phaseEnds = 0;
  }

  private enterAlarm(now: number, alarm: (typeof ALARMS)[number]): void {
    this.phase = 'alarm';
    this.alarm = alarm;
    this.raiseCondition(now, true);
  }

  /** The condition goes active (unacknowledged, retained) with the alarm's text and severity. */
  private raiseCondition(now: number, log: boolean): void {
    const c = this.condition;
    const [code, text, severity] = this.alarm!;
    if (!c) return;
    c.getPropertyByName('AlarmIdentifier', this.nsCnc)?.setValueFromSource({ dataType: DataType.String, value: String(code) });
    c.activateAlarm();
    c.raiseNewCondition({ message: `${code} ${text}`, severity, retain: true, time: new Date(now) });
    if (log) this.alarmLog.push({ code, text, severity, raised: now });
  }

  /** Leaving the alarm phase: the operator has reset it, so it is inactive and acknowledged. */
  private clearCondition(now: number): void {
    const c = this.condition;
    const [code, text, severity] = this.alarm!;
    const entry = [...this.alarmLog].reverse().find((a) => a.code === code && a.cleared === undefined);
    if (entry) entry.cleared = now;
    if (!c) return;
    c.currentBranch().setAckedState(true);
    c.deactivateAlarm(false);
    c.raiseNewCondition({ message: `${code} ${text} cleared`, severity, retain: false, time: new Date(now) });
  }

  /** Phase changes: setup -> cycles (a batch) -> idle or alarm -> ... deterministic per machine. */
  private advance(now: number): void {
    const r = pseudoRandom(this.seed + this.parts * 31 + Math.floor(now / this.cycleMs));
    if (this.phase === 'cycle') this.parts++;
    if (this.phase === 'alarm') this.clearCondition(now);
    if (this.phase === 'setup' || this.phase === 'idle' || this.phase === 'alarm') {
      this.phase = 'cycle';
    } else if (r < 0.05) {
      this.enterAlarm(now, ALARMS[Math.floor(r * 1000) % ALARMS.length]!);
    } else if (r < 0.15) {
      this.phase = 'idle';
    } else if (r < 0.18) {
      this.phase = 'setup';
    }
    this.cycleStart = now;
    const len = { cycle: 1, idle: 0.5, alarm: 0.6, setup: 1.5 }[this.phase];
    this.phaseEnds = now + this.cycleMs * len * (0.85 + 0.3 * r);
  }
}

function pseudoRandom(n: number): number {
  const x = Math.sin(n * 12.9898) * 43758.5453;
  return x - Math.floor(x);
}

export interface CncFleetOptions {
  /** Number of servers; machines are spread over them. */
  servers: number;
  machinesPerServer: number;
  basePort: number;
  pkiDir: string;
  security?: SimSecurity;
  intervalMs?: number;
  timeScale?: number;
  /** Machine names are `${prefix}-NN` (default cnc). */
  prefix?: string;
  users?: Array<{ username: string; password: string }>;
}

export function cncMachineName(prefix: string, i: number): string {
  return `${prefix}-${String(i + 1).padStart(2, '0')}`;
}

/** Servers of CNC machines: server s on basePort + s, machines numbered across the fleet. */
export function cncFleet(o: CncFleetOptions): SimServer[] {
  const servers: SimServer[] = [];
  for (let s = 0; s < o.servers; s++) {
    const models = Array.from({ length: o.machinesPerServer }, (_v, m) => {
      const i = s * o.machinesPerServer + m;
      return new CncMachine(cncMachineName(o.prefix ?? 'cnc', i), i, { timeScale: o.timeScale });
    });
    servers.push(
      new SimServer(
        { port: o.basePort + s, pkiDir: `${o.pkiDir}/server-${o.basePort + s}`, nodesets: CNC_NODESETS, namespaceUri: CNC_NAMESPACE, security: o.security, intervalMs: o.intervalMs, users: o.users },
        models,
      ),
    );
  }
  return servers;
}
