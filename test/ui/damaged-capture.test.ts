// UI: a capture file damaged in the middle opens with the flows before the damage, and the app says so on
// opening it (as Wireshark does), in Chromium over web mode with the real CoreService.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseBuffer } from '../../src/pcapng/reader.js';
import { decodePacket } from '../../src/flows/decode.js';
import { CaptureBuilder, tcpConversation } from '../unit/core-packet-builder.js';
import { openFileUi, type FileUi } from './support.js';

let app: FileUi;

beforeAll(async () => {
  app = await openFileUi('tsu-damaged-');
});

afterAll(async () => {
  await app?.close();
});

/** Six HTTP flows, one after another; the fourth flow's first packet block gets an undefined interface id. */
function damagedCapture(home: string): { path: string; offset: number } {
  const b = new CaptureBuilder();
  for (let i = 0; i < 6; i++) {
    tcpConversation(b, { ip: '10.9.0.1', port: 41000 + i }, { ip: '10.9.0.2', port: 80 },
      [Buffer.from(`GET /flow-${i} HTTP/1.1\r\nHost: damaged.test\r\n\r\n`)], [Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n')]);
  }
  const bytes = b.build();
  const fourth = parseBuffer(bytes).find((x) => x.type === 'epb' && decodePacket(x.iface.linkType, x.data)?.srcPort === 41003)!;
  bytes.writeUInt32LE(7, fourth.offset + 8);
  const path = join(home, 'damaged.pcapng');
  writeFileSync(path, bytes);
  return { path, offset: fourth.offset };
}

describe('opening a damaged capture', () => {
  it('lists the flows before the damage and warns, naming the offset, until dismissed', async () => {
    const { ui } = app;
    const { page } = ui;
    const { path, offset } = damagedCapture(app.home);
    const open = page.getByTestId('open-path');
    await open.waitFor({ timeout: 10_000 });
    await open.fill(path);
    await page.locator('form.open button[type=submit]').click();
    await page.getByTestId('flow-row').first().waitFor({ timeout: 30_000 });
    await expect.poll(() => page.getByTestId('flow-row').count(), { timeout: 10_000 }).toBe(3);
    const warn = page.locator('.notice.warn');
    await warn.waitFor({ timeout: 10_000 });
    expect(await warn.textContent()).toContain(`damaged.pcapng: ${path} is damaged: enhanced packet block refers to interface 7 but the section defines 1 at offset ${offset}; it was read up to that block, nothing from it on`);
    // a warning stays (an info notice goes after 5 s)
    await page.waitForTimeout(5500);
    expect(await warn.count()).toBe(1);
    await warn.getByRole('button', { name: 'Dismiss' }).click();
    expect(await page.locator('.notice.warn').count()).toBe(0);
    // the header keeps saying it, with the note on hover
    expect(await page.getByTestId('losses').textContent()).toContain('incomplete');
    expect(await page.getByTestId('losses').getAttribute('title')).toContain(`is damaged: enhanced packet block refers to interface 7 but the section defines 1 at offset ${offset}`);
    expect(ui.pageErrors).toEqual([]);
  });
});
