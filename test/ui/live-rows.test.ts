// UI: the rows of a live capture follow their flows, and so do an open detail and the TLS libraries view. A listed
// flow changes without the flow count changing (plaintext from a hook record that arrives after its ClientHello, a
// new request); the table and the detail show it. Also: the detail closes, the table and the connect view fit
// windows down to 1024 pixels, Follow, sorting. In Chromium over web mode, with the real CoreService and a stand-in
// target whose node stream the test writes.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CoreService } from '../../src/service/core-service.js';
import { SessionStore } from '../../src/store/session-store.js';
import { CaptureBuilder, fixtureClientHello, tcpConversation } from '../unit/core-packet-builder.js';
import { standInTarget } from '../lib/standin-target.js';
import { openUi, type UiHarness } from './support.js';

let home: string;
let service: CoreService;
let ui: UiHarness;
const t = standInTarget();
const stream = new PassThrough();
const b = new CaptureBuilder();
const client = { ip: '10.44.0.1', port: 41000 };
const server = { ip: '10.44.0.2', port: 443 };
// (long enough that a narrow window cuts it short in the header)
const CAPTURE_FILTER = 'tcp port 443 and not host 10.0.0.5 and not (udp port 53 or icmp)';

beforeAll(async () => {
  home = mkdtempSync(join(tmpdir(), 'tsu-live-rows-'));
  service = new CoreService({ store: new SessionStore(join(home, 'sessions')), createTarget: () => t.target, countersIntervalMs: 200 });
  const s = await service.startCapture({ target: 'local', mode: 'ebpf', ifaces: [], captureFilter: CAPTURE_FILTER });
  t.handlers().onStream('node-1', stream);
  b.record({ t: 'capture', v: 1, mode: 'ebpf', requestedMode: 'auto', reason: 'auto', hostname: 'node-1' });
  tcpConversation(b, client, server, [fixtureClientHello()], []);
  stream.write(b.take());
  ui = await openUi(service, { openSessionId: s.id });
});

afterAll(async () => {
  stream.end();
  await ui?.close().catch(() => undefined);
  await service?.close().catch(() => undefined);
  if (home) rmSync(home, { recursive: true, force: true });
});

describe('live rows', () => {
  it('shows the plaintext a hook record brings to a listed flow after its ClientHello, though no flow was added', async () => {
    const { page } = ui;
    const row = page.getByTestId('flow-row').first();
    await row.waitFor({ timeout: 30_000 });
    expect(await page.getByTestId('flow-row').count()).toBe(1);
    const badge = row.getByTestId('tls-badge');
    await expect.poll(() => badge.getAttribute('data-plaintext'), { timeout: 10_000 }).toBe('no');
    // (past the page's first loads, several counters later: what changes the row from here on is the live update)
    await new Promise((r) => setTimeout(r, 1500));
    expect(await badge.getAttribute('data-plaintext')).toBe('no');
    // the client's hook record comes after the ClientHello (as it does: the helper defers a record until it knows the
    // connection), with the request it carried; the flow count stays 1
    b.tls(client, server, 'out', Buffer.from('GET /late HTTP/1.1\r\nHost: api.test\r\n\r\n'), { pid: 77, comm: 'curl', lib: 'openssl' });
    stream.write(b.take());
    await expect.poll(() => badge.getAttribute('data-plaintext'), { timeout: 15_000 }).toBe('yes');
    expect(await row.getByTestId('pt-mark').getAttribute('class')).not.toMatch(/\bother\b/);
    expect(await page.getByTestId('flow-row').count()).toBe(1);
    expect(ui.pageErrors).toEqual([]);
  }, 60_000);
});

