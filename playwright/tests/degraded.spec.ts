// When the console's server cannot reach Postgres, every page shows a
// "degraded" banner naming it, and the banner goes away by itself once
// Postgres answers again. Postgres is made unreachable for real: the demo's
// postmaster and all its backends are stopped (SIGSTOP), so new and pooled
// connections hang, then resumed (SIGCONT).
import { test, expect } from '@playwright/test';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openConsole } from './helpers';

/** The demo's postmaster pid, from its data directory (LOCATION when relocated). */
function postmasterPid(): string {
  const state = process.env.LOUPE_DEMO_STATE;
  if (!state) throw new Error('LOUPE_DEMO_STATE is not set');
  // `loupe demo --home H` keeps its state in H/demo.json and its parts in H/demo/.
  const home0 = path.dirname(state);
  const root = [path.join(home0, 'demo', 'postgres'), path.join(home0, 'postgres')].find((d) => fs.existsSync(d));
  if (!root) throw new Error(`no postgres directory of the demo under ${home0}`);
  const location = path.join(root, 'LOCATION');
  const home = fs.existsSync(location) ? fs.readFileSync(location, 'utf8').trim() : root;
  return fs.readFileSync(path.join(home, 'data', 'postmaster.pid'), 'utf8').split('\n')[0].trim();
}

function signalPostgres(signal: 'STOP' | 'CONT'): void {
  const pid = postmasterPid();
  // Backends first when stopping (the postmaster would start new ones), last when resuming.
  if (signal === 'STOP') {
    execFileSync('pkill', [`-${signal}`, '-P', pid]);
    execFileSync('kill', [`-${signal}`, pid]);
  } else {
    execFileSync('kill', [`-${signal}`, pid]);
    execFileSync('pkill', [`-${signal}`, '-P', pid]);
  }
}

test('the console shows a degraded banner while Postgres is unreachable, and clears it', async ({ page }, testInfo) => {
  await openConsole(page, '/mesh');
  await expect(page.getByTestId('proxy-table')).toBeVisible({ timeout: 30_000 });
  const banner = page.getByTestId('degraded-banner');
  await expect(banner).toHaveCount(0);

  signalPostgres('STOP');
  try {
    await expect(banner).toBeVisible({ timeout: 30_000 });
    await expect(banner).toHaveAttribute('data-down', 'postgres');
    await expect(banner).toContainText('Postgres is unreachable');
    await page.screenshot({ path: testInfo.outputPath('degraded.png'), fullPage: true });
  } finally {
    signalPostgres('CONT');
  }
  await expect(banner).toHaveCount(0, { timeout: 60_000 });
  await page.screenshot({ path: testInfo.outputPath('recovered.png'), fullPage: true });
});
