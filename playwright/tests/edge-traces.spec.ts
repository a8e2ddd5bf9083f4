// From a graph edge, one click to its slowest traces: the side panel's link
// opens the traces page filtered to traces that crossed the edge, longest
// first. Each listed trace is then read from the API to check it really has
// a CLIENT span of the edge's source calling a SERVER span of its target.
import { test, expect } from '@playwright/test';
import { edgesFromProductpage, openConsole } from './helpers';

type Span = {
  span_id: string;
  parent_span_id: string | null;
  kind: number;
  attributes: Record<string, unknown>;
};

const workload = (s: Span) => String(s.attributes['resource.k8s.workload.name'] ?? '');

test('an edge\'s "slowest traces" opens the traces that crossed it, slowest first', async ({ page }, testInfo) => {
  await openConsole(page, '/graph?window=300s');
  await expect(page.getByTestId('graph')).toBeVisible({ timeout: 90_000 });
  const busy = edgesFromProductpage(page, 'reviews').and(page.locator(':not([data-rps="0"])'));
  await expect(busy.first()).toBeVisible({ timeout: 90_000 });
  await busy.first().click();
  const link = page.getByTestId('edge-traces');
  await expect(link).toBeVisible();
  await page.screenshot({ path: testInfo.outputPath('edge-panel.png'), fullPage: true });
  await link.click();

  await expect(page).toHaveURL(/\/traces\?sort=longest_first/);
  const url = new URL(page.url());
  const sources = (url.searchParams.get('source_workload') ?? '').split(',');
  const targets = (url.searchParams.get('destination_workload') ?? '').split(',');
  expect(sources).toEqual(['productpage-v1']);
  expect(targets.every((t) => t.startsWith('reviews-'))).toBe(true);
  await expect(page.getByTestId('trace-edge-filter')).toContainText('productpage-v1');
  await expect(page.getByTestId('trace-sort')).toHaveValue('longest_first');

  const rows = page.getByTestId('trace-row');
  await expect(rows.first()).toBeVisible({ timeout: 60_000 });
  const listed = await rows.evaluateAll((els) =>
    els.map((e) => ({ id: e.getAttribute('data-trace-id') ?? '', ms: Number(e.getAttribute('data-duration-ms')) })),
  );
  expect(listed.length).toBeGreaterThan(0);
  // Slowest first.
  const durations = listed.map((t) => t.ms);
  expect(durations).toEqual([...durations].sort((a, b) => b - a));
  await page.screenshot({ path: testInfo.outputPath('edge-traces.png'), fullPage: true });

  // Every listed trace crossed the edge.
  for (const { id } of listed.slice(0, 10)) {
    const response = await page.request.get(`/api/traces/${id}`);
    expect(response.ok()).toBe(true);
    const spans: Span[] = (await response.json()).spans;
    const byId = new Map(spans.map((s) => [s.span_id, s]));
    const crossed = spans.some((server) => {
      const client = server.parent_span_id ? byId.get(server.parent_span_id) : undefined;
      return (
        server.kind === 2 &&
        targets.includes(workload(server)) &&
        client !== undefined &&
        client.kind === 3 &&
        sources.includes(workload(client))
      );
    });
    expect(crossed, `trace ${id} should have productpage-v1 calling ${targets.join('/')}`).toBe(true);
  }

  // Back to all traces.
  await page.getByTestId('trace-edge-clear').click();
  await expect(page.getByTestId('trace-edge-filter')).toHaveCount(0);
  await expect(rows.first()).toBeVisible();
});