describe('the detail pane', () => {
  it('opens on a row and closes with its close button and with Escape', async () => {
    const { page } = ui;
    const row = page.getByTestId('flow-row').first();
    for (const close of ['button', 'Escape'] as const) {
      await row.click();
      await page.getByTestId('detail').waitFor({ timeout: 10_000 });
      // the table narrows beside the pane, and its last column (bytes) and the verdict still fit in it, down to a
      // 1024-pixel window
      for (const width of [1440, 1280, 1024]) {
        await page.setViewportSize({ width, height: 900 });
        const table = await page.getByTestId('flow-scroller').boundingBox();
        for (const cell of [row.locator('.num'), row.getByTestId('tls-badge')]) {
          const box = await cell.boundingBox();
          expect(box!.x + box!.width, `${width} px`).toBeLessThanOrEqual(table!.x + table!.width);
        }
      }
      if (close === 'button') await page.getByRole('button', { name: 'Close detail' }).click();
      else await page.getByTestId('flow-scroller').press('Escape');
      await expect.poll(() => page.getByTestId('detail').count(), { timeout: 5_000 }).toBe(0);
    }
    // without the pane, in windows between the layouts' widths
    for (const width of [1180, 1024, 900]) {
      await page.setViewportSize({ width, height: 900 });
      const table = await page.getByTestId('flow-scroller').boundingBox();
      const bytes = await row.locator('.num').boundingBox();
      expect(bytes!.x + bytes!.width, `${width} px`).toBeLessThanOrEqual(table!.x + table!.width);
    }
    await page.setViewportSize({ width: 1440, height: 900 });
  });
});

