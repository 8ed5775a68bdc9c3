/**
 * Issue 7: what operators see of Sparkplug, in a real Chromium, and what the indicators count.
 * Edge nodes that report by exception stay counted while they are online, even with no data in the
 * window; a death marks the node offline and stale on the page and stops the indicators counting
 * its robots once the window has passed.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SparkplugEdgeNode } from '../simulators/sparkplug-edge.js';
import { testGateway } from './helpers/gateway.js';
import { tempDir } from './helpers/servers.js';

const CHROMIUM = '/usr/bin/chromium';
const SEEDS = join(import.meta.dirname, '..', 'seeds');

describe('Sparkplug on the status page and in the indicators', () => {
  let gw: Awaited<ReturnType<typeof testGateway>>;
  let edge: SparkplugEdgeNode;
  let browser: Browser;
  let page: Page;
  const dir = tempDir('sp-view');

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium (.ci/run does this)`);
    const registry = join(dir.path, 'registry.yaml');
    writeFileSync(
      registry,
      `region: { name: Test }
enterprises:
  - id: as-steel
    name: Anshan Test Steel
    city: Anshan
    industry: C311
    equipmentManufacturing: false
    regulated: true
    employees: 1000
    equipment:
      - { id: as-robot-1, class: robot, source: { tags: { group: anshan, edge_node: edge-01, device: robot-001 } } }
      - { id: as-robot-2, class: robot, source: { tags: { group: anshan, edge_node: edge-01, device: robot-002 } } }
`,
    );
    gw = await testGateway(`
http: { listen: 127.0.0.1:0 }
influx: { url: http://127.0.0.1:9, database: none }
mqtt:
  broker: { listen: 127.0.0.1:0, allowAnonymous: true }
sparkplug: { mode: active }
buffer: { dir: "\${DATA}/buffer" }
indicators: { registry: ${registry}, targets: ${SEEDS}/liaoning-2023-targets.yaml, window: 3s, publishInterval: 0 }
`);
    edge = new SparkplugEdgeNode({ url: `mqtt://127.0.0.1:${gw.broker!.port}`, group: 'anshan', edge: 'edge-01', devices: [{ id: 'robot-001', kind: 'robot' }, { id: 'robot-002', kind: 'robot' }], intervalMs: 0 });
    await edge.start();
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'] });
    page = await browser.newPage({ viewport: { width: 1440, height: 1200 } });
  });
  afterAll(async () => {
    await browser?.close();
    await edge?.stop();
    await gw?.cleanup();
    dir.remove();
  });

  const robotsReporting = () => gw.indicators!.compute().find((v) => v.indicator === 'robots_reporting' && v.scope === 'enterprise')?.numerator;

  it('an online node counts without new data; its death shows offline and stale, and stops the count after the window', async () => {
    await page.goto(`http://127.0.0.1:${gw.http.port}`);
    const row = page.locator('#sp-nodes tr[data-edge="anshan/edge-01"]');
    await expect.poll(() => row.locator('td').nth(1).textContent(), { timeout: 10_000 }).toBe('online');
    await expect.poll(() => row.locator('td').nth(6).textContent()).toBe('robot-001, robot-002');
    expect(await page.locator('#sources tr[data-source="sparkplug"] td').nth(8).textContent()).toMatch(/active host plantgate · 1 node\(s\) online, 0 offline/);
    await expect.poll(robotsReporting, { timeout: 5000 }).toBe(2);

    // report by exception: nothing is published for longer than the 3 s window, the robots still count
    await new Promise((r) => setTimeout(r, 4500));
    expect(robotsReporting()).toBe(2);

    edge.kill(); // the NDEATH will
    await expect.poll(() => row.locator('td').nth(1).textContent(), { timeout: 15_000 }).toBe('offline');
    expect(await row.getAttribute('class')).toBe('stale');
    await expect.poll(() => row.locator('td').nth(6).textContent()).toBe('robot-001 (offline, stale), robot-002 (offline, stale)');
    expect(await row.locator('td').nth(5).textContent()).toMatch(/\d+ \d+ stale/);
    await page.screenshot({ path: 'test-output/dashboard-sparkplug.png', fullPage: true });
    // still counted while the window covers their last presence, then no longer
    await expect.poll(robotsReporting, { timeout: 10_000, interval: 250 }).toBe(0);
  });
});
