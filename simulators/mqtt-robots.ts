/**
 * Simulated industrial robots publishing JSON over MQTT, one connection each, on
 * `factory/{site}/{line}/{robot}/robot`: joint temperatures, cycle count, operating mode
 * (AUTO most of the time, MANUAL during teach-ins), protective and emergency stops. Gives the
 * robot counts and activity of the indicator engine real input.
 */
import mqtt, { type MqttClient } from 'mqtt';

export interface RobotFleetOptions {
  url: string;
  robots: number;
  intervalMs: number;
  site?: string;
  /** First robot number (robot ids are `robot-NNN`). */
  first?: number;
  qos?: 0 | 1;
  /** Fraction of time a robot spends in MANUAL mode or stopped (default 0.1). */
  disturbance?: number;
  username?: string;
  password?: string;
}

export interface RobotFleet {
  sent(): number;
  /** Latch (or release) the emergency stop of robot i. */
  setEmergencyStop(i: number, on: boolean): void;
  stop(): Promise<void>;
}

export function robotId(i: number): string {
  return `robot-${String(i + 1).padStart(3, '0')}`;
}

export function robotTelemetry(i: number, t: number, cycles: number, estop: boolean, disturbance: number) {
  const phase = ((t / 1000 + i * 13) % 600) / 600; // a 10-minute rhythm per robot
  const manual = phase < disturbance / 2;
  const protective = !manual && phase > 1 - disturbance / 2;
  const joints: Record<string, number> = {};
  for (let j = 1; j <= 6; j++) joints[`j${j}_temp`] = +(38 + j * 2 + 6 * Math.sin(t / 60000 + i + j)).toFixed(2);
  return { ts: t, mode: manual ? 'MANUAL' : 'AUTO', cycle_count: cycles, protective_stop: protective, emergency_stop: estop, ...joints, program: `P${100 + (i % 5)}` };
}

export async function startRobotFleet(o: RobotFleetOptions): Promise<RobotFleet> {
  const site = o.site ?? 'dalian';
  const first = o.first ?? 0;
  const disturbance = o.disturbance ?? 0.1;
  const estop = new Set<number>();
  let sent = 0;
  let stopped = false;
  const clients: MqttClient[] = [];
  const timers: NodeJS.Timeout[] = [];
  for (let k = 0; k < o.robots; k++) {
    const i = first + k;
    const id = robotId(i);
    const client = mqtt.connect(o.url, { clientId: `sim-${site}-${id}`, username: o.username, password: o.password, reconnectPeriod: 1000 });
    client.on('error', () => undefined);
    clients.push(client);
    const topic = `factory/${site}/cell-${(i % 3) + 1}/${id}/robot`;
    let cycles = 1000 * i;
    const tick = () => {
      if (stopped || !client.connected) return;
      cycles++;
      client.publish(topic, JSON.stringify(robotTelemetry(i, Date.now(), cycles, estop.has(i), disturbance)), { qos: o.qos ?? 1 }, (err) => {
        if (!err) sent++;
      });
    };
    timers.push(setTimeout(() => timers.push(setInterval(tick, o.intervalMs)), Math.floor((o.intervalMs * k) / o.robots)));
  }
  return {
    sent: () => sent,
    setEmergencyStop(i, on) {
      if (on) estop.add(i);
      else estop.delete(i);
    },
    async stop() {
      if (stopped) return; // safe twice, like every component's stop
      stopped = true;
      for (const t of timers) clearInterval(t);
      await Promise.all(clients.map((c) => c.endAsync(false).catch(() => c.end(true))));
    },
  };
}
