// UI: an HTTP exchange the capture ended inside — a download whose body was still coming — is shown with the
// status of its response's head and marked unfinished in the flow's HTTP tab, and `http.unfinished` finds its flow;
// in Chromium over web mode with the real CoreService.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CaptureBuilder, tcpConversation } from '../unit/core-packet-builder.js';
import { openFileUi, type FileUi, type UiHarness } from './support.js';

let app: FileUi;
let ui: UiHarness;

/** Two HTTP flows: one whose second answer's body was still coming when the capture ended, one whole. */
function capture(home: string): string {
  const b = new CaptureBuilder();
  b.record({ t: 'capture', v: 1, mode: 'afpacket', reason: 'test', hostname: 'node-1' });
  tcpConversation(b, { ip: '10.9.1.1', port: 42001 }, { ip: '10.9.1.2', port: 80 },
    [Buffer.from('GET /small HTTP/1.1\r\nHost: files.test\r\n\r\n'), Buffer.from('GET /big.iso HTTP/1.1\r\nHost: files.test\r\n\r\n'), null],
    [Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'), Buffer.from('HTTP/1.1 206 Partial Content\r\nContent-Length: 100000\r\n\r\n'), Buffer.alloc(3000, 0x61)],
    { fin: false });
  tcpConversation(b, { ip: '10.9.1.1', port: 42002 }, { ip: '10.9.1.3', port: 80 },
    [Buffer.from('GET /whole HTTP/1.1\r\nHost: other.test\r\n\r\n')], [Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n')]);
  const path = join(home, 'unfinished.pcapng');
  writeFileSync(path, b.build());
  return path;
}

beforeAll(async () => {
  app = await openFileUi('tsu-unfinished-', capture);
  ({ ui } = app);
});

afterAll(async () => {
  await app?.close();
});

describe('an HTTP exchange the capture ended inside', () => {
  it('shows its status and marks it unfinished; the filter finds its flow', async () => {
    const { page } = ui;
    const rows = page.getByTestId('flow-row');
    const rowsAre = (n: number) => expect.poll(() => rows.count(), { timeout: 10_000 }).toBe(n);
    await rowsAre(2);
    await rows.nth(0).click();
    await page.getByTestId('tab-http').click();
    const exchanges = page.getByTestId('exchange');
    await expect.poll(() => exchanges.count(), { timeout: 10_000 }).toBe(2);
    expect(await exchanges.nth(0).textContent()).toContain('/small');
    expect(await exchanges.nth(0).getByTestId('exchange-unfinished').count()).toBe(0);
    expect(await exchanges.nth(1).textContent()).toContain('206');
    expect(await exchanges.nth(1).getByTestId('exchange-unfinished').textContent()).toBe('unfinished');
    await page.getByTestId('filter').fill('http.unfinished');
    await page.getByTestId('filter').press('Enter');
    await rowsAre(1);
    expect(await rows.nth(0).textContent()).toContain('10.9.1.2');
    expect(ui.pageErrors).toEqual([]);
  });
});
