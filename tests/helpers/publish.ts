/** Publishes numbered QoS 1 telemetry from many devices, each on its own series, and waits for every PUBACK. */
import mqtt from 'mqtt';

export const BASE_TS = Date.UTC(2026, 0, 1, 8, 0, 0);

export function message(device: number, seq: number) {
  return { ts: BASE_TS + seq * 1000, seq, temperature: 20 + device + seq / 1000, running: seq % 2 === 0, program: `O${1000 + device}` };
}

export async function publishFleet(url: string, devices: number, perDevice: number, opts: { qos?: 0 | 1 | 2; prefix?: string; firstDevice?: number; seqBase?: number } = {}): Promise<number> {
  const qos = opts.qos ?? 1;
  const prefix = opts.prefix ?? 'pub';
  let acked = 0;
  await Promise.all(
    Array.from({ length: devices }, async (_, i) => {
      const d = i + (opts.firstDevice ?? 0);
      const client = await mqtt.connectAsync(url, { clientId: `${prefix}-${d}`, reconnectPeriod: 0 });
      const topic = `factory/shenyang/line-${d % 4}/dev-${String(d).padStart(3, '0')}/telemetry`;
      for (let s = 0; s < perDevice; s += 20) {
        // 20 messages in flight per device
        await Promise.all(
          Array.from({ length: Math.min(20, perDevice - s) }, (_, k) => client.publishAsync(topic, JSON.stringify(message(d, (opts.seqBase ?? 0) + s + k)), { qos }).then(() => acked++)),
        );
      }
      await client.endAsync();
    }),
  );
  return acked;
}
