/**
 * Simulated PLCs on a real node-opcua server: a conveyor, a hydraulic press, a tank and the CPU's
 * diagnostics, laid out like a PLC's exposed data blocks (`nsu=urn:plantgate:sim:plc;s=PLC_01.Press.Pressure`)
 * and placed in Machinery's Machines folder. It deliberately exercises every scalar data type a
 * PLC exposes (Boolean, Byte, Int16, UInt16, Int32, UInt32, Int64, UInt64, Float, Double, String,
 * DateTime) and arrays, so type mapping is tested against a real server.
 */
import { type AddressSpace, ConditionInfo, DataType, type Namespace, nodesets, StatusCodes, type UAVariable, Variant, VariantArrayType } from 'node-opcua';
import { collectVariables, type SimModel, SimServer, type SimSecurity } from './opcua-server.js';

export const PLC_NAMESPACE = 'urn:plantgate:sim:plc';
const MACHINERY_URI = 'http://opcfoundation.org/UA/Machinery/';

type Gen = (t: number, p: PlcMachine) => unknown;
interface Tag {
  path: string;
  type: DataType;
  array?: number;
  gen: Gen;
}

const wave = (t: number, period: number, phase = 0) => Math.sin((2 * Math.PI * t) / period + phase);

/** The PLC's tag list: path below the PLC object, data type, how it moves. */
const TAGS: Tag[] = [
  { path: 'Conveyor/Running', type: DataType.Boolean, gen: (t, p) => wave(t, 60_000, p.phase) > -0.8 },
  { path: 'Conveyor/SpeedSetpoint', type: DataType.Float, gen: () => 1.2 },
  { path: 'Conveyor/Speed', type: DataType.Float, gen: (t, p) => (wave(t, 60_000, p.phase) > -0.8 ? 1.2 + 0.03 * wave(t, 3000) : 0) },
  { path: 'Conveyor/MotorCurrent', type: DataType.Float, gen: (t, p) => (wave(t, 60_000, p.phase) > -0.8 ? 4.1 + 0.4 * wave(t, 2100) : 0.05) },
  { path: 'Conveyor/ItemCount', type: DataType.UInt32, gen: (t) => Math.floor(t / 2000) % 4_000_000_000 },
  { path: 'Press/State', type: DataType.Int16, gen: (t) => Math.floor(t / 5000) % 4 },
  { path: 'Press/Pressure', type: DataType.Double, gen: (t) => 180 + 40 * Math.max(0, wave(t, 5000)) },
  { path: 'Press/Stroke', type: DataType.Int32, gen: (t) => Math.round(300 * Math.abs(wave(t, 5000))) },
  { path: 'Press/Temperature', type: DataType.Float, gen: (t) => 48 + 3 * wave(t, 120_000) },
  { path: 'Press/StrokeCount', type: DataType.UInt64, gen: (t) => [0, Math.floor(t / 5000) >>> 0] },
  { path: 'Tank/Level', type: DataType.Double, gen: (t, p) => p.levelOverride ?? 60 + 25 * wave(t, 90_000) },
  { path: 'Tank/InletValve', type: DataType.Boolean, gen: (t) => wave(t, 90_000) < 0 },
  { path: 'Tank/OutletValve', type: DataType.Boolean, gen: (t) => wave(t, 90_000) > 0.5 },
  { path: 'Tank/PumpSpeed', type: DataType.UInt16, gen: (t) => Math.round(1450 + 20 * wave(t, 7000)) },
  { path: 'Energy/ActiveEnergy', type: DataType.Int64, gen: (t, p) => [0, Math.floor(p.seed * 1000 + t / 1000) >>> 0] },
  { path: 'Energy/ActivePower', type: DataType.Double, gen: (t) => 22 + 6 * wave(t, 20_000) },
  { path: 'Diagnostics/CpuLoad', type: DataType.Byte, gen: (t) => Math.round(35 + 10 * wave(t, 11_000)) },
  { path: 'Diagnostics/CycleTimeUs', type: DataType.UInt16, gen: (t) => Math.round(4200 + 300 * wave(t, 1700)) },
  { path: 'Diagnostics/Firmware', type: DataType.String, gen: () => 'V4.5.2' },
  { path: 'Diagnostics/Running', type: DataType.Boolean, gen: () => true },
  { path: 'Diagnostics/StartTime', type: DataType.DateTime, gen: (_t, p) => p.startedAt },
  { path: 'Diagnostics/AnalogInputs', type: DataType.Float, array: 8, gen: (t) => Float32Array.from({ length: 8 }, (_v, i) => 4 + 16 * (0.5 + 0.5 * wave(t, 10_000 + i * 1000))) },
  { path: 'Diagnostics/DigitalInputs', type: DataType.Boolean, array: 16, gen: (t) => Array.from({ length: 16 }, (_v, i) => Math.floor(t / (1000 * (i + 1))) % 2 === 0) },
  { path: 'Diagnostics/Temperature', type: DataType.SByte, gen: (t) => Math.round(41 + 4 * wave(t, 300_000)) },
  // one more per tick: the server's own sequence, against which a test counts values lost
  { path: 'Diagnostics/Sequence', type: DataType.UInt32, gen: (_t, p) => p.sequence },
];

