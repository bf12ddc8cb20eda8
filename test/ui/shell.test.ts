// UI: the app frame in Chromium over web mode with the real CoreService — navigation, keyboard
// shortcuts, and a local terminal tab running a real shell through node-pty.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { screenshot } from './browser.js';
import { execSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { CoreService } from '../../src/service/core-service.js';
import { SessionStore } from '../../src/store/session-store.js';
import type { Page } from 'playwright-core';
import { openUi, type UiHarness } from './support.js';

let ui: UiHarness;
let service: CoreService;
let home: string;

beforeAll(async () => {
  home = mkdtempSync(join(tmpdir(), 'tsu-ui-shell-'));
  service = new CoreService({ store: new SessionStore(join(home, 'sessions')) });
  ui = await openUi(service);
});
afterAll(async () => {
  await ui?.close();
  await service?.close();
  if (home) rmSync(home, { recursive: true, force: true });
});


/** Drops a file of these bytes on the app's window, as a person drags one from their file manager. */
async function dropFile(page: Page, bytes: Buffer, name: string): Promise<void> {
  const b64 = bytes.toString('base64');
  // why: a string expression runs through CDP, so the app's CSP (no eval) stays on.
  const dt = await page.evaluateHandle(`(() => {
    const bin = atob(${JSON.stringify(b64)});
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    const dt = new DataTransfer();
    dt.items.add(new File([bytes], ${JSON.stringify(name)}));
    return dt;
  })()`);
  await page.dispatchEvent('main', 'drop', { dataTransfer: dt });
}

describe('app frame', () => {
  it('shows Connect with this machine and its node first', async () => {
    const { page } = ui;
    await page.getByTestId('target').first().waitFor();
    expect(await page.getByTestId('target').first().textContent()).toContain('This machine');
    await page.getByTestId('nodes').waitFor();
    expect(await page.getByTestId('nodes').textContent()).toMatch(/Ready/);
    expect(await page.getByTestId('nodes').textContent()).toContain(execSync('uname -r').toString().trim());
  });

  it('switches views with Ctrl+digits and focuses the filter with /', async () => {
    const { page } = ui;
    await page.keyboard.press('Control+5');
    await page.getByRole('heading', { name: 'Sessions' }).waitFor();
    await page.locator('body').click({ position: { x: 700, y: 500 } });
    await page.keyboard.press('/');
    await page.getByTestId('filter').waitFor();
    expect(await page.evaluate('document.activeElement?.getAttribute("data-testid")')).toBe('filter');
  });

  it('opens a .pcapng dropped on the window (uploaded to the server in web mode)', async () => {
    const { page } = ui;
    await dropFile(page, readFileSync(join('test', 'fixtures', 'pcapng', 'loopback-mix.pcapng')), 'dropped-capture.pcapng');
    await page.getByTestId('flow-row').first().waitFor({ timeout: 15_000 });
    expect(await page.getByTestId('session-name').textContent()).toContain('dropped-capture');
    const sessions = await service.listSessions();
    expect(sessions.some((s) => s.name.includes('dropped-capture') && s.flows > 0)).toBe(true);
    await page.getByTestId('sort-bytes').click();
    await expect.poll(async () => page.getByTestId('sort-bytes').getAttribute('aria-sort')).toBe('descending');
    const units: Record<string, number> = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };
    const bytes = async () =>
      (await page.locator('[data-testid=flow-row] span.num').allTextContents()).map((t) => {
        const [n, u] = t.trim().split(' ');
        return Number(n) * (units[u ?? 'B'] ?? 1);
      });
    await expect.poll(async () => { const b = await bytes(); return b.length > 1 && b.every((x, i) => i === 0 || x <= (b[i - 1] ?? 0)); }).toBe(true);
    expect(new Set(await bytes()).size).toBeGreaterThan(1);
  });

  it('opens a gzip-compressed capture dropped on the window, with the flows it holds', async () => {
    const { page } = ui;
    await dropFile(page, gzipSync(readFileSync(join('test', 'fixtures', 'pcapng', 'loopback-mix.pcapng'))), 'zipped-capture.pcapng.gz');
    await expect.poll(async () => page.getByTestId('session-name').textContent(), { timeout: 15_000 }).toContain('zipped-capture.pcapng.gz');
    const all = await service.listSessions();
    const zipped = all.find((s) => s.name.includes('zipped-capture'));
    const plain = all.find((s) => s.name.includes('dropped-capture'));
    expect(zipped?.flows).toBeGreaterThan(0);
    expect(zipped?.flows).toBe(plain?.flows);
    // a zstd one is refused at once, naming the command that decompresses it
    await dropFile(page, Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0]), 'packed.pcapng.zst');
    await expect.poll(async () => page.locator('.notice.error').allTextContents()).toContainEqual(expect.stringContaining('packed.pcapng.zst is compressed; Tapscope reads gzip-compressed captures and uncompressed ones: decompress it first (zstd -d)'));
    expect(ui.pageErrors).toEqual([]);
  });

  it("lists the filter language's fields and applies a picked one", async () => {
    const { page } = ui;
    await page.getByTestId('filter').fill('');
    await page.getByTestId('filter-fields').click();
    await page.getByRole('textbox', { name: 'Search fields' }).fill('plaintext captured on either');
    await page.getByRole('dialog', { name: 'Filter fields' }).getByRole('button').first().click();
    expect(await page.getByTestId('filter').inputValue()).toBe('tls.plaintext ');
    // a Wireshark name finds the field it reads as
    await page.getByTestId('filter-fields').click();
    await page.getByRole('textbox', { name: 'Search fields' }).fill('ip.addr');
    const found = page.getByRole('dialog', { name: 'Filter fields' }).getByRole('button');
    await expect.poll(async () => found.allTextContents()).toEqual([expect.stringMatching(/^ip ip either address; Wireshark: ip\.addr, ipv6\.addr$/)]);
    await page.getByTestId('filter-fields').click();
    await page.getByTestId('filter').press('Enter');
    await expect.poll(async () => page.getByTestId('flow-total').textContent()).toMatch(/^0 matching flows/);
    await expect.poll(async () => page.getByTestId('flow-scroller').textContent()).toContain('No flow matches the filter.');
  });

  it('runs `echo hi` in a local terminal tab', async () => {
    const { page } = ui;
    await page.click('[data-view=terminal]');
    await page.getByTestId('new-local-shell').click();
    const term = page.getByTestId('terminal').first();
    await term.waitFor();
    await page.locator('.xterm-helper-textarea').first().focus();
    await page.keyboard.type('echo hi-$((6*7))\n');
    await expect.poll(async () => (await page.locator('[data-testid=terminal] .xterm-rows').first().textContent()) ?? '', { timeout: 15_000 }).toContain('hi-42');
    await screenshot(page, 'terminal');
    expect(ui.pageErrors).toEqual([]);
  });
});
