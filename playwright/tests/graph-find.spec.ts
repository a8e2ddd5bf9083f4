// The graph's Kiali controls against the demo: a find expression highlights
// the nodes it names, a hide expression takes them (and their edges) out of
// the SVG, a bad expression is refused under the box naming its token, and
// the namespace picker, graph types and edge label modes redraw the graph.
import { test, expect, type Page } from '@playwright/test';
import { openConsole } from './helpers';

const nodes = (page: Page) => page.locator('svg[data-testid="graph"] g.node[data-testid^="node-"]');
const edges = (page: Page) => page.locator('svg[data-testid="graph"] g.edge[data-testid^="edge-"]');

/** The graph with reviews in it (the demo's traffic has reached the rollups). */
async function openGraph(page: Page, path = '/graph?window=300s'): Promise<void> {
  await openConsole(page, path);
  await expect(page.getByTestId('graph')).toBeVisible({ timeout: 90_000 });
  await expect
    .poll(async () => page.locator('g.node[data-app="reviews"]').count(), {
      message: 'reviews nodes should be drawn',
      timeout: 90_000,
      intervals: [1_000],
    })
    .toBeGreaterThan(0);
}

test('find highlights the nodes it names; hide takes them out of the graph', async ({ page }, testInfo) => {
  await openGraph(page);
  const total = await nodes(page).count();
  const reviews = await page.locator('g.node[data-app="reviews"]').count();
  expect(total).toBeGreaterThan(reviews);

  // Find: the reviews nodes are marked, nothing else is, nothing is removed.
  await page.getByTestId('graph-find').fill('app = reviews');
  await page.getByTestId('graph-find').press('Enter');
  await expect(page).toHaveURL(/find=app%20%3D%20reviews/);
  await expect(page.locator('g.node.find-match')).toHaveCount(reviews);
  await expect(page.locator('g.node.find-match:not([data-app="reviews"])')).toHaveCount(0);
  await expect(nodes(page)).toHaveCount(total);
  await page.screenshot({ path: testInfo.outputPath('graph-find.png'), fullPage: true });

  // An edge expression finds edges, not nodes.
  await page.getByTestId('graph-find').fill('rt >= 0 AND rps > 0');
  await page.getByTestId('graph-find').press('Enter');
  await expect(page.locator('g.node.find-match')).toHaveCount(0);
  await expect.poll(async () => page.locator('g.edge.find-match').count()).toBeGreaterThan(0);

  // A refused expression: the error names the bad token, the graph is untouched.
  await page.getByTestId('graph-find').fill('app = reviews AND pods > 3');
  await page.getByTestId('graph-find').press('Enter');
  const error = page.getByTestId('graph-find-error');
  await expect(error).toContainText('unknown operand [pods]');
  await expect(error.locator('mark')).toHaveText('pods');
  await expect(page.locator('g.node.find-match')).toHaveCount(0);
  await page.screenshot({ path: testInfo.outputPath('graph-find-error.png'), fullPage: true });
  await page.getByTestId('graph-find').fill('');
  await page.getByTestId('graph-find').press('Enter');
  await expect(error).toHaveCount(0);

  // Hide: the reviews nodes leave the SVG, and every edge that touched them.
  await page.getByTestId('graph-hide').fill('app = reviews');
  await page.getByTestId('graph-hide').press('Enter');
  await expect(nodes(page)).toHaveCount(total - reviews);
  await expect(page.locator('g.node[data-app="reviews"]')).toHaveCount(0);
  await expect(page.locator('g.edge[data-target-app="reviews"], g.edge[data-source-app="reviews"]')).toHaveCount(0);
  await page.screenshot({ path: testInfo.outputPath('graph-hide.png'), fullPage: true });

  // Kiali's flag: nodes without a sidecar (callers outside the mesh) hide too.
  await page.getByTestId('graph-hide').fill('app = reviews OR !sidecar');
  await page.getByTestId('graph-hide').press('Enter');
  await expect(page.locator('g.node[data-testid="node-unknown"]')).toHaveCount(0);

  // The view survives a reload: it is in the URL.
  await page.reload();
  await expect(page.getByTestId('graph-hide')).toHaveValue('app = reviews OR !sidecar');
  await expect(page.locator('g.node[data-app="reviews"]')).toHaveCount(0);
  await page.getByTestId('graph-hide').fill('');
  await page.getByTestId('graph-hide').press('Enter');
  await expect.poll(async () => page.locator('g.node[data-app="reviews"]').count()).toBe(reviews);
});

test('namespace picker, the four graph types and the edge label modes', async ({ page }, testInfo) => {
  await openGraph(page);
  // Namespaces: the demo's workloads are in `default`.
  await page.getByTestId('namespace-summary').click();
  await page.getByTestId('namespace-default').locator('input').check();
  await expect(page).toHaveURL(/namespaces=default/);
  await expect(page.getByTestId('namespace-summary')).toContainText('default');
  await expect.poll(async () => nodes(page).count()).toBeGreaterThan(0);
  await page.screenshot({ path: testInfo.outputPath('graph-namespace.png'), fullPage: true });
  await page.getByTestId('namespace-summary').click();

  for (const type of ['app', 'workload', 'service', 'versioned-app']) {
    await page.getByTestId('graph-type').selectOption(type);
    await expect(page).toHaveURL(new RegExp(`type=${type}`));
    await expect.poll(async () => nodes(page).count(), { message: `${type} graph has nodes` }).toBeGreaterThan(1);
  }
  await page.getByTestId('graph-type').selectOption('service');
  await expect(page.locator('g.node[data-testid="node-default-reviews"]')).toHaveCount(1);
  await page.getByTestId('graph-type').selectOption('versioned-app');

  // Edge labels: request rate (default), error %, response time, none.
  const labels = edges(page).locator('text.edge-label');
  await expect(labels.first()).toContainText('rps');
  await page.getByTestId('edge-labels').selectOption('errors');
  await expect(labels.first()).toContainText('% err');
  await page.getByTestId('edge-labels').selectOption('responsetime');
  await expect(page).toHaveURL(/labels=responsetime/);
  await expect.poll(async () => (await labels.allTextContents()).some((t) => t.includes('p95'))).toBe(true);
  await page.screenshot({ path: testInfo.outputPath('graph-response-time.png'), fullPage: true });
  await page.getByTestId('edge-labels').selectOption('none');
  await expect(labels).toHaveCount(0);
  await expect.poll(async () => edges(page).count()).toBeGreaterThan(0);
});
