/**
 * Simulated MQTT devices: CNC machines publishing JSON telemetry the way a small edge agent would,
 * on `factory/{site}/{line}/{machine}/telemetry`, one connection per device. Values move like a
 * machine going through cycles (spindle up, cutting, idle), and every message carries `ts`.
 * Used by `plantgate demo`, `plantgate sim devices` and the tests.
 */
import mqtt, { type MqttClient } from 'mqtt';

export interface DeviceFleetOptions {
  url: string;
  devices: number;
  /** Milliseconds between messages of one device. */
  intervalMs: number;
  qos: 0 | 1 | 2;
  site?: string;
  lines?: number;
  /** First machine number (machine ids are `cnc-NNN`). */
  first?: number;
  username?: string;
  password?: string;
}

export interface DeviceFleet {
  sent(): number;
  stop(): Promise<void>;
}

export function machineId(i: number): string {
  return `cnc-${String(i + 1).padStart(3, '0')}`;
}

/** One telemetry message of machine `i` at time `t` (epoch ms): deterministic, so tests can check it. */
export function telemetry(i: number, t: number, seq: number) {
  const cycle = ((t / 1000 + i * 7) % 60) / 60; // a 60 s machining cycle, offset per machine
  const cutting = cycle > 0.1 && cycle < 0.8;
  return {
    ts: t,
    seq,
    spindle_speed: cutting ? 8000 + 400 * Math.sin(cycle * 20) : cycle <= 0.1 ? 8000 * cycle * 10 : 0,
    spindle_load: cutting ? 35 + 10 * Math.sin(cycle * 31) : 2,
    feed_override: 100,
    execution: cutting ? 'ACTIVE' : 'READY',
    part_count: Math.floor(t / 60000) + i,
  };
}

export async function startDeviceFleet(o: DeviceFleetOptions): Promise<DeviceFleet> {
  const site = o.site ?? 'shenyang';
  const lines = o.lines ?? 4;
  let sent = 0;
  let stopped = false;
  const clients: MqttClient[] = [];
  const timers: NodeJS.Timeout[] = [];
  for (let k = 0; k < o.devices; k++) {
    const i = (o.first ?? 0) + k;
    const id = machineId(i);
    const client = mqtt.connect(o.url, { clientId: `sim-${site}-${id}`, username: o.username, password: o.password, reconnectPeriod: 1000 });
    client.on('error', () => undefined); // reconnects by itself; the gateway's status shows the outage
    clients.push(client);
    const topic = `factory/${site}/line-${(i % lines) + 1}/${id}/telemetry`;
    let seq = 0;
    const tick = () => {
      if (stopped || !client.connected) return;
      client.publish(topic, JSON.stringify(telemetry(i, Date.now(), seq++)), { qos: o.qos }, (err) => {
        if (!err) sent++;
      });
    };
    // spread devices over the interval so the load is even
    timers.push(setTimeout(() => timers.push(setInterval(tick, o.intervalMs)), Math.floor((o.intervalMs * k) / o.devices)));
  }
  return {
    sent: () => sent,
    async stop() {
      if (stopped) return; // safe twice, like every component's stop
      stopped = true;
      for (const t of timers) clearInterval(t);
      await Promise.all(clients.map((c) => c.endAsync(false).catch(() => c.end(true))));
    },
  };
}