describe('the detail of a live flow', () => {
  it('follows the flow: a request that arrives while it is open is counted and listed', async () => {
    const { page } = ui;
    await page.getByTestId('flow-row').first().click();
    const http = page.getByTestId('tab-http');
    await expect.poll(async () => (await http.textContent())?.trim(), { timeout: 10_000 }).toBe('HTTP 1');
    b.tls(client, server, 'out', Buffer.from('GET /while-open HTTP/1.1\r\nHost: api.test\r\n\r\n'), { pid: 77, comm: 'curl', lib: 'openssl' });
    stream.write(b.take());
    await expect.poll(async () => (await http.textContent())?.trim(), { timeout: 15_000 }).toBe('HTTP 2');
    await http.click();
    await expect.poll(async () => (await page.getByTestId('detail').textContent()) ?? '', { timeout: 5_000 }).toContain('/while-open');
    // (a path too long for the pane is cut with an ellipsis; its whole text is on hover)
    expect(await page.getByTestId('exchange-path').filter({ hasText: '/while-open' }).getAttribute('title')).toBe('api.test/while-open');
  });

  it('offers to read the Stream tab again when packets or plaintext came since it was read', async () => {
    const { page } = ui;
    await page.getByTestId('flow-row').first().click();
    await page.getByTestId('tab-stream').click();
    const turns = async () => page.getByTestId('turn').evaluateAll((els) => els.map((e) => `${e.getAttribute('data-dir')} ${e.textContent}`));
    await expect.poll(turns, { timeout: 10_000 }).toEqual(['c2s GET /late HTTP/1.1\nHost: api.test\n\nGET /while-open HTTP/1.1\nHost: api.test\n\n']);
    expect(await page.getByTestId('stream-since').count()).toBe(0);
    // the response: its ciphertext on the wire and the client's read of it
    b.tcp({ src: server.ip, dst: client.ip, sport: server.port, dport: client.port, seq: 9000, ack: 2000, flags: 0x18, payload: Buffer.alloc(90, 0x17) });
    b.tls(server, client, 'in', Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'), { pid: 77, comm: 'curl', lib: 'openssl' });
    stream.write(b.take());
    await expect.poll(async () => (await page.getByTestId('stream-since').textContent()) ?? '', { timeout: 15_000 }).toMatch(/^\s*1 new packet since this was read\s*Reload\s*$/);
    // (what was read stays until asked for again)
    expect(await turns()).toHaveLength(1);
    await page.getByTestId('stream-reload').click();
    await expect.poll(turns, { timeout: 10_000 }).toEqual([
      'c2s GET /late HTTP/1.1\nHost: api.test\n\nGET /while-open HTTP/1.1\nHost: api.test\n\n', 's2c HTTP/1.1 200 OK\nContent-Length: 2\n\nok',
    ]);
    expect(await page.getByTestId('stream-since').count()).toBe(0);
    await page.getByRole('tab', { name: 'Overview' }).click();
    expect(ui.pageErrors).toEqual([]);
  });
});

describe('a 1024-pixel window', () => {
  it('fits the connect view: the capture file form is inside the window, not cut at its edge', async () => {
    const { page } = ui;
    await page.setViewportSize({ width: 1024, height: 760 });
    try {
      await page.getByText('Connect', { exact: true }).first().click();
      const open = page.getByTestId('open-path');
      await open.waitFor({ timeout: 10_000 });
      const button = page.locator('form.open button[type=submit]');
      for (const el of [open, button]) {
        const box = await el.boundingBox();
        expect(box!.x + box!.width).toBeLessThanOrEqual(1024);
      }
    } finally {
      await page.setViewportSize({ width: 1440, height: 900 });
      await page.getByText('Flows', { exact: true }).first().click();
    }
  });
});

describe('a narrow window', () => {
  it('wraps the header: nothing drawn over anything else, every button inside the window, the capture filter shown', async () => {
    const { page } = ui;
    const header = page.locator('header.topbar');
    try {
      for (const width of [1024, 800, 700]) {
        await page.setViewportSize({ width, height: 800 });
        await expect.poll(() => page.getByTestId('stop-capture').isVisible()).toBe(true);
        // the header's items: the title's, the counters' and the buttons
        const items = await header.locator('.title > *, .counters > :not(.actions), .actions > *').evaluateAll((els) => els.map((e) => {
          const r = e.getBoundingClientRect();
          return { text: e.textContent!.trim().replace(/\s+/g, ' '), left: r.left, right: r.right, top: r.top, bottom: r.bottom };
        }));
        expect(items.length, `${width} px`).toBeGreaterThanOrEqual(9);
        for (const [i, a] of items.entries()) {
          expect(a.right, `${width} px: ${a.text}`).toBeLessThanOrEqual(width);
          for (const b of items.slice(i + 1)) {
            const apart = a.right <= b.left + 0.5 || b.right <= a.left + 0.5 || a.bottom <= b.top + 0.5 || b.bottom <= a.top + 0.5;
            expect(apart, `${width} px: "${a.text}" and "${b.text}" overlap`).toBe(true);
          }
        }
        // each button is the element at its middle: not covered, and takes the click
        for (const id of ['stop-capture', 'open-wireshark', 'add-keylog']) {
          const hit = await page.getByTestId(id).evaluate((el) => {
            const r = el.getBoundingClientRect();
            const at = el.ownerDocument.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
            return at !== null && (at === el || el.contains(at));
          });
          expect(hit, `${width} px: ${id}`).toBe(true);
        }
        // the capture filter: cut short when it must be, never to its label alone, and whole in the pill's title
        const pill = page.getByTestId('capture-filter');
        expect((await pill.boundingBox())!.width, `${width} px`).toBeGreaterThanOrEqual(120);
        expect(await pill.getAttribute('title'), `${width} px`).toMatch(new RegExp(`^filter: ${CAPTURE_FILTER.replace(/[()]/g, '\\$&')}\n`));
      }
    } finally {
      await page.setViewportSize({ width: 1440, height: 900 });
    }
    expect(ui.pageErrors).toEqual([]);
  });
});

describe('Follow', () => {
  it('keeps the newest flows in view as they arrive, and leaves the scroll alone when off', async () => {
    const { page } = ui;
    const scroller = page.getByTestId('flow-scroller');
    const atEnd = (): Promise<boolean> => scroller.evaluate((el) => el.scrollTop > 0 && el.scrollTop + el.clientHeight >= el.scrollHeight - 30);
    const more = (from: number, n: number): void => {
      for (let i = 0; i < n; i++) b.udp({ src: '10.44.1.1', dst: '10.44.1.2', sport: from + i, dport: 53, payload: Buffer.from('q') });
      stream.write(b.take());
    };
    // off: 150 new flows, the view stays at the top
    more(20000, 150);
    await expect.poll(async () => (await page.getByTestId('flow-total').textContent()) ?? '', { timeout: 15_000 }).toMatch(/^151\s+flows/);
    expect(await scroller.evaluate((el) => el.scrollTop)).toBe(0);
    // on: the view goes to the end, and stays there as more arrive
    await page.getByLabel('Follow').check();
    await expect.poll(atEnd, { timeout: 10_000 }).toBe(true);
    more(21000, 150);
    await expect.poll(async () => (await page.getByTestId('flow-total').textContent()) ?? '', { timeout: 15_000 }).toMatch(/^301\s+flows/);
    await expect.poll(atEnd, { timeout: 10_000 }).toBe(true);
    await expect.poll(async () => (await scroller.textContent()) ?? '', { timeout: 10_000 }).toContain('10.44.1.2:53');
    await page.getByLabel('Follow').uncheck();
  });
});

describe('sorting', () => {
  it('orders by bytes, largest first, then smallest first, and back by time', async () => {
    const { page } = ui;
    const firstDst = async (): Promise<string> => (await page.getByTestId('flow-row').first().textContent()) ?? '';
    await page.getByTestId('sort-bytes').click();
    await expect.poll(() => page.getByTestId('sort-bytes').getAttribute('aria-sort')).toBe('descending');
    // (the TLS flow, with its handshake, is the largest of 301; the one-packet DNS queries the smallest)
    await expect.poll(firstDst, { timeout: 10_000 }).toContain('10.44.0.2:443');
    await page.getByTestId('sort-bytes').click();
    await expect.poll(() => page.getByTestId('sort-bytes').getAttribute('aria-sort')).toBe('ascending');
    await expect.poll(firstDst, { timeout: 10_000 }).toContain('10.44.1.2:53');
    await page.getByTestId('sort-time').click();
    await expect.poll(() => page.getByTestId('sort-time').getAttribute('aria-sort')).toBe('ascending');
    await expect.poll(firstDst, { timeout: 10_000 }).toContain('10.44.0.2:443');
  });
});

describe('the TLS libraries view of a live capture', () => {
  it('grows with the capture without a refresh', async () => {
    const { page } = ui;
    await page.getByText('TLS libraries', { exact: true }).first().click();
    const flowsOf = (lib: string) => page.locator(`[data-testid=library-reasons][data-library=${lib}] td.num`).first().textContent();
    await expect.poll(() => flowsOf('openssl'), { timeout: 10_000 }).toBe('1');
    // a second connection with the same ClientHello
    tcpConversation(b, { ip: client.ip, port: client.port + 1 }, server, [fixtureClientHello()], []);
    stream.write(b.take());
    await expect.poll(() => flowsOf('openssl'), { timeout: 15_000 }).toBe('2');
    await page.getByText('Flows', { exact: true }).first().click();
  });
});

describe('a node that loses its stream', () => {
  it('shows in the header as reconnecting, then as failed with the reason on hover', async () => {
    const { page } = ui;
    const chip = page.getByTestId('node-chip').filter({ hasText: 'node-1' });
    await expect.poll(() => chip.getAttribute('data-phase'), { timeout: 10_000 }).not.toMatch(/failed|reconnecting/);
    expect(await chip.textContent()).not.toMatch(/failed|reconnecting/);
    t.handlers().onStatus({ node: 'node-1', phase: 'reconnecting', message: 'SSH connection lost; retrying in 2 s' });
    await expect.poll(async () => (await chip.textContent()) ?? '', { timeout: 10_000 }).toContain('reconnecting');
    expect(await chip.getAttribute('title')).toBe('node-1: reconnecting — SSH connection lost; retrying in 2 s');
    t.handlers().onStatus({ node: 'node-1', phase: 'failed', error: { code: 'E_HELPER_EXITED', message: 'the helper exited with status 4' } });
    await expect.poll(async () => (await chip.textContent()) ?? '', { timeout: 10_000 }).toContain('failed');
    expect(await chip.getAttribute('title')).toBe('node-1: failed — the helper exited with status 4');
    expect(await chip.getAttribute('class')).toMatch(/\bbad\b/);
  });
});

describe('the hex tab', () => {
  it('fits its dump in the detail pane, 16 bytes a line where they fit and 8 where not', async () => {
    const { page } = ui;
    try {
      for (const width of [1440, 1024]) {
        await page.setViewportSize({ width, height: 900 });
        await page.getByTestId('flow-row').filter({ hasText: '10.44.0.2:443' }).first().click();
        await page.getByTestId('tab-hex').click();
        const dump = page.getByTestId('hex').first();
        await dump.waitFor({ timeout: 10_000 });
        const fit = await dump.evaluate((el) => ({ scroll: el.scrollWidth, client: el.clientWidth, right: el.getBoundingClientRect().right }));
        const pane = await page.getByTestId('detail').boundingBox();
        expect(fit.scroll, `${width} px`).toBeLessThanOrEqual(fit.client + 1);
        expect(fit.right, `${width} px`).toBeLessThanOrEqual(pane!.x + pane!.width);
        // every line but the last holds the same number of bytes: 16 or 8
        const counts = (await dump.textContent())!.trim().split('\n').slice(0, -1).map((l) => l.split(/\s{2,}/)[1]!.trim().split(' ').length);
        expect(new Set(counts).size, `${width} px`).toBe(1);
        expect([8, 16]).toContain(counts[0]);
      }
    } finally {
      await page.setViewportSize({ width: 1440, height: 900 });
      await page.keyboard.press('Escape');
    }
  });
});
