// UI: the TLS libraries view of a capture whose connections were hooked at both ends (curl to node over loopback, openssl
// on both sides of most flows): each library's flows and bytes are the flows its filter lists, each counted once, with
// the sides as `tapscope libraries` counts them beside — in Chromium over web mode with the real CoreService.
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatBytes } from '../../renderer/src/lib/format.js';
import { screenshot } from './browser.js';
import { openFileUi, type FileUi } from './support.js';

const FIX = join(import.meta.dirname, '../fixtures/pcapng');
let app: FileUi;

beforeAll(async () => {
  app = await openFileUi('tsu-libraries-', (home) => {
    const file = join(home, 'ebpf-lo-hooks.pcapng');
    copyFileSync(join(FIX, 'ebpf-lo-hooks.pcapng'), file);
    return file;
  });
});

afterAll(async () => {
  await app?.close();
});

/** What the library's filter lists, as `tapscope flows --filter` does: its flows, their bytes, and those with plaintext on its side. */
async function listed(library: string): Promise<{ flows: number; bytes: number; plaintext: number }> {
  const sessionId = (await app.service.listSessions())[0]!.id;
  const { rows } = await app.service.queryFlows({ sessionId, filter: `tls.library == "${library}"`, offset: 0, limit: 10_000 });
  return {
    flows: rows.length,
    bytes: rows.reduce((n, f) => n + f.bytes, 0),
    plaintext: rows.filter((f) => [f.tls!.client, f.tls!.server].some((v) => v?.library === library && v.plaintext)).length,
  };
}

describe('the TLS libraries view', () => {
  it("counts a library's flows and bytes once, as its filter lists them, and its client and server sides apart", async () => {
    const { page } = app.ui;
    await page.click('[data-view=libraries]');
    const row = (library: string) => page.locator(`[data-testid=library-reasons][data-library=${library}]`);
    await row('openssl').waitFor({ timeout: 15_000 });
    const cells = async (library: string) => row(library).locator('td').allTextContents();
    for (const library of ['openssl', 'gnutls']) {
      const want = await listed(library);
      const [, , flows, plaintext, bytes] = (await cells(library)).map((t) => t.trim());
      expect([flows, plaintext], library).toEqual([String(want.flows), String(want.plaintext)]);
      expect(await row(library).locator('td').nth(4).getAttribute('title'), library).toBe(`${want.bytes.toLocaleString('en-US')} bytes`);
      expect(bytes, library).toBe(formatBytes(want.bytes));
      expect(await page.locator(`[data-testid=library-bar][data-library=${library}] .val`).first().textContent(), library)
        .toBe(`${want.flows} (${want.plaintext} PT)`);
    }
    // openssl made both sides of 7 of its 8 flows: 8 flows, 15 flow sides, and never more bytes than the session holds
    expect(await listed('openssl')).toEqual({ flows: 8, bytes: 32022, plaintext: 7 });
    expect(await row('openssl').getByTestId('library-side').allTextContents()).toEqual(['client 7 · 7 plaintext', 'server 8 · 7 plaintext']);
    expect(await row('gnutls').getByTestId('library-side').allTextContents()).toEqual(['client 1 · 0 plaintext']);
    expect((await page.getByTestId('library-totals').textContent())!.replace(/\s+/g, ' ')).toBe('8 TLS flows · 7 with plaintext captured');
    // the reasons say whose side lacked the plaintext
    expect(await row('openssl').locator('.reason').allTextContents()).toEqual([expect.stringMatching(/^1 server: openssl hook attached but saw no reads or writes/)]);
    await screenshot(page, 'libraries-both-sides');
    // a click lists the flows the row counted
    await row('openssl').getByRole('button', { name: 'openssl' }).click();
    await expect.poll(async () => page.getByTestId('flow-total').textContent(), { timeout: 10_000 }).toMatch(/^\s*8 matching flows\s*$/);
    expect(app.ui.pageErrors).toEqual([]);
  });
});
