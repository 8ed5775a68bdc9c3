/**
 * The fleet's view of the equipment, for `indicators.scope: fleet`. Every gateway of a fleet
 * writes, into the InfluxDB they share, one presence record per registry equipment it heard from
 * per interval (measurement `<indicators.measurement>_presence`, tags `equipment` and `instance`,
 * the point's time being the last valid data, fields `lastValidAt`, and for robots `mode` and
 * `stopLatched`). Any member, or `plantgate indicators` with no sources at all, reads them back
 * with InfluxQL over the window, so the indicators count every plant however the devices are
 * divided among the gateways.
 *
 * Reads go through the `influx` package: InfluxDB 1.x's `/query`, and the v1-compatible `/query`
 * of InfluxDB 2 (a DBRP mapping for the bucket, the token as password) and InfluxDB 3 (database =
 * bucket). A read that fails keeps the last view and is reported; the values then rest on what is
 * older, never on nothing.
 */
import { InfluxDB } from 'influx';
import type { InfluxConfig } from '../sinks/influxdb/config.js';

export interface Presence {
  lastValidAt: number;
  mode?: string;
  stopLatched?: boolean;
}

export interface FleetStatus {
  /** Gateways whose presence records fall in the window. */
  contributors: string[];
  lastReadAt?: number;
  /** Equipment the last read found. */
  equipment: number;
  lastError?: { at: number; message: string };
}

/** Where the records are read from: the sink's InfluxDB, database or (v2) bucket. */
export function fleetClient(influx: InfluxConfig): InfluxDB {
  const url = new URL(influx.url);
  const v1 = influx.api === 'v1';
  return new InfluxDB({
    host: url.hostname,
    port: Number(url.port) || (url.protocol === 'https:' ? 443 : 80),
    protocol: url.protocol === 'https:' ? 'https' : 'http',
    path: url.pathname.replace(/\/$/, ''),
    database: v1 ? influx.database : influx.bucket,
    // InfluxDB 2's v1-compatible API takes the token as the password of any user
    username: v1 ? influx.username : 'plantgate',
    password: v1 ? influx.password : influx.token,
    options: influx.tls ? { ca: influx.tls.ca, rejectUnauthorized: influx.tls.rejectUnauthorized } : undefined,
  });
}

export class FleetView {
  private view = new Map<string, Presence>();
  readonly status: FleetStatus = { contributors: [], equipment: 0 };

  constructor(
    private readonly client: InfluxDB,
    readonly measurement: string,
  ) {}

  get(id: string): Presence | undefined {
    return this.view.get(id);
  }

  /** Reads the records of the window back. Never throws: a failed read keeps the last view. */
  async refresh(since: number): Promise<void> {
    const m = `"${this.measurement.replace(/"/g, '\\"')}"`;
    try {
      const [latest, instances] = (await this.client.query(
        [
          `SELECT last("lastValidAt") AS lastValidAt, last("mode") AS mode, last("stopLatched") AS stopLatched FROM ${m} WHERE time >= ${since}ms GROUP BY "equipment"`,
          `SELECT count("lastValidAt") FROM ${m} WHERE time >= ${since}ms GROUP BY "instance"`,
        ],
        { precision: 'ms' },
      )) as unknown as [Array<{ equipment: string; lastValidAt: number; mode: string | null; stopLatched: boolean | null }>, Array<{ instance: string }>];
      const view = new Map<string, Presence>();
      for (const r of latest) {
        const p: Presence = { lastValidAt: Number(r.lastValidAt) };
        if (r.mode !== null && r.mode !== undefined) p.mode = r.mode;
        if (r.stopLatched !== null && r.stopLatched !== undefined) p.stopLatched = r.stopLatched;
        view.set(r.equipment, p);
      }
      this.view = view;
      this.status.contributors = instances.map((r) => r.instance).sort();
      this.status.equipment = view.size;
      this.status.lastReadAt = Date.now();
      this.status.lastError = undefined;
    } catch (err) {
      this.status.lastError = { at: Date.now(), message: (err as Error).message };
    }
  }
}