export class PlcMachine implements SimModel {
  private vars = new Map<string, UAVariable>();
  readonly startedAt = new Date();
  readonly phase: number;
  /** Ticks since the server started this model (Diagnostics/Sequence). */
  sequence = 0;
  /** Holds the tank level (tests, `--alarm-every`): beyond the limits the level alarm goes active. */
  levelOverride?: number;
  /** The level alarm's transitions as events, for tests to count against. */
  readonly alarmLog: Array<{ state: string; active: boolean; severity: number; message: string; at: number }> = [];

  constructor(readonly name: string, readonly seed: number) {
    this.phase = seed * 1.7;
  }

  variables(): Map<string, UAVariable> {
    return this.vars;
  }

  build(addressSpace: AddressSpace, ns: Namespace): void {
    const nsMachinery = addressSpace.getNamespaceIndex(MACHINERY_URI);
    const machines = nsMachinery >= 0 ? addressSpace.findNode(`ns=${nsMachinery};i=1001`) : null;
    // its alarms reach a client subscribed to the Server object's events
    const root = ns.addObject({ browseName: this.name, nodeId: `s=${this.name}`, organizedBy: machines ?? addressSpace.rootFolder.objects, eventSourceOf: addressSpace.rootFolder.objects.server });
    const folders = new Map<string, ReturnType<Namespace['addObject']>>();
    for (const tag of TAGS) {
      const [folder, name] = tag.path.split('/') as [string, string];
      let f = folders.get(folder);
      if (!f) {
        f = ns.addObject({ browseName: folder, nodeId: `s=${this.name}.${folder}`, componentOf: root, ...(folder === 'Tank' ? { eventSourceOf: root } : {}) });
        folders.set(folder, f);
      }
      const arrayType = tag.array ? VariantArrayType.Array : VariantArrayType.Scalar;
      ns.addVariable({
        browseName: name,
        nodeId: `s=${this.name}.${folder}.${name}`,
        componentOf: f,
        dataType: DataType[tag.type],
        // every change can be reported (samplingInterval 0): the tags change only on a tick
        minimumSamplingInterval: 0,
        valueRank: tag.array ? 1 : -1,
        arrayDimensions: tag.array ? [tag.array] : undefined,
        value: new Variant({ dataType: tag.type, arrayType, value: tag.gen(Date.now(), this) }),
      });
    }
    this.vars = collectVariables(root, addressSpace);
    this.addLevelAlarm(ns, folders.get('Tank')!);
  }

  /**
   * The tank's limit alarm, of Part 9's ExclusiveLevelAlarmType: node-opcua evaluates it on every
   * change of Tank/Level (HighHigh 90, High 80, Low 40, LowLow 30; the level swings 35-85).
   */
  private addLevelAlarm(ns: Namespace, tank: ReturnType<Namespace['addObject']>): void {
    const alarm = ns.instantiateExclusiveLimitAlarm('ExclusiveLevelAlarmType', {
      browseName: 'LevelAlarm',
      nodeId: `s=${this.name}.Tank.LevelAlarm`,
      componentOf: tank,
      conditionSource: tank,
      conditionName: 'TankLevel',
      inputNode: this.vars.get('Tank/Level')!,
      highHighLimit: 90,
      highLimit: 80,
      lowLimit: 40,
      lowLowLimit: 30,
    });
    alarm.sourceName.setValueFromSource({ dataType: DataType.String, value: `${this.name}.Tank` });
    const SEVERITY: Record<string, number> = { HighHigh: 900, High: 700, Low: 500, LowLow: 800 };
    alarm.calculateConditionInfo = (state, isActive, value) => {
      const severity = isActive && state ? (SEVERITY[state] ?? 500) : 100;
      const message = isActive ? `Tank level ${Number(value).toFixed(1)} % (${state})` : `Tank level ${Number(value).toFixed(1)} % back to normal`;
      this.alarmLog.push({ state: state ?? 'Normal', active: isActive, severity, message, at: Date.now() });
      return new ConditionInfo({ message, severity, quality: StatusCodes.Good, retain: isActive });
    };
  }

  tick(now: number, held: (path: string) => boolean): void {
    this.sequence++;
    for (const tag of TAGS) {
      if (held(tag.path)) continue;
      const v = this.vars.get(tag.path);
      v?.setValueFromSource(new Variant({ dataType: tag.type, arrayType: tag.array ? VariantArrayType.Array : VariantArrayType.Scalar, value: tag.gen(now, this) }), StatusCodes.Good);
    }
  }
}

export interface PlcFleetOptions {
  servers: number;
  plcsPerServer: number;
  basePort: number;
  pkiDir: string;
  security?: SimSecurity;
  intervalMs?: number;
  /** Keep every tag's history for HistoryRead (see SimServer). */
  historize?: boolean;
}

export function plcName(i: number): string {
  return `PLC_${String(i + 1).padStart(2, '0')}`;
}

export function plcFleet(o: PlcFleetOptions): SimServer[] {
  const servers: SimServer[] = [];
  for (let s = 0; s < o.servers; s++) {
    const models = Array.from({ length: o.plcsPerServer }, (_v, m) => new PlcMachine(plcName(s * o.plcsPerServer + m), s * o.plcsPerServer + m));
    servers.push(
      new SimServer(
        {
          port: o.basePort + s,
          pkiDir: `${o.pkiDir}/server-${o.basePort + s}`,
          nodesets: [nodesets.standard, nodesets.di, nodesets.ia, nodesets.machinery],
          namespaceUri: PLC_NAMESPACE,
          security: o.security,
          intervalMs: o.intervalMs,
          historize: o.historize,
        },
        models,
      ),
    );
  }
  return servers;
}

export const PLC_TAG_COUNT = TAGS.length;
