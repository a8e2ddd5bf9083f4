// The demo, seen through the browser: live graph with productpage → reviews
// traffic, a canary shift to reviews v3 made with the slider, the shift
// showing in the graph, and traces spanning several services.
//
// Runs against a running `loupe demo` (LOUPE_URL, default http://127.0.0.1:20001).
import { test, expect } from '@playwright/test';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { edgesFromProductpage, openConsole, rpsOf, sum } from './helpers';

test('graph shows traffic, the canary slider moves it to reviews v3, traces span services', async ({ page }, testInfo) => {
  // 1. The graph shows productpage → reviews with traffic.
  await openConsole(page, '/');
  await expect(page.getByTestId('graph')).toBeVisible({ timeout: 60_000 });
  await expect
    .poll(async () => sum(await rpsOf(edgesFromProductpage(page, 'reviews'))), {
      message: 'productpage → reviews edges should carry traffic',
      timeout: 90_000,
      intervals: [1_000],
    })
    .toBeGreaterThan(0);

  // Select an edge so the screenshot shows the side panel too.
  await edgesFromProductpage(page, 'reviews').first().click();
  await expect(page.getByTestId('panel-rps')).toBeVisible();
  await page.screenshot({ path: testInfo.outputPath('graph.png'), fullPage: true });
  const docs = path.resolve(__dirname, '..', '..', 'docs');
  fs.mkdirSync(docs, { recursive: true });
  // The README's picture: the toolbar, graph and panel, without the empty
  // page below them.
  const box = await page.locator('.graph-layout').boundingBox();
  const height = box ? Math.ceil(box.y + box.height + 16) : 900;
  await page.screenshot({ path: path.join(docs, 'console.png'), clip: { x: 0, y: 0, width: 1440, height } });

  // 2. Send 100 % of reviews to v3 with the slider; release saves a revision.
  await page.getByTestId('nav-canary').click();
  const card = page.getByTestId('canary-reviews');
  const v3 = page.getByTestId('slider-reviews-v3');
  await expect(v3).toBeVisible();
  // `fill` on a range input sets the value and fires `input` then `change`,
  // as releasing a dragged slider does.
  await v3.fill('100');
  await expect(card.getByTestId('canary-status')).toHaveAttribute('data-state', 'saved');
  await expect(page.getByTestId('weight-reviews-v3')).toHaveText('100%');
  await expect(page.getByTestId('weight-reviews-v1')).toHaveText('0%');
  await expect(page.getByTestId('weight-reviews-v2')).toHaveText('0%');
  await page.screenshot({ path: testInfo.outputPath('canary.png'), fullPage: true });

  // The saved weights are what the server now reports.
  await page.reload();
  await expect(page.getByTestId('weight-reviews-v3')).toHaveText('100%');

  // 3. The graph shows v1 and v2 traffic fall to zero while v3 carries it.
  // Rates are averages over the graph's window, so old traffic has to age
  // out of it: use the shortest window (30 s) and allow for scrape delays.
  await page.getByTestId('nav-graph').click();
  await page.getByTestId('graph-window').selectOption('30s');
  await expect(page).toHaveURL(/window=30s/);
  await expect(page.getByTestId('graph')).toBeVisible();
  await expect
    .poll(
      async () => {
        const v1 = sum(await rpsOf(edgesFromProductpage(page, 'reviews', 'v1')));
        const v2 = sum(await rpsOf(edgesFromProductpage(page, 'reviews', 'v2')));
        const v3 = sum(await rpsOf(edgesFromProductpage(page, 'reviews', 'v3')));
        return { v1ZeroOrGone: v1 === 0, v2ZeroOrGone: v2 === 0, v3Busy: v3 > 0 };
      },
      { message: 'reviews v1/v2 traffic should stop and v3 carry it', timeout: 150_000, intervals: [2_000] },
    )
    .toEqual({ v1ZeroOrGone: true, v2ZeroOrGone: true, v3Busy: true });
  await page.screenshot({ path: testInfo.outputPath('graph-after-shift.png'), fullPage: true });

  // 4. Traces: the list has traces, and one spans at least three services.
  await page.getByTestId('nav-traces').click();
  const rows = page.getByTestId('trace-row');
  await expect(rows.first()).toBeVisible({ timeout: 60_000 });
  const wide = page.locator('[data-testid="trace-row"]').filter({
    has: page.locator('td'),
  });
  let traceId = '';
  await expect
    .poll(
      async () => {
        const found = await wide.evaluateAll((els) =>
          els
            .map((e) => ({ id: e.getAttribute('data-trace-id') ?? '', n: Number(e.getAttribute('data-service-count')) }))
            .sort((a, b) => b.n - a.n)[0],
        );
        traceId = found && found.n >= 3 ? found.id : '';
        return traceId !== '';
      },
      { message: 'a trace with spans from ≥3 services should be listed', timeout: 60_000, intervals: [2_000] },
    )
    .toBe(true);
  await page.screenshot({ path: testInfo.outputPath('traces.png'), fullPage: true });
  await page.locator(`[data-testid="trace-row"][data-trace-id="${traceId}"]`).click();
  await expect(page).toHaveURL(new RegExp(`/traces/${traceId}$`));
  const view = page.getByTestId('trace-view');
  await expect(view).toBeVisible();
  const services = await page
    .getByTestId('span-row')
    .evaluateAll((els) => new Set(els.map((e) => e.getAttribute('data-service'))).size);
  expect(services).toBeGreaterThanOrEqual(3);
  // A span's attributes open on click.
  await page.getByTestId('span-row').nth(1).click();
  await expect(page.getByTestId('span-details')).toBeVisible();
  await page.screenshot({ path: testInfo.outputPath('trace.png'), fullPage: true });
});
