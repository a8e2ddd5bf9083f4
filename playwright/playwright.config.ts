// Browser tests of the Loupe console, in the system's Chromium.
// Run against a running console (e.g. `loupe demo`):
//   cd playwright && LOUPE_URL=http://127.0.0.1:20001 npx playwright test
// Browsers are never downloaded: Chromium comes from the OS (/usr/bin/chromium,
// or CHROMIUM_PATH).
import { defineConfig } from '@playwright/test';

const baseURL = process.env.LOUPE_URL ?? 'http://127.0.0.1:20001';

export default defineConfig({
  testDir: './tests',
  // The canary test waits for a traffic shift to show in the graph's window.
  timeout: 240_000,
  expect: { timeout: 30_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  outputDir: 'test-results',
  reporter: [['list'], ['html', { open: 'never', outputFolder: 'playwright-report' }]],
  use: {
    baseURL,
    viewport: { width: 1440, height: 900 },
    screenshot: 'on',
    trace: 'retain-on-failure',
    video: 'off',
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    },
  },
  projects: [{ name: 'chromium', use: { browserName: 'chromium' } }],
});
