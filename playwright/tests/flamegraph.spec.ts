// A trace opens as a flame graph (one canvas, a bar per span) with Jaeger's
// critical path marked on it and on the timeline; clicking a bar shows its
// span. The canvas's pixels are read back to check the critical path band
// is really drawn.
import { test, expect, type Page } from '@playwright/test';
import { openConsole } from './helpers';

/** A trace of the demo that spans at least three services. */
async function wideTrace(page: Page): Promise<string> {
  await openConsole(page, '/traces');
  const rows = page.getByTestId('trace-row');
  await expect(rows.first()).toBeVisible({ timeout: 60_000 });
  let id = '';
  await expect
    .poll(
      async () => {
        const found = await rows.evaluateAll((els) =>
          els
            .map((e) => ({ id: e.getAttribute('data-trace-id') ?? '', n: Number(e.getAttribute('data-service-count')) }))
            .sort((a, b) => b.n - a.n)[0],
        );
        id = found && found.n >= 3 ? found.id : '';
        return id !== '';
      },
      { message: 'a trace with spans from ≥3 services should be listed', timeout: 60_000, intervals: [2_000] },
    )
    .toBe(true);
  return id;
}

test('a trace opens as a flame graph with the critical path marked', async ({ page }, testInfo) => {
  const id = await wideTrace(page);
  await page.goto(`/traces/${id}?view=flamegraph`);
  const view = page.getByTestId('trace-view');
  await expect(view).toBeVisible({ timeout: 30_000 });
  const spanCount = Number(await view.getAttribute('data-span-count'));
  const critical = Number(await view.getAttribute('data-critical-spans'));
  expect(spanCount).toBeGreaterThan(2);
  expect(critical).toBeGreaterThan(0);

  // The flame graph is one canvas with a bar per span, not a DOM node per span.
  const flame = page.getByTestId('flame-graph');
  await expect(flame).toBeVisible();
  await expect(flame).toHaveAttribute('data-bar-count', String(spanCount));
  await expect(flame).toHaveAttribute('data-critical-spans', String(critical));
  await expect(page.getByTestId('span-row')).toHaveCount(0);

  // The critical path's white band is drawn: count pure-white pixels.
  const white = await flame.evaluate((c: HTMLCanvasElement) => {
    const ctx = c.getContext('2d');
    if (!ctx) return 0;
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) if (d[i] === 255 && d[i + 1] === 255 && d[i + 2] === 255) n++;
    return n;
  });
  expect(white).toBeGreaterThan(20);
  await page.screenshot({ path: testInfo.outputPath('flamegraph.png'), fullPage: true });

  // Clicking the top row's middle selects the root span (it spans the trace).
  const rowH = Number(await flame.getAttribute('data-row-height'));
  const box = await flame.boundingBox();
  if (!box) throw new Error('the flame graph has no box');
  await flame.click({ position: { x: box.width / 2, y: rowH / 2 } });
  const details = page.getByTestId('span-details');
  await expect(details).toBeVisible();
  await expect(details.getByTestId('span-critical')).not.toHaveText('—');
  const trace = await (await page.request.get(`/api/traces/${id}`)).json();
  const roots = trace.spans.filter(
    (s: { span_id: string; parent_span_id: string | null }) =>
      !s.parent_span_id || !trace.spans.some((p: { span_id: string }) => p.span_id === s.parent_span_id),
  );
  expect(roots.map((s: { span_id: string }) => s.span_id)).toContain(await details.getAttribute('data-span-id'));
  await page.screenshot({ path: testInfo.outputPath('flamegraph-span.png'), fullPage: true });

  // The timeline marks the same spans, with their critical sections on the bars.
  await page.getByTestId('trace-view-timeline').click();
  await expect(page.getByTestId('flame-graph')).toHaveCount(0);
  await expect(page.getByTestId('span-row')).toHaveCount(spanCount);
  await expect(page.locator('[data-testid="span-row"][data-critical="true"]')).toHaveCount(critical);
  await expect.poll(async () => page.locator('.critical-segment').count()).toBeGreaterThanOrEqual(critical);
  await page.screenshot({ path: testInfo.outputPath('timeline-critical.png'), fullPage: true });
});
