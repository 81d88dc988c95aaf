/**
 * The HTML report in a real browser: Debian's chromium driven by playwright-core. Opened from
 * disk, it must make no network request, log no console error, draw every chart with one mark
 * per datum, and show hostile AS names and usernames as text.
 */
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readDaily } from '../../src/report/data.js';
import { runReport, type ReportOptions } from '../../src/report/report.js';
import { openStore } from '../../src/store/store.js';
import { dialectCases, tempDir } from '../helpers/dialects.js';
import { buildFixture, HOSTILE, type Fixture } from './fixture.js';

const CHROMIUM = process.env.COWRIE_CHROMIUM ?? '/usr/bin/chromium';
const haveBrowser = fs.existsSync(CHROMIUM);
if (!haveBrowser) {
  const msg = `\n*** browser test: ${CHROMIUM} not found (apt-get install chromium); the HTML report is NOT checked in a browser ***\n`;
  if (process.env.COWRIE_REQUIRE_BROWSER === '1') throw new Error(`${msg}COWRIE_REQUIRE_BROWSER=1: failing`);
  process.stderr.write(msg);
}

const sqlite = dialectCases().find((d) => d.name === 'sqlite')!;

describe.skipIf(!haveBrowser)('HTML report in headless Chromium', () => {
  let browser: Browser;
  let fx: Fixture;
  let file: string;
  let json: Record<string, any>;
  let dailyCells = 0;
  let days = 0;

  beforeAll(async () => {
    const url = await sqlite.newUrl();
    fx = await buildFixture(url);
    const store = await openStore(url);
    const o: ReportOptions = {
      view: 'summary', format: 'html', since: '2000-01-01', until: '2100-01-01', limit: 1000, ips: {},
      blocklist: { scanners: 'include', maxAgeMs: 86_400_000 }, setName: 'x', color: false,
    };
    try {
      file = path.join(tempDir('cowrie-html-'), 'report.html');
      fs.writeFileSync(file, (await runReport(store.db, o)).text);
      json = JSON.parse((await runReport(store.db, { ...o, format: 'json' })).text);
      const daily = await readDaily(store.db, { since: '2000-01-01', until: '2100-01-01', sensors: [] });
      dailyCells = daily.length;
      days = new Set(daily.map((d) => d.day)).size;
    } finally {
      await store.close();
    }
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
  });

  it('opens offline with no request and no console error; every chart has one mark per datum; attacker text is text', async () => {
    // A fresh profile per context (playwright gives each a new user data dir).
    const context = await browser.newContext({ offline: true });
    const page = await context.newPage();
    const requests: string[] = [];
    const errors: string[] = [];
    const fileUrl = pathToFileURL(file).href;
    page.on('request', (r) => { if (r.url() !== fileUrl) requests.push(r.url()); });
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(fileUrl, { waitUntil: 'load' });

    const marks = async (chart: string) => page.locator(`svg[data-chart="${chart}"] .mark`).count();
    expect(await marks('sessions-per-day')).toBe(dailyCells);
    expect(await marks('logins')).toBe(2 * days);
    expect(await marks('asns')).toBe(json.asns.length);
    expect(await marks('countries')).toBe(json.countries.length);
    const classes = new Set<string>();
    for (const ip of fx.ipFacts.values()) classes.add(ip.classification ?? (ip.observed ? 'not_observed' : 'unenriched'));
    expect(await marks('classification')).toBe(classes.size);
    // Every bar's width is positive and proportional: the largest value has the widest bar.
    const widths = await page.locator('svg[data-chart="asns"] rect.mark').evaluateAll((els) => els.map((e) => Number(e.getAttribute('width'))));
    expect(widths[0]).toBe(Math.max(...widths));

    // Hostile strings: shown as their own text, never turned into elements.
    expect(await page.locator('img, script, iframe, object, embed').count()).toBe(0);
    const body = await page.locator('body').innerText();
    expect(body).toContain(HOSTILE.asName.slice(0, 20));
    expect(body).toContain(HOSTILE.username);
    expect(await page.locator('svg[data-chart="asns"] text', { hasText: '<img src=x' }).count()).toBe(1);

    expect(errors).toEqual([]);
    expect(requests).toEqual([]);
    await context.close();
  });
});
