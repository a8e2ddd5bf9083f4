// Reading the console the way a user does, through the data-* attributes
// the frontend puts on what it draws.
import { expect, type Locator, type Page } from '@playwright/test';
import * as fs from 'node:fs';

/** Edges of the graph from productpage to `targetApp` (optionally one version). */
export function edgesFromProductpage(page: Page, targetApp: string, targetVersion?: string): Locator {
  let selector = `[data-testid^="edge-"][data-source-app="productpage"][data-target-app="${targetApp}"]`;
  if (targetVersion) selector += `[data-target-version="${targetVersion}"]`;
  return page.locator(selector);
}

/** The `data-rps` of every matching edge (an empty list when none is drawn). */
export async function rpsOf(edges: Locator): Promise<number[]> {
  return edges.evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-rps'))));
}

export const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

export type Login = { user: string; password: string };

/** The demo's admin login, from its `demo.json` (LOUPE_DEMO_STATE, set by scripts/test-browser.sh). */
export function demoLogin(): Login {
  const file = process.env.LOUPE_DEMO_STATE;
  if (!file) throw new Error('LOUPE_DEMO_STATE is not set: point it at the running demo\'s demo.json');
  const state = JSON.parse(fs.readFileSync(file, 'utf8'));
  return state.console_login as Login;
}

/** A viewer the test script adds (`loupe user add viewer --role viewer`). */
export function viewerLogin(): Login {
  return {
    user: process.env.LOUPE_VIEWER_USER ?? 'viewer',
    password: process.env.LOUPE_VIEWER_PASSWORD ?? 'viewer-password',
  };
}

/** Fills in the login page (already open) and submits it. */
export async function submitLogin(page: Page, login: Login): Promise<void> {
  await page.getByTestId('login-user').fill(login.user);
  await page.getByTestId('login-password').fill(login.password);
  await page.getByTestId('login-submit').click();
}

/** Logs in like a user, through the login page, and lands on `path`. */
export async function logIn(page: Page, path: string, login: Login = demoLogin()): Promise<void> {
  await page.goto(`/login?next=${encodeURIComponent(path)}`);
  await submitLogin(page, login);
  await expect(page.getByTestId('whoami')).toContainText(login.user);
}

/** Logs in as the demo's admin, opens a page of the console and waits for
 * its WASM app to draw the nav bar. */
export async function openConsole(page: Page, path: string, login?: Login): Promise<void> {
  await logIn(page, path, login);
  await expect(page.getByTestId('nav-graph')).toBeVisible();
}
