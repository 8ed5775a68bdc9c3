/**
 * The one normalised record that flows through plantgate (DESIGN §1).
 *
 * Field values carry their InfluxDB type in their JS type:
 *   number  -> float, bigint -> integer (`i` suffix), boolean -> boolean, string -> string.
 * JSON numbers default to float so that one field never flips between integer and float
 * (InfluxDB rejects such a type conflict for the rest of the shard).
 */
export type FieldValue = number | bigint | boolean | string;

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
}

export interface Origin {
  /** MQTT client id of the publisher (embedded broker only: external brokers do not tell). */
  clientId?: string;
  topic?: string;
  /** OPC UA endpoint name. */
  endpoint?: string;
}
