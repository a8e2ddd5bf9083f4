// Every page of the console renders against the real server, and the config
// editor validates YAML in the browser (with loupe-model) before saving.
import { test, expect } from '@playwright/test';
import { execSync } from 'node:child_process';
import { openConsole } from './helpers';

const pages: { path: string; ready: string[] }[] = [
  { path: '/', ready: ['graph', 'graph-empty'] },
  { path: '/graph', ready: ['graph', 'graph-empty'] },
  { path: '/traces', ready: ['traces-table', 'traces-empty'] },
  { path: '/canary', ready: ['canary-reviews', 'canary-empty'] },
  { path: '/config', ready: ['config-list'] },
  { path: '/audit', ready: ['audit-table', 'audit-empty'] },
  { path: '/mesh', ready: ['proxy-table'] },
];

for (const { path, ready } of pages) {
  test(`page ${path} renders its data without errors`, async ({ page }, testInfo) => {
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await openConsole(page, path);
    const selector = ready.map((id) => `[data-testid="${id}"]`).join(', ');
    await expect(page.locator(selector).first()).toBeVisible({ timeout: 30_000 });
    await expect(page.getByTestId('error')).toHaveCount(0);
    await page.screenshot({ path: testInfo.outputPath('page.png'), fullPage: true });
    expect(pageErrors).toEqual([]);
  });
}

test('an unknown route says so', async ({ page }) => {
  await openConsole(page, '/no-such-page');
  await expect(page.getByText('No such page.')).toBeVisible();
});

test('config editor shows diagnostics for invalid YAML and refuses to save it', async ({ page }, testInfo) => {
  await openConsole(page, '/config');
  // The demo's reviews VirtualService (routes to subsets v1, v2, v3).
  const item = page.getByTestId('config-item-VirtualService-default-reviews');
  await expect(item).toBeVisible({ timeout: 30_000 });
  await item.click();
  const editor = page.getByTestId('yaml-editor');
  await expect(editor).toHaveValue(/kind"?:\s*"?VirtualService/);
  // The stored resource is valid: no errors, save allowed.
  await expect(page.locator('[data-testid="diagnostics"] [data-severity="error"]')).toHaveCount(0);
  await expect(page.getByTestId('save-config')).toBeEnabled();

  // Broken YAML: a parse error, shown before anything is sent.
  await editor.fill('apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: [unclosed\n');
  await expect(page.locator('[data-testid="diagnostics"] [data-severity="error"]').first()).toBeVisible();
  await expect(page.getByTestId('save-config')).toBeDisabled();
  await page.screenshot({ path: testInfo.outputPath('config-invalid.png'), fullPage: true });

  // Valid YAML that routes to a subset no DestinationRule defines: found by
  // loupe-model's analyzer in the browser, with the stored config as context.
  await page.getByRole('button', { name: 'Revert' }).click();
  await expect(editor).toHaveValue(/subset"?:\s*"?v3/);
  const stored = await editor.inputValue();
  await editor.fill(stored.replace(/(subset"?:\s*"?)v3/, '$1v9'));
  await expect(page.locator('[data-testid="diagnostics"] [data-severity="error"]', { hasText: 'v9' }).first()).toBeVisible();
  await expect(page.getByTestId('save-config')).toBeDisabled();
  // The pending change shows as a diff against the stored YAML.
  await expect(page.getByTestId('diff').locator('.added', { hasText: 'v9' })).toBeVisible();

  // Revert restores the stored YAML and a clean bill of health.
  await page.getByRole('button', { name: 'Revert' }).click();
  await expect(editor).toHaveValue(/kind"?:\s*"?VirtualService/);
  await expect(page.locator('[data-testid="diagnostics"] [data-severity="error"]')).toHaveCount(0);
  await expect(page.getByTestId('diff')).toHaveCount(0);
});

test('the audit log names who changed what, and filters by user', async ({ page }) => {
  await openConsole(page, '/audit');
  // The demo applied its mesh config as `loupe-demo` before the console started.
  await expect(page.getByTestId('audit-row').first()).toBeVisible({ timeout: 30_000 });
  await page.getByTestId('audit-user').fill('loupe-demo');
  await page.getByTestId('audit-user').press('Enter');
  await expect(page.getByTestId('audit-row').first()).toHaveAttribute('data-user', 'loupe-demo');
  const users = await page.getByTestId('audit-row').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-user')));
  expect(new Set(users)).toEqual(new Set(['loupe-demo']));
  await page.getByTestId('audit-user').fill('nobody-at-all');
  await page.getByTestId('audit-user').press('Enter');
  await expect(page.getByTestId('audit-empty')).toBeVisible();
});

test('the mesh page shows every proxy synced, and a part the demo restarted', async ({ page }, testInfo) => {
  await openConsole(page, '/mesh');
  // All seven proxies of the demo, each running the newest config revision.
  await expect(page.getByTestId('proxy-row')).toHaveCount(7, { timeout: 30_000 });
  await expect(page.locator('[data-testid="proxy-row"][data-sync="SYNCED"]')).toHaveCount(7);
  await expect(page.getByTestId('proxy-summary')).toContainText('applied by 7 of 7 connected proxies');
  const loadgen = page.locator('[data-testid="part-row"][data-part="loadgen"]');
  await expect(loadgen).toHaveAttribute('data-restarts', '0');
  // kill -9 the demo's load generator: the supervisor starts it again and the page says so.
  // (The bracket keeps the pattern from matching the shell that runs pkill.)
  execSync("pkill -9 -f '[l]oupe-sample load --target 127.0.0.1:25080'");
  await expect(loadgen).toHaveAttribute('data-restarts', '1', { timeout: 20_000 });
  await expect(loadgen).toHaveAttribute('data-running', 'true', { timeout: 20_000 });
  await expect(loadgen).toContainText('SIGKILL');
  await page.screenshot({ path: testInfo.outputPath('mesh.png'), fullPage: true });
});
