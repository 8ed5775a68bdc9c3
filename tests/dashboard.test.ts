/**
 * Issue 6, done-when: a real headless Chromium (Debian's, driven by playwright-core) on the live
 * dashboard of a gateway with simulators: every source is shown, states change on screen when a
 * simulator or broker goes away and comes back, rates move, indicators appear; a screenshot is
 * saved under test-output/. Plus /api/status, /healthz, /readyz (with a 503 case) and /metrics
 * read with a Prometheus text parser.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDeviceFleet, type DeviceFleet } from '../simulators/mqtt-devices.js';
import { startRobotFleet, type RobotFleet } from '../simulators/mqtt-robots.js';
import { connect as netConnect, type Socket } from 'node:net';
import { get as httpGet } from 'node:http';
import { CHROMIUM } from './helpers/browser.js';
import { testGateway } from './helpers/gateway.js';
import { logCapture } from './helpers/logs.js';
import { eventually, influxd, mosquitto } from './helpers/servers.js';

const SEEDS = join(import.meta.dirname, '..', 'seeds');

describe('operators live view', () => {
  let db: Awaited<ReturnType<typeof influxd>>;
  let broker: Awaited<ReturnType<typeof mosquitto>>;
  let gw: Awaited<ReturnType<typeof testGateway>>;
  let machines: DeviceFleet;
  let robots: RobotFleet;
  let browser: Browser;
  let page: Page;
  let base: string;
  const { logs, stream } = logCapture();

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium (.ci/run does this)`);
    db = await influxd();
    broker = await mosquitto();
    gw = await testGateway(
      `
http: { listen: 127.0.0.1:0 }
influx: { url: ${db.url}, database: dash, flushInterval: 200ms, retryMin: 100ms, retryMax: 1s }
mqtt:
  broker: { listen: 127.0.0.1:0, allowAnonymous: true, maxConnectionsPerSecond: 2000 }
  clients:
    - { name: plant-broker, url: "${broker.url}", clientId: dash-test, reconnectPeriod: 300ms }
  routes:
    - { topic: "factory/{site}/{line}/{machine}/telemetry", measurement: cnc }
    - { topic: "factory/{site}/{cell}/{robot}/robot", measurement: robot }
buffer: { dir: "\${DATA}/buffer" }
indicators: { registry: ${SEEDS}/liaoning-demo-registry.yaml, targets: ${SEEDS}/liaoning-2023-targets.yaml, window: 3s, publishInterval: 1s }
`,
      {},
      { logTo: stream },
    );
    base = `http://127.0.0.1:${gw.http.port}`;
    const url = `mqtt://127.0.0.1:${gw.broker!.port}`;
    machines = await startDeviceFleet({ url, site: 'sy-machine-tool', devices: 8, intervalMs: 200, qos: 1 });
    robots = await startRobotFleet({ url, site: 'dl-auto', robots: 6, intervalMs: 200, disturbance: 0 });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    page = await browser.newPage({ viewport: { width: 1440, height: 1400 } });
  });
  afterAll(async () => {
    await browser?.close();
    await machines?.stop();
    await robots?.stop();
    await gw?.cleanup();
    await broker?.stop();
    broker?.remove();
    await db?.stop();
    db?.remove();
  });

  const cell = (source: string, col: number) => page.locator(`#sources tr[data-source="${source}"] td`).nth(col);

  it('shows every source, live rates, state changes and the indicators in a real browser', async () => {
    await page.goto(base);
    await expect.poll(() => page.locator('#sources tbody tr').count(), { timeout: 10_000 }).toBe(3);
    await expect.poll(() => page.locator('#sources tbody tr td:first-child').allTextContents()).toEqual(['mqtt-broker', 'plant-broker', 'indicators']);
    await expect.poll(() => cell('plant-broker', 2).textContent(), { timeout: 10_000 }).toBe('running');
    // rates move: 14 devices at 5 msg/s
    await expect.poll(async () => Number((await cell('mqtt-broker', 4).textContent())!.replace(/,/g, '')), { timeout: 10_000 }).toBeGreaterThan(20);
    await expect.poll(() => cell('mqtt-broker', 8).textContent(), { timeout: 10_000 }).toMatch(/14 device\(s\) connected/);
    // indicators appear, against their targets
    await expect.poll(() => page.locator('#indicators tr[data-indicator="nc_rate"][data-scope="region"] .value').textContent(), { timeout: 10_000 }).toMatch(/^\d+\.\d%$/);
    await expect.poll(() => page.locator('#indicators tr[data-indicator="robot_density"][data-scope="region"] .value').textContent()).not.toBe('0.0');
    await expect.poll(async () => (await (await fetch(`${base}/api/history`)).json() as unknown[]).length, { timeout: 15_000 }).toBeGreaterThan(8); // charts with some history
    // the whole state at a glance, and the indicators as bars against their targets
    await expect.poll(() => page.locator('#g-sources .v').textContent()).toBe('2/2');
    expect(Number((await page.locator('#g-in .v').textContent())!.replace(/,/g, ''))).toBeGreaterThan(0);
    expect(await page.locator('#g-sink .v').textContent()).toBe('running');
    expect(await page.locator('#g-problems .v').textContent()).toBe('0');
    await expect.poll(() => page.locator('#ind-bars .bar[data-indicator="nc_rate"][data-scope="region"]').count()).toBe(1);
    expect(await page.locator('#ind-bars .bar[data-indicator="nc_rate"][data-scope="region"] .fill').evaluate((el) => (el as HTMLElement).style.width)).toMatch(/%$/);
    expect(await page.locator('main > details').count()).toBeGreaterThanOrEqual(5); // sections fold
    mkdirSync('test-output', { recursive: true });
    await page.screenshot({ path: 'test-output/dashboard.png', fullPage: true });

    // the simulated machines go away: the broker shows fewer devices, the rate falls
    await machines.stop();
    await expect.poll(() => cell('mqtt-broker', 8).textContent(), { timeout: 10_000 }).toMatch(/6 device\(s\) connected/);
    // and come back
    machines = await startDeviceFleet({ url: `mqtt://127.0.0.1:${gw.broker!.port}`, site: 'sy-machine-tool', devices: 8, intervalMs: 200, qos: 1 });
    await expect.poll(() => cell('mqtt-broker', 8).textContent(), { timeout: 10_000 }).toMatch(/14 device\(s\) connected/);

    // the plant broker goes away: its state changes on screen, then recovers
    await broker.stop();
    await expect.poll(() => cell('plant-broker', 2).textContent(), { timeout: 10_000 }).toBe('reconnecting');
    await expect.poll(() => page.locator('#health').textContent()).toMatch(/not ready: source plant-broker is not connected/);
    const r = await fetch(`${base}/readyz`);
    expect(r.status).toBe(503);
    expect(((await r.json()) as { reasons: string[] }).reasons.join()).toMatch(/plant-broker/);
    await broker.restart();
    await expect.poll(() => cell('plant-broker', 2).textContent(), { timeout: 15_000 }).toBe('running');
    await expect.poll(() => page.locator('#health').textContent()).toBe('ready');
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
  });

  it('serves /healthz, /api/status and the dead-letter download', async () => {
    expect(await (await fetch(`${base}/healthz`)).json()).toEqual({ status: 'ok' });
    const st = (await (await fetch(`${base}/api/status`)).json()) as { components: { name: string; kind: string; counters: { received: number } }[]; rates: Record<string, number>; indicators: unknown };
    expect(st.components.map((c) => c.kind).sort()).toEqual(['buffer', 'processor', 'processor', 'sink', 'source', 'source', 'source']);
    expect(st.components.find((c) => c.name === 'mqtt-broker')!.counters.received).toBeGreaterThan(0);
    expect(st.indicators).toBeDefined();
    const dl = await fetch(`${base}/api/deadletters`);
    expect(dl.headers.get('content-disposition')).toMatch(/attachment/);
    // nothing changes the gateway without credentials: POST (admin actions) needs http.auth, other methods are refused
    expect((await fetch(`${base}/api/status`, { method: 'POST' })).status).toBe(403);
    expect((await fetch(`${base}/api/status`, { method: 'PUT' })).status).toBe(405);
  });

  it('exposes Prometheus metrics that a Prometheus text parser reads', async () => {
    const res = await fetch(`${base}/metrics`);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const families = parsePrometheusTextFormat(await res.text()) as { name: string; type: string; help: string; metrics: { labels?: Record<string, string>; value: string }[] }[];
    const fam = (n: string) => families.find((f) => f.name === n)!;
    expect(families.every((f) => f.name.startsWith('plantgate_'))).toBe(true);
    expect(fam('plantgate_received_total').type).toBe('COUNTER');
    expect(Number(fam('plantgate_received_total').metrics.find((m) => m.labels!.component === 'mqtt-broker')!.value)).toBeGreaterThan(0);
    expect(Number(fam('plantgate_written_total').metrics.find((m) => m.labels!.kind === 'sink')!.value)).toBeGreaterThan(0);
    expect(fam('plantgate_buffer_lines').type).toBe('GAUGE');
    expect(fam('plantgate_mqtt_reconnects_total').metrics[0]!.labels!.component).toBe('plant-broker');
    expect(Number(fam('plantgate_mqtt_reconnects_total').metrics[0]!.value)).toBeGreaterThanOrEqual(1); // the restart above
    expect(fam('plantgate_component_state').metrics.filter((m) => m.value === '1')).toHaveLength(7);
    expect(fam('plantgate_indicator_value').metrics.some((m) => m.labels!.indicator === 'nc_rate' && m.labels!.scope === 'region')).toBe(true);
    // prom-client's process and Node.js metrics, and build info
    expect(fam('plantgate_process_cpu_user_seconds_total').type).toBe('COUNTER');
    expect(fam('plantgate_nodejs_heap_size_used_bytes').type).toBe('GAUGE');
    expect(fam('plantgate_build_info').metrics[0]!.labels!.version).toMatch(/^\d+\.\d+\.\d+/);
    // every reason is there from the start, at 0 until it happens
    expect(fam('plantgate_dead_letters_by_reason_total').metrics.find((m) => m.labels!.reason === 'expansion_too_large')!.value).toBe('0');
    expect(fam('plantgate_mqtt_refusals_total').metrics.find((m) => m.labels!.reason === 'control_packet_flood')!.value).toBe('0');
    expect(fam('plantgate_dropped_total').metrics.some((m) => m.labels!.component === 'buffer' && m.labels!.reason === 'corrupt_record')).toBe(true);
    expect(fam('plantgate_mqtt_reconnects_total').metrics.some((m) => m.labels!.component === 'mqtt-broker')).toBe(true);
    expect(fam('plantgate_sparkplug_nodes_online')).toBeDefined();
    expect(fam('plantgate_buffer_disk_error').metrics[0]!.value).toBe('0');
    // one unit: points, received by the sink too (it read them from the buffer)
    expect(Number(fam('plantgate_received_total').metrics.find((m) => m.labels!.kind === 'sink')!.value)).toBeGreaterThan(0);
    expect(fam('plantgate_received_total').help).toMatch(/^Points /);
  });

  const pageWidth = () => page.evaluate(() => document.documentElement.scrollWidth);

  it('fits the screen at 400, 1,400 and 2,560 px, also with a long not-ready message', async () => {
    await broker.stop();
    await expect.poll(() => page.locator('#health').textContent(), { timeout: 10_000 }).toMatch(/not ready/);
    for (const width of [400, 1400, 2560]) {
      await page.setViewportSize({ width, height: 1200 });
      await page.waitForTimeout(400);
      expect(await pageWidth(), `page width in a ${width} px window`).toBeLessThanOrEqual(width);
      await page.screenshot({ path: `test-output/dashboard-${width}.png`, fullPage: width === 400 });
    }
    await broker.restart();
    await expect.poll(() => page.locator('#health').textContent(), { timeout: 15_000 }).toBe('ready');
    // the error of the outage is shown as resolved now, with when
    await expect.poll(() => cell('plant-broker', 8).innerHTML(), { timeout: 10_000 }).toMatch(/class="resolved">resolved \d/);
    await page.setViewportSize({ width: 1440, height: 1400 });
  });

  it('lists the devices by name, those that went away too, with a filter', async () => {
    await machines.stop();
    await page.fill('#device-filter', 'machine-tool');
    const rows = page.locator('#devices tbody tr');
    await expect.poll(() => rows.count(), { timeout: 10_000 }).toBe(8);
    await expect.poll(async () => (await rows.locator('td:nth-child(3)').allTextContents()).every((t) => t === 'gone'), { timeout: 10_000 }).toBe(true);
    expect(await rows.first().locator('td:nth-child(2)').textContent()).toMatch(/^sim-sy-machine-tool-cnc-00\d$/);
    machines = await startDeviceFleet({ url: `mqtt://127.0.0.1:${gw.broker!.port}`, site: 'sy-machine-tool', devices: 8, intervalMs: 200, qos: 1 });
    await expect.poll(async () => (await rows.locator('td:nth-child(3)').allTextContents()).every((t) => t === 'connected'), { timeout: 10_000 }).toBe(true);
    await page.fill('#device-filter', '');
  });

  it('shows InfluxDB going away: a log line with its code, the sink state and badge, and the recovery', async () => {
    const sink = () => gw.pipeline.status().components.find((c) => c.kind === 'sink')!;
    const from = logs.length;
    await db.stop();
    await eventually('sink not running', async () => sink().state, (s) => s !== 'running', 20_000);
    expect(['retrying', 'paused']).toContain(sink().state);
    const badge = page.locator('#sinks tr[data-sink="influx-v1"] .sink-state .state');
    await expect.poll(() => badge.getAttribute('class'), { timeout: 10_000 }).not.toMatch(/s-running/);
    expect(await page.locator('#g-sink').getAttribute('class')).toMatch(/warn|bad/);
    expect(logs.slice(from).some((l) => l.code === 'PG_ERR_INFLUX_NETWORK' && l.component === 'influx-v1')).toBe(true);
    await db.restart();
    await eventually('sink running again', async () => sink().state, (s) => s === 'running', 30_000);
    await expect.poll(() => badge.getAttribute('class'), { timeout: 10_000 }).toMatch(/s-running/);
    expect(logs.slice(from).some((l) => l.code === 'PG_ERR_INFLUX_RECOVERED')).toBe(true);
  });

  it('keeps the live feed small with 1,000 devices connected (gzip, and no device lists in it)', async () => {
    const id = (i: number) => Buffer.from(`bulk-${String(i).padStart(4, '0')}`);
    const connect = (i: number) => {
      const body = Buffer.concat([Buffer.from([0, 4]), Buffer.from('MQTT'), Buffer.from([4, 2, 0, 120, 0, id(i).length]), id(i)]);
      return Buffer.concat([Buffer.from([0x10, body.length]), body]);
    };
    const socks: Socket[] = [];
    for (let i = 0; i < 1000; i++) {
      const s = netConnect(gw.broker!.port, '127.0.0.1', () => s.write(connect(i)));
      s.on('error', () => undefined);
      s.resume();
      socks.push(s);
      if (i % 100 === 99) await new Promise((r) => setTimeout(r, 100));
    }
    try {
      await eventually('1,000 more devices', async () => Number(gw.broker!.status().details!.connectedDevices), (n) => n >= 1014, 30_000);
      const bytesPerSecond = (gzip: boolean) =>
        new Promise<number>((resolve, reject) => {
          const req = httpGet(`${base}/api/events`, { headers: gzip ? { 'accept-encoding': 'gzip' } : {} }, (res) => {
            let n = 0;
            res.on('data', (c: Buffer) => (n += c.length));
            setTimeout(() => {
              req.destroy();
              resolve(n / 5);
            }, 5000);
          });
          req.on('error', reject);
        });
      const [plain, gzipped] = await Promise.all([bytesPerSecond(false), bytesPerSecond(true)]);
      console.log(`live feed with ${gw.broker!.status().details!.connectedDevices} devices: ${Math.round(plain)} B/s plain, ${Math.round(gzipped)} B/s gzip per tab`);
      expect(gzipped).toBeLessThan(plain / 3);
      expect(gzipped).toBeLessThan(10_000);
      // the devices are one request away, filtered by the gateway
      const d = (await (await fetch(`${base}/api/devices?q=bulk-07&limit=20`)).json()) as { matched: number; devices: unknown[] };
      expect(d.matched).toBe(100);
      expect(d.devices).toHaveLength(20);
    } finally {
      for (const s of socks) s.destroy();
    }
  });

  it('says the gateway is unreachable within 5 s when it dies', async () => {
    await machines.stop();
    await robots.stop();
    await gw.stop();
    const t0 = Date.now();
    await expect.poll(() => page.locator('#health').textContent(), { timeout: 5000, interval: 100 }).toMatch(/^gateway unreachable since \d/);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(await page.locator('#health').getAttribute('class')).toMatch(/s-unreachable/);
    expect(await page.evaluate(() => document.body.classList.contains('unreachable'))).toBe(true);
  });
});
