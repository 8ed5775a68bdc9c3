/**
 * The one normalised record that flows through plantgate (README, Architecture).
 *
 * Field values carry their InfluxDB type in their JS type:
 *   number  -> float, bigint -> integer (`i` suffix), boolean -> boolean, string -> string.
 * JSON numbers default to float so that one field never flips between integer and float
 * (InfluxDB rejects such a type conflict for the rest of the shard).
 */
/**
 * An unsigned 64-bit integer (OPC UA and Sparkplug UInt64): line protocol `u` where the sink has
 * the type (the v2 API), an integer where it has not (InfluxDB 1.x; values above the int64
 * maximum are refused there, see the guard). Its own type so a field never flips between the two.
 */
export class Unsigned {
  constructor(readonly value: bigint) {}
  toJSON(): string {
    return this.value.toString();
  }
  toString(): string {
    return this.value.toString();
  }
}

export type FieldValue = number | bigint | boolean | string | Unsigned;

export type Quality = 'good' | 'uncertain' | 'bad';

export interface Point {
  measurement: string;
  tags: Record<string, string>;
  fields: Record<string, FieldValue>;
  /** Source timestamp, epoch milliseconds (the point's time in InfluxDB). */
  time: number;
  /** When the gateway received the value, epoch milliseconds. */
  receivedAt: number;
  quality: Quality;
  /** The original OPC UA status code or Sparkplug flag, kept for diagnosis. */
  qualityCode?: string;
  /** Which source produced it (component name), for per-source counters and guards. */
  source: string;
  /** Who sent it, as the source knows it: binds telemetry to equipment in the registry. */
  origin?: Origin;
  /** The line-protocol series key once built (`seriesKeyOf`): the cardinality limit's and the line's. */
  seriesKey?: string;
}

export interface Origin {
  /** MQTT client id of the publisher (embedded broker only: external brokers do not tell). */
  clientId?: string;
  topic?: string;
  /** OPC UA endpoint name. */
  endpoint?: string;
}
