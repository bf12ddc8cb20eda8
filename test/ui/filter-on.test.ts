// UI: "Apply as filter" from the flow detail, as in Wireshark — a value's funnel narrows the filter in effect to
// it, Alt+click excludes it, an HTTP exchange's host too — in Chromium over web mode with the real CoreService.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CaptureBuilder, tcpConversation } from '../unit/core-packet-builder.js';
import { openFileUi, type FileUi, type UiHarness } from './support.js';

let app: FileUi;
let ui: UiHarness;

/** Four HTTP flows: curl to two servers (two hosts), wget to one, and an unattributed one. */
function capture(home: string): string {
  const b = new CaptureBuilder();
  b.record({ t: 'capture', v: 1, mode: 'afpacket', reason: 'test', hostname: 'node-1' });
  const flows = [
    { port: 41001, server: '10.9.0.2', host: 'shop.test', comm: 'curl' },
    { port: 41002, server: '10.9.0.3', host: 'cart.test', comm: 'curl' },
    { port: 41003, server: '10.9.0.2', host: 'shop.test', comm: 'wget' },
    { port: 41004, server: '10.9.0.4', host: 'misc.test', comm: null },
  ];
  for (const [i, x] of flows.entries()) {
    const client = { ip: '10.9.0.1', port: x.port };
    const server = { ip: x.server, port: 80 };
    if (x.comm) b.record({ t: 'conn', proto: 'tcp', local: client, remote: server, role: 'client', pid: 100 + i, comm: x.comm });
    tcpConversation(b, client, server, [Buffer.from(`GET /${i} HTTP/1.1\r\nHost: ${x.host}\r\n\r\n`)], [Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n')]);
  }
  const path = join(home, 'filter-on.pcapng');
  writeFileSync(path, b.build());
  return path;
}

beforeAll(async () => {
  app = await openFileUi('tsu-filter-on-', capture);
  ({ ui } = app);
});

afterAll(async () => {
  await app?.close();
});

describe('apply as filter from the detail', () => {
  it('narrows to a value, excludes another with Alt+click, and narrows to an exchange\'s host', async () => {
    const { page } = ui;
    const rows = page.getByTestId('flow-row');
    // (polled through locators: the app's CSP refuses the eval a page-side wait function needs)
    const rowsAre = (n: number) => expect.poll(() => rows.count(), { timeout: 10_000 }).toBe(n);
    const filterIs = (text: string) => expect.poll(() => page.getByTestId('filter').inputValue(), { timeout: 10_000 }).toBe(text);
    await rowsAre(4);
    // the first flow is curl's: its process's funnel
    await rows.nth(0).click();
    await page.getByTestId('detail').waitFor();
    const funnel = (term: string) => page.locator(`[data-testid="detail"] [data-testid="filter-on"][data-term='${term}']`);
    await funnel('process.comm == "curl"').click();
    await filterIs('process.comm == "curl"');
    await rowsAre(2);
    // excluding the selected flow's destination (10.9.0.2:80) leaves curl's other flow
    await rows.nth(0).click();
    await page.getByTestId('detail').waitFor();
    await funnel('dst.ip == 10.9.0.2 && dst.port == 80').click({ modifiers: ['Alt'] });
    await filterIs('(process.comm == "curl") && !(dst.ip == 10.9.0.2 && dst.port == 80)');
    await rowsAre(1);
    expect(await rows.nth(0).textContent()).toContain('10.9.0.3');
    // from scratch: the HTTP tab's host funnel of a shop.test flow gives the two shop.test flows
    await page.getByTestId('filter').fill('');
    await page.getByTestId('filter').press('Enter');
    await rowsAre(4);
    await rows.nth(2).click();
    await page.getByTestId('tab-http').click();
    await page.getByTestId('exchange').first().waitFor();
    await page.locator(`[data-testid="exchange"] [data-testid="filter-on"]`).click();
    await filterIs('http.host == "shop.test"');
    await rowsAre(2);
    expect(ui.pageErrors).toEqual([]);
  });
});
