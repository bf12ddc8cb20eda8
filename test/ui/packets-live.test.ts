// UI: a live capture's Packets tab across the capture's end. While live, each node's stream is its own file; the end
// merges them into the session's one file, so the rows' file and offset read while live name places that are gone.
// The tab reads the flow again once the files changed, and a row's bytes are the packet's. In Chromium over web mode,
// with the real CoreService and a stand-in target whose two node streams the test writes.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CoreService } from '../../src/service/core-service.js';
import { SessionStore } from '../../src/store/session-store.js';
import { CaptureBuilder, tcpConversation } from '../unit/core-packet-builder.js';
import { standInTarget } from '../lib/standin-target.js';
import { openUi, type UiHarness } from './support.js';

let home: string;
let service: CoreService;
let ui: UiHarness;
const t = standInTarget();
const streams = { 'node-1': new PassThrough(), 'node-2': new PassThrough() };

beforeAll(async () => {
  home = mkdtempSync(join(tmpdir(), 'tsu-packets-live-'));
  service = new CoreService({ store: new SessionStore(join(home, 'sessions')), createTarget: () => t.target, countersIntervalMs: 200 });
  const s = await service.startCapture({ target: 'local', mode: 'afpacket', ifaces: [] });
  for (const [node, stream] of Object.entries(streams)) {
    t.handlers().onStream(node, stream);
    const b = new CaptureBuilder();
    b.record({ t: 'capture', v: 1, mode: 'afpacket', requestedMode: 'afpacket', reason: 'afpacket requested', hostname: node });
    // node-2's flow: its request's bytes say which node they crossed
    const n = node === 'node-1' ? 1 : 2;
    tcpConversation(b, { ip: `10.46.${n}.1`, port: 41000 + n }, { ip: `10.46.${n}.2`, port: 8080 }, [Buffer.from(`GET /from-${node} HTTP/1.1\r\nHost: n${n}.test\r\n\r\n`)], [Buffer.from('HTTP/1.1 204 No Content\r\n\r\n')], { fin: false });
    stream.write(b.take());
  }
  ui = await openUi(service, { openSessionId: s.id });
});

afterAll(async () => {
  for (const s of Object.values(streams)) s.end();
  await ui?.close().catch(() => undefined);
  await service?.close().catch(() => undefined);
  if (home) rmSync(home, { recursive: true, force: true });
});

describe('the Packets tab across the end of a live capture', () => {
  it('shows a row\'s own bytes after the nodes\' files were merged', async () => {
    const { page } = ui;
    const row = page.getByTestId('flow-row').filter({ hasText: '10.46.2.1' });
    await row.waitFor({ timeout: 15_000 });
    await row.click();
    await page.getByTestId('tab-packets').click();
    const rows = page.getByTestId('packet-row');
    await expect.poll(() => rows.count(), { timeout: 10_000 }).toBe(5);
    const request = rows.nth(3);
    const dumped = async (): Promise<string> => Buffer.from(((await page.getByTestId('hex').textContent()) ?? '').split('\n')
      .map((l) => l.split('  ')[1] ?? '').join('').replace(/\s+/g, ''), 'hex').toString('latin1');
    await request.click();
    await expect.poll(dumped, { timeout: 10_000 }).toContain('GET /from-node-2');
    // the end: Stop merges node-1's and node-2's files into one
    await page.getByTestId('stop-capture').click();
    await expect.poll(async () => (await service.listSessions())[0]?.live, { timeout: 15_000 }).toBe(false);
    // read again: the list is new, so the bytes picked from the old one are no longer shown
    await expect.poll(() => page.getByTestId('hex').count(), { timeout: 10_000 }).toBe(0);
    expect(await rows.count()).toBe(5);
    await rows.nth(3).click();
    await expect.poll(dumped, { timeout: 10_000 }).toContain('GET /from-node-2');
    expect(await page.getByTestId('packet-bytes').getByRole('alert').count()).toBe(0);
    expect(ui.pageErrors).toEqual([]);
  });
});
