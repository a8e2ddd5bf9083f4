// Reading the console the way a user does, through the data-* attributes
// the frontend puts on what it draws.
import { expect, type Locator, type Page } from '@playwright/test';

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

/** Opens a page of the console and waits for its WASM app to draw the nav bar. */
export async function openConsole(page: Page, path: string): Promise<void> {
  await page.goto(path);
  await expect(page.getByTestId('nav-graph')).toBeVisible();
}
