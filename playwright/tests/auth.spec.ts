// Logging in: the console sends a visitor without a session to the login
// page, refuses a wrong password, logs in and out, and a viewer can read
// but not save (neither in the page nor through the API).
import { test, expect } from '@playwright/test';
import { demoLogin, logIn, openConsole, submitLogin, viewerLogin } from './helpers';

test('without a session every page sends you to the login page', async ({ page }) => {
  await page.goto('/config');
  await expect(page).toHaveURL(/\/login\?next=%2Fconfig/);
  await expect(page.getByTestId('login-page')).toBeVisible();
  const answer = await page.request.get('/api/config');
  expect(answer.status()).toBe(401);
});

test('the login page refuses a wrong password, then logs in and out', async ({ page }, testInfo) => {
  const admin = demoLogin();
  await page.goto('/login');
  await submitLogin(page, { user: admin.user, password: 'not-the-password' });
  await expect(page.getByTestId('login-error')).toHaveText('invalid user or password');
  await expect(page).toHaveURL(/\/login/);
  await expect(page.getByTestId('nav-graph')).toHaveCount(0);
  await page.screenshot({ path: testInfo.outputPath('login-refused.png'), fullPage: true });

  await submitLogin(page, admin);
  await expect(page.getByTestId('whoami')).toContainText(admin.user);
  await expect(page.getByTestId('whoami')).toHaveAttribute('data-role', 'admin');
  await expect(page.getByTestId('nav-graph')).toBeVisible();

  await page.getByTestId('logout').click();
  await expect(page.getByTestId('login-page')).toBeVisible();
  await page.goto('/traces');
  await expect(page).toHaveURL(/\/login\?next=%2Ftraces/);
});

test('a viewer reads config but cannot save it', async ({ page, baseURL }) => {
  const viewer = viewerLogin();
  await openConsole(page, '/config', viewer);
  await expect(page.getByTestId('whoami')).toHaveAttribute('data-role', 'viewer');
  const item = page.getByTestId('config-item-VirtualService-default-reviews');
  await expect(item).toBeVisible({ timeout: 30_000 });
  await item.click();
  const editor = page.getByTestId('yaml-editor');
  await expect(editor).toHaveValue(/kind"?:\s*"?VirtualService/);
  await expect(page.getByTestId('save-config')).toBeDisabled();

  // The server refuses it too, even with the session's CSRF token and origin.
  const me = await (await page.request.get('/api/whoami')).json();
  expect(me.role).toBe('viewer');
  const answer = await page.request.put('/api/config/VirtualService/default/reviews', {
    headers: {
      'content-type': 'application/yaml',
      'x-csrf-token': me.csrf_token,
      origin: new URL(baseURL!).origin,
    },
    data: await editor.inputValue(),
  });
  expect(answer.status()).toBe(403);
  expect((await answer.json()).error).toContain('editor');

  // No canary slider moves for a viewer either.
  await page.getByTestId('nav-canary').click();
  await expect(page.getByTestId('slider-reviews-v3')).toBeDisabled();
});

test('an admin session writes only with the CSRF token', async ({ page, baseURL }) => {
  await logIn(page, '/config');
  const stored = await (await page.request.get('/api/config/VirtualService/default/reviews')).json();
  const me = await (await page.request.get('/api/whoami')).json();
  const origin = new URL(baseURL!).origin;
  const put = (headers: Record<string, string>) =>
    page.request.put('/api/config/VirtualService/default/reviews', { headers, data: stored.yaml });
  expect((await put({ 'content-type': 'text/plain', origin: 'http://evil.example' })).status()).toBe(403);
  expect((await put({ 'content-type': 'application/yaml', origin })).status()).toBe(403);
  expect(
    (await put({ 'content-type': 'application/yaml', origin: 'http://evil.example', 'x-csrf-token': me.csrf_token })).status(),
  ).toBe(403);
  expect((await put({ 'content-type': 'application/yaml', origin, 'x-csrf-token': me.csrf_token })).status()).toBe(200);
});
