// UI: an HTTP/2 request whose header block names one 4000-byte table entry 16,000 times (an HPACK bomb) shows 64 KiB
// of its headers in the flow's HTTP tab and says how many more there were; its answer, within the cap, shows whole
// with nothing said. In Chromium over web mode with the real CoreService.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { H2_PREFACE } from '../../src/dissect/http2.js';
import { CaptureBuilder, tcpConversation } from '../unit/core-packet-builder.js';
import { SETTINGS, addNew, frame, indexed } from '../unit/export-h2-frames.js';
import { openFileUi, type FileUi, type UiHarness } from './support.js';

let app: FileUi;
let ui: UiHarness;

function capture(home: string): string {
  const big = 'a'.repeat(4000);
  const b = new CaptureBuilder();
  b.record({ t: 'capture', v: 1, mode: 'afpacket', reason: 'test', hostname: 'node-1' });
  tcpConversation(b, { ip: '10.9.2.1', port: 42001 }, { ip: '10.9.2.2', port: 80 },
    [Buffer.concat([H2_PREFACE, SETTINGS, frame(1, 0x5, 1, Buffer.concat([indexed(2), indexed(4), indexed(6), addNew('x', big), Buffer.alloc(16_000, 0xbe)]))]), null],
    [null, Buffer.concat([SETTINGS, frame(1, 0x5, 1, Buffer.concat([indexed(8), addNew('y', 'z')]))])]);
  const path = join(home, 'hpack-bomb.pcapng');
  writeFileSync(path, b.build());
  return path;
}

beforeAll(async () => {
  app = await openFileUi('tsu-hdrdrop-', capture);
  ({ ui } = app);
});

afterAll(async () => {
  await app?.close();
});

describe('headers past 64 KiB', () => {
  it('the request shows the headers kept and how many more there were; the answer, whole, says nothing', async () => {
    const { page } = ui;
    const rows = page.getByTestId('flow-row');
    await expect.poll(() => rows.count(), { timeout: 10_000 }).toBe(1);
    await rows.nth(0).click();
    await page.getByTestId('tab-http').click();
    const exchange = page.getByTestId('exchange');
    await expect.poll(() => exchange.count(), { timeout: 10_000 }).toBe(1);
    const dropped = exchange.getByTestId('headers-dropped');
    expect(await dropped.count()).toBe(1);
    const text = (await dropped.textContent())!;
    const n = Number(/^(\d+) more headers not kept: past 64 KiB of headers/.exec(text)?.[1]);
    // (the rows shown and the ones counted make the request's 16,004)
    const shown = await exchange.locator('section').nth(0).locator('tr').count();
    expect(shown + n).toBe(4 + 16_000);
    expect(await exchange.locator('section').nth(1).locator('tr').count()).toBe(2);
    expect(ui.pageErrors).toEqual([]);
  });
});
