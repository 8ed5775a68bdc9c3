/**
 * The status details of each component type, as the components produce them: the status API,
 * `/readyz` and `/metrics` read them through these types instead of through string keys of a
 * bag, so a renamed or retyped field is a compile error here, not a silently missing metric.
 */
import type { DiskBuffer } from '../buffer/disk-buffer.js';
import type { ComponentStatus } from '../core/component.js';
import type { IndicatorEngine } from '../indicators/engine.js';
import type { CardinalityLimit } from '../processors/cardinality/cardinality.js';
import type { InfluxSink } from '../sinks/influxdb/influx-sink.js';
import type { BrokerClient } from '../sources/mqtt/broker-client.js';
import type { EmbeddedBroker } from '../sources/mqtt/embedded-broker.js';
import type { OpcuaEndpointSource } from '../sources/opcua/opcua-source.js';
import type { SparkplugHost } from '../sources/sparkplug/host.js';

export interface DetailsByType {
  'mqtt-broker': ReturnType<EmbeddedBroker['details']>;
  'mqtt-client': ReturnType<BrokerClient['details']>;
  opcua: ReturnType<OpcuaEndpointSource['details']>;
  'sparkplug-host': ReturnType<SparkplugHost['details']>;
  cardinality: ReturnType<CardinalityLimit['details']>;
  'indicator-engine': ReturnType<IndicatorEngine['details']>;
}

export type TypedStatus<T extends keyof DetailsByType> = ComponentStatus & { type: T; details: DetailsByType[T] };

/** Every buffer and every sink is of one class today (the disk buffer, the InfluxDB sink). */
export interface DetailsByKind {
  buffer: ReturnType<DiskBuffer['details']>;
  sink: ReturnType<InfluxSink['details']>;
}

export type KindStatus<K extends keyof DetailsByKind> = ComponentStatus & { kind: K; details: DetailsByKind[K] };

export function ofKind<K extends keyof DetailsByKind>(components: ComponentStatus[], kind: K): Array<KindStatus<K>> {
  return components.filter((c): c is KindStatus<K> => c.kind === kind && c.details !== undefined);
}

/** The components of one type, with their details typed (a component without details is left out). */
export function ofType<T extends keyof DetailsByType>(components: ComponentStatus[], type: T): Array<TypedStatus<T>> {
  return components.filter((c): c is TypedStatus<T> => c.type === type && c.details !== undefined);
}
