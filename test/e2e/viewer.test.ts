import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, rapsim, repoRoot, tempDir } from '../helpers/cli.js';

/**
 * The viewer end to end in a real browser (Debian's chromium, headless, driven by
 * playwright-core): run a bundled violating scenario with --out, serve it with `rapsim view`,
 * and check what a person would: the actors and the violation are listed, and clicking the
 * violation moves the time, highlights the states and shows the RAP the RETs found.
 * Screenshots go to test-artifacts/ (gitignored).
 */
const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = join(repoRoot, 'test-artifacts');
const SCENARIO = 'scenarios/bare-metal/litmus-stuffing-too-short.yaml';

let view: ChildProcess | undefined;
let url = '';
let context: BrowserContext | undefined;
let page: Page;
const problems: string[] = [];
const foreign: string[] = [];

/** Starts `rapsim view DIR --port 0` and resolves with the URL it prints. */
function startView(dir: string): Promise<string> {
  assertBuilt();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(repoRoot, 'bin', 'rapsim.js'), 'view', dir, '--port', '0'], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    view = child;
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`rapsim view printed no URL: ${out}${err}`)), 20_000);
    child.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      const m = /serving .* at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.stderr!.on('data', (b: Buffer) => {
      err += b.toString();
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`rapsim view exited (${code}): ${out}${err}`));
    });
  });
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `${CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium), as .ci/run does`,
    );
  }
  mkdirSync(ARTIFACTS, { recursive: true });
  const dir = tempDir('rapsim-e2e-');
  const run = await rapsim(['run', SCENARIO, '--out', dir, '--quiet']);
  expect(run.code, run.stderr).toBe(0);
  url = await startView(dir);
  context = await chromium.launchPersistentContext(tempDir('rapsim-chromium-'), {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
    viewport: { width: 1500, height: 1000 },
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
  });
  page.on('request', (r) => {
    if (!r.url().startsWith(url) && !r.url().startsWith('data:')) foreign.push(r.url());
  });
});

afterAll(async () => {
  await context?.close();
  if (view && view.exitCode === null) {
    const exited = new Promise((done) => view!.once('exit', done));
    view.kill('SIGTERM');
    await exited;
  }
});

const texts = (selector: string) => page.locator(selector).allTextContents();
const activeStates = () =>
  page.$$eval('[data-chart-actor] [data-state].active', (els) =>
    els.map((e) => e.getAttribute('data-state')),
  );

describe('rapsim view in a browser', () => {
  it('lists the actors and the violation, then jumps to the violation when it is clicked', async () => {
    await page.goto(url);
    await page.waitForSelector('li.actor');
    expect(await texts('li.actor .name')).toEqual(['pCPU 0']);
    expect(await texts('.group h4')).toEqual(['host']);
    const violations = page.locator('li.violation');
    await expect.poll(() => violations.count()).toBe(1);
    expect(await violations.first().textContent()).toContain('rap-promised-clear');
    // The chart of pCPU 0 is there, its active state highlighted.
    await page.waitForSelector('[data-chart-actor="0"] svg [data-state="pcpu.running"]');
    expect(await activeStates()).toEqual(['pcpu.running']);

    const before = {
      now: await page.textContent('#now'),
      rap: await page.locator('#rap .rap-entry').count(),
    };
    expect(before.now).toBe('t = 0 ps');
    expect(before.rap).toBe(0);
    await page.screenshot({ path: join(ARTIFACTS, 'viewer-start.png'), fullPage: true });

    await violations.first().click();
    await expect.poll(() => page.textContent('#now')).toBe('t = 1.958667 µs');
    expect(await page.getAttribute('li.violation', 'class')).toContain('selected');
    expect(await page.locator('li.actor.involved .name').allTextContents()).toEqual(['pCPU 0']);
    // The state the core is in, and the STEP transition that event fired, are highlighted.
    expect(await activeStates()).toEqual(['pcpu.running']);
    expect(
      await page.locator('[data-chart-actor="0"] .transition.fired').first().getAttribute('data-event'),
    ).toBe('STEP');
    // The RAP as the RETs found it: 64 entries, the 8 used ones (pushed by process 0) outlined.
    const found = page.locator('#rap .rap-core').first();
    expect(await found.locator('h4').textContent()).toContain('as the RETs found it');
    expect(await found.locator('.rap-entry').count()).toBe(64);
    const consumed = found.locator('.rap-entry.consumed');
    expect(await consumed.count()).toBe(8);
    expect(await consumed.locator('.who').allTextContents()).toEqual(Array(8).fill('host process 0'));
    expect(await consumed.first().isVisible()).toBe(true);
    // ...and after the event, 24 entries remain.
    expect(await page.locator('#rap .rap-core').nth(1).locator('.rap-entry').count()).toBe(24);
    await page.screenshot({ path: join(ARTIFACTS, 'viewer-violation.png'), fullPage: true });
  });

  it('steps through events with the buttons and the keyboard', async () => {
    await page.click('button[data-act="prev"]');
    await expect.poll(() => page.textContent('#now')).toBe('t = 400 ns');
    expect(await page.locator('#rap .rap-core').count()).toBe(1);
    expect(await page.locator('#rap .rap-entry').count()).toBe(64);
    await page.keyboard.press('End');
    await expect.poll(() => page.textContent('#now')).toBe('t = 20 µs');
    expect(await activeStates()).toEqual(['pcpu.idle']);
    await page.click('#sequence [data-ev="1"]');
    await expect.poll(() => page.textContent('#evno')).toBe('event 1 / 4');
    await page.screenshot({ path: join(ARTIFACTS, 'viewer-step.png'), fullPage: true });
  });

  it('fetched nothing from elsewhere and logged no errors', () => {
    expect(foreign).toEqual([]);
    expect(problems).toEqual([]);
  });
});
