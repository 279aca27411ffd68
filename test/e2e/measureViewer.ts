/**
 * A manual check of the viewer's responsiveness on a large run (not part of `npm test`):
 *
 *   node bin/rapsim.js run scenarios/bench/bare-metal-64.yaml --until 15ms --workers 2 --out /tmp/big
 *   npx tsx test/e2e/measureViewer.ts /tmp/big
 *
 * Serves DIR with `rapsim view`, opens it in Debian's chromium and prints how long the page takes
 * to load the timeline and how long the page takes to show a new time after a scrub, a step and
 * a click on a violation (two animation frames after the input: what a person waits for).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const dir = process.argv[2];
if (!dir) throw new Error('usage: npx tsx test/e2e/measureViewer.ts RUN_DIR');
const root = join(import.meta.dirname, '..', '..');
const view = spawn(process.execPath, [join(root, 'bin', 'rapsim.js'), 'view', dir, '--port', '0'], {
  stdio: ['ignore', 'pipe', 'inherit'],
});
const url = await new Promise<string>((resolve) => {
  let out = '';
  view.stdout!.on('data', (b: Buffer) => {
    out += b.toString();
    const m = /(http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
    if (m) resolve(m[1]!);
  });
});
const context = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'rapsim-chromium-')), {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
  viewport: { width: 1500, height: 1000 },
});
try {
  const page = context.pages()[0] ?? (await context.newPage());
  const t0 = Date.now();
  await page.goto(url);
  await page.waitForSelector('li.actor', { timeout: 300_000 });
  const shown = Date.now() - t0;
  const n = Number(await page.getAttribute('#scrub', 'max')) + 1;
  const memory = await page.evaluate(
    () => (performance as unknown as { memory?: { usedJSHeapSize: number } }).memory?.usedJSHeapSize ?? 0,
  );
  /** Milliseconds from an input to the second animation frame after it. */
  const timed = (code: string): Promise<number> =>
    page.evaluate(
      `new Promise((resolve) => { const t = performance.now(); ${code}; requestAnimationFrame(() => requestAnimationFrame(() => resolve(performance.now() - t))); })`,
    );
  const scrubs: number[] = [];
  for (let i = 0; i < 30; i++) {
    const k = Math.floor(((i * 7919) % 1000) * (n / 1000));
    scrubs.push(
      await timed(
        `const s = document.getElementById('scrub'); s.value = '${k}'; s.dispatchEvent(new Event('input'));`,
      ),
    );
  }
  const steps: number[] = [];
  for (let i = 0; i < 30; i++) {
    steps.push(await timed(`document.querySelector('button[data-act="next"]').click();`));
  }
  const violation = (await page.locator('li.violation').count())
    ? await timed(`document.querySelector('li.violation').click();`)
    : Number.NaN;
  const med = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
  const max = (a: number[]) => Math.max(...a);
  console.log(
    JSON.stringify(
      {
        events: n,
        loadedMs: shown,
        pageIndexMs: Number(await page.getAttribute('body', 'data-load-ms')),
        heapMB: Math.round(memory / 1024 / 1024),
        scrubMs: { median: Math.round(med(scrubs)), max: Math.round(max(scrubs)) },
        stepMs: { median: Math.round(med(steps)), max: Math.round(max(steps)) },
        violationClickMs: Math.round(violation),
      },
      null,
      2,
    ),
  );
  await page.screenshot({ path: join(root, 'test-artifacts', 'viewer-large.png') });
} finally {
  await context.close();
  view.kill('SIGTERM');
}
