// A 50,000-span trace, sent over OTLP/HTTP to the demo's collector like any
// OpenTelemetry SDK would, opens in the console without a DOM node per
// span: the timeline draws only the rows near its viewport (also after a
// scroll deep into the trace), the flame graph is one canvas. The times it
// took are printed.
import { test, expect } from '@playwright/test';
import { randomBytes } from 'node:crypto';
import { openConsole } from './helpers';

const SPANS = 50_000;
const SERVICES = ['frontend', 'cart', 'checkout', 'payment', 'inventory'];
/** Under the collector's 10,000 spans per export request. */
const BATCH = 5_000;

type OtlpSpan = {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
};

/** root → 100 calls → 499 leaves each, leaves one after another inside their call. */
function bigTrace(traceId: string): OtlpSpan[][] {
  const t0 = BigInt(Date.now() - 30_000) * 1_000_000n;
  const ms = (n: number) => t0 + BigInt(Math.round(n * 1_000_000));
  const id = (n: number) => n.toString(16).padStart(16, '0');
  const bySvc: OtlpSpan[][] = SERVICES.map(() => []);
  const push = (svc: number, s: OtlpSpan) => bySvc[svc].push(s);
  const calls = 100;
  const leaves = 499; // the last call gets one fewer: 50,000 in all
  push(0, { traceId, spanId: id(1), name: 'GET /checkout', kind: 2, startTimeUnixNano: String(ms(0)), endTimeUnixNano: String(ms(calls * 10 + 5)) });
  let next = 2;
  for (let c = 0; c < calls; c++) {
    const call = id(next++);
    const start = 1 + c * 10;
    push(1 + (c % 4), { traceId, spanId: call, parentSpanId: id(1), name: `call ${c}`, kind: 3, startTimeUnixNano: String(ms(start)), endTimeUnixNano: String(ms(start + 9)) });
    for (let l = 0; l < leaves && next <= SPANS; l++) {
      const ls = start + (l * 9) / leaves;
      push(1 + (c % 4), { traceId, spanId: id(next++), parentSpanId: call, name: `step ${l}`, kind: 1, startTimeUnixNano: String(ms(ls)), endTimeUnixNano: String(ms(ls + 9 / leaves)) });
    }
  }
  expect(next - 1).toBe(SPANS);
  return bySvc;
}

test('a 50,000-span trace opens without a DOM node per span', async ({ page, request }, testInfo) => {
  const otlp = process.env.LOUPE_OTLP_HTTP;
  if (!otlp) throw new Error('LOUPE_OTLP_HTTP is not set: the demo collector\'s OTLP/HTTP address (scripts/test-browser.sh sets it)');
  const traceId = randomBytes(16).toString('hex');
  const bySvc = bigTrace(traceId);
  const sent = Date.now();
  for (const [svc, spans] of bySvc.entries()) {
    for (let i = 0; i < spans.length; i += BATCH) {
      const body = {
        resourceSpans: [
          {
            resource: { attributes: [{ key: 'service.name', value: { stringValue: SERVICES[svc] } }] },
            scopeSpans: [{ scope: { name: 'big-trace.spec' }, spans: spans.slice(i, i + BATCH) }],
          },
        ],
      };
      const r = await request.post(`${otlp}/v1/traces`, { data: body, headers: { 'content-type': 'application/json' } });
      expect(r.ok(), `OTLP export answered ${r.status()}: ${await r.text()}`).toBe(true);
    }
  }
  console.log(`sent ${SPANS} spans over OTLP/HTTP in ${Date.now() - sent} ms`);

  await openConsole(page, '/traces');
  // Stored: the console's API returns all of them.
  await expect
    .poll(async () => {
      const r = await page.request.get(`/api/traces/${traceId}`);
      return r.ok() ? (await r.json()).spans.length : 0;
    }, { timeout: 90_000, intervals: [2_000] })
    .toBe(SPANS);

  const opened = Date.now();
  await page.goto(`/traces/${traceId}`);
  const view = page.getByTestId('trace-view');
  await expect(view).toHaveAttribute('data-span-count', String(SPANS), { timeout: 60_000 });
  await expect(page.getByTestId('span-row').first()).toBeVisible();
  console.log(`timeline of ${SPANS} spans shown ${Date.now() - opened} ms after navigation`);
  const elements = () => page.evaluate(() => document.querySelectorAll('*').length);
  expect(await elements()).toBeLessThan(3_000);
  expect(await page.getByTestId('span-row').count()).toBeLessThan(100);
  await expect(view).not.toHaveAttribute('data-critical-spans', '0');
  await page.screenshot({ path: testInfo.outputPath('big-trace-timeline.png') });

  // Deep into the trace: other rows, still only a window of them.
  const first = await page.getByTestId('span-row').first().getAttribute('data-span-id');
  const scrolled = Date.now();
  await page.locator('.timeline-body').evaluate((el) => {
    el.scrollTop = el.scrollHeight / 2;
    el.dispatchEvent(new Event('scroll'));
  });
  await expect(page.getByTestId('span-row').first()).not.toHaveAttribute('data-span-id', first ?? '');
  console.log(`scrolled to span ${SPANS / 2} in ${Date.now() - scrolled} ms`);
  expect(await page.getByTestId('span-row').count()).toBeLessThan(100);
  await page.screenshot({ path: testInfo.outputPath('big-trace-scrolled.png') });

  // The flame graph: one canvas for every bar.
  const drawn = Date.now();
  await page.getByTestId('trace-view-flamegraph').click();
  const flame = page.getByTestId('flame-graph');
  await expect(flame).toHaveAttribute('data-bar-count', String(SPANS));
  console.log(`flame graph of ${SPANS} spans drawn in ${Date.now() - drawn} ms`);
  expect(await elements()).toBeLessThan(3_000);
  await page.screenshot({ path: testInfo.outputPath('big-trace-flamegraph.png') });
});
