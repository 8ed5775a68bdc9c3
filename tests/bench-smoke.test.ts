/**
 * A short run of the whole benchmark harness (`plantgate bench --smoke` sizes), so that it cannot
 * rot between full runs: every scenario starts its real servers and processes (influxd, mosquitto,
 * the gateway, the load generator, Node-RED, OPC UA simulators) and must account for every point.
 * The figures themselves mean nothing at these sizes; docs/benchmarks.md holds a full run.
 */
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runBench, type BenchResults } from '../tools/bench/run.js';
import { BEGIN, END, writeMarkdown } from '../tools/bench/report.js';
import { SHAPES } from '../tools/bench/loadgen.js';

describe('bench harness (smoke sizes)', () => {
  let r: BenchResults;

  it('runs every scenario and loses nothing', async () => {
    const logs: string[] = [];
    r = await runBench({ smoke: true, command: 'test', log: (m) => logs.push(m) });
    expect(r.ceiling).toHaveLength(2);
    for (const c of r.ceiling) expect(c.stored).toBe(c.points);
    const total = r.sizes.devices * r.sizes.messages;
    expect(r.mqtt.map((m) => `${m.via}/${m.qos}`)).toEqual(['embedded/1', 'embedded/0', 'embedded/0', 'mosquitto/1', 'mosquitto/0']);
    expect(r.mqtt.map((m) => m.heapTarget)).toEqual([undefined, undefined, '192MiB', undefined, undefined]);
    for (const m of [...r.mqtt, ...r.pipeline]) {
      expect(m.sent, m.scenario).toBe(total);
      expect(m.stored, m.scenario).toBe(total);
      expect(m.pointsPerSecond, m.scenario).toBeGreaterThan(0);
      expect(m.gateway.cpuSeconds, m.scenario).toBeGreaterThan(0);
      expect(m.gateway.peakRssMB, m.scenario).toBeGreaterThan(20);
    }
    expect(r.nodeRed.map((n) => `${n.flow}/${n.qos}`)).toEqual(['batched/1', 'batched/0', 'per-message/1']);
    for (const n of r.nodeRed) {
      expect(n.stored, `${n.flow} qos${n.qos}: ${logs.join('\n')}`).toBe(n.sent);
      expect(n.nodeRed.peakRssMB).toBeGreaterThan(20);
    }
    expect(r.floor.map((f) => f.library)).toEqual(['aedes', 'mqtt-packet', 'mqtt.js']);
    // every message taken (their CPU at these sizes can be below /proc's 10 ms tick: not asserted)
    for (const f of r.floor) expect(f.taken, f.library).toBe(total);
    for (const f of r.floor.filter((x) => x.messagesPerCore > 0)) expect(Object.keys(r.ratios)).toContain(`${f.library} alone / node-red batched qos1, per CPU-second`);
    expect(r.payloads.map((m) => m.shape)).toEqual(['cnc', 'batch10']);
    for (const m of r.payloads) {
      const shape = SHAPES[m.shape];
      const messages = r.sizes.devices * r.sizes.payloadMessages[m.shape as 'cnc' | 'batch10'];
      expect(m.messages, m.scenario).toBe(messages);
      expect(m.stored, m.scenario).toBe(messages * shape.points);
      // every field value of every point arrived, counted in InfluxDB
      expect(m.fieldValues, m.scenario).toBe(messages * shape.points * shape.fields);
    }
    expect(r.latency!.probes).toBeGreaterThan(20);
    expect(r.latency!.seen).toBe(r.latency!.probes);
    expect(r.latency!.stored).toBe(r.latency!.sent);
    expect(r.latency!.p50Ms).toBeLessThanOrEqual(r.latency!.p99Ms);
    expect(r.outage!.lost).toBe(0);
    expect(r.fleet.map((f) => f.gateways)).toEqual([1, 2, 3]);
    for (const f of r.fleet) expect(f.stored, `fleet of ${f.gateways}`).toBe(f.sent);
    expect(r.outage!.backlogLines).toBeGreaterThan(0); // points really waited for InfluxDB
    expect(r.outage!.drainMultiple).toBeGreaterThan(0);
    expect(r.opcua.map((o) => o.intervalMs)).toEqual([1000, 1000, 1000, 100]);
    expect(r.opcua.map((o) => o.heapTarget)).toEqual([undefined, '200MiB', undefined, undefined]);
    expect(r.opcua[2]!.items).toBeGreaterThan(r.opcua[0]!.items);
    for (const o of r.opcua) {
      expect(o.itemsFailed).toBe(0);
      expect(o.itemsSilent).toBe(0);
      expect(o.valuesPerSecond).toBeGreaterThan(o.expectedValuesPerSecond * 0.5);
      expect(o.linesWritten).toBeGreaterThan(0);
    }
    expect(Object.keys(r.ratios)).toEqual(expect.arrayContaining(['embedded-qos1 / ceiling', 'mosquitto-qos1 / node-red batched qos1', 'embedded-qos1 / node-red batched qos1, per CPU-second', 'outage peak RSS / RSS before']));
  }, 600_000);

  it('writes the tables between the markers and keeps the prose around them', () => {
    const dir = mkdtempSync(join(tmpdir(), 'plantgate-bench-doc-'));
    try {
      const file = join(dir, 'benchmarks.md');
      writeMarkdown(file, r);
      writeMarkdown(file, r); // a second run replaces the block, it does not add one
      const doc = readFileSync(file, 'utf8');
      expect(doc.split(BEGIN)).toHaveLength(2);
      expect(doc.split(END)).toHaveLength(2);
      expect(doc).toMatch(/\| plantgate, embedded broker, QoS 1 \| [\d,]+ \|/);
      expect(doc).toMatch(/Node-RED batched, via mosquitto, QoS 1/);
      expect(doc).toMatch(/### OPC UA scale/);
      expect(doc).toMatch(/\| plantgate, embedded broker, QoS 0, `memory.heapTarget: 192MiB` \| [\d,]+ \|/);
      expect(doc).toMatch(/\| a CNC status message: .* \| [\d,]+ \|/);
      expect(doc).toMatch(/\| aedes, as the embedded broker \| [\d,]+ \|/);
      expect(doc).toMatch(/\*\*Machine\*\*: cpu .* cores \d+/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
