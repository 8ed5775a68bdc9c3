/** A page of the gateway's status UI in a real headless Chromium (apt's, as .ci/run installs it). */
import { chromium, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

/** Opens `url` in a fresh browser, runs `check` on the page, and closes the browser whatever happens. */
export async function onPage(url: string, check: (page: Page) => Promise<void>): Promise<void> {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'] });
  try {
    const page = await browser.newPage();
    await page.goto(url);
    await check(page);
  } finally {
    await browser.close();
  }
}
