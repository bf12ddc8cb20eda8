// UI: a flow known only from TLS hooks — a pod's own loopback in another network namespace — says so in the
// detail pane (no packets, which namespace), in Chromium over web mode with the real CoreService.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CaptureBuilder, tcpConversation } from '../unit/core-packet-builder.js';
import { openFileUi, type FileUi, type UiHarness } from './support.js';

const POD_NETNS = 4026532300;
let app: FileUi;
let service: FileUi['service'];
let ui: UiHarness;

beforeAll(async () => {
  app = await openFileUi('tsu-hook-only-', (home) => {
    const client = { ip: '127.0.0.1', port: 40555 };
    const server = { ip: '127.0.0.1', port: 15001 };
    const b = new CaptureBuilder();
    b.record({ t: 'capture', v: 1, mode: 'ebpf', requestedMode: 'auto', reason: 'auto', hostname: 'node-1', netns: 4026531840 });
    tcpConversation(b, client, server, [Buffer.from('GET /own HTTP/1.1\r\nHost: h\r\n\r\n')], []);
    b.tls(client, server, 'out', Buffer.from('GET /pod-local HTTP/1.1\r\nHost: h\r\n\r\n'), { pid: 20, comm: 'app', lib: 'openssl', netns: POD_NETNS });
    const file = join(home, 'c.pcapng');
    writeFileSync(file, b.build());
    return file;
  });
  ({ service, ui } = app);
});

afterAll(async () => {
  await app?.close();
});

describe('detail of a hook-only flow', () => {
  it('says no packet was captured and names the network namespace; a captured flow does not', async () => {
    const { page } = ui;
    expect(await page.getByTestId('flow-row').count()).toBe(2);
    const seen: string[] = [];
    for (const i of [0, 1]) {
      await page.getByTestId('flow-row').nth(i).click();
      // the pane shows the row just selected at once, not the last detail loaded (another flow's)
      await page.locator(`[data-testid="flow-row"][data-index="${i}"][aria-selected="true"]`).waitFor();
      await page.getByTestId('detail').waitFor();
      seen.push((await page.getByTestId('hook-only').count()) ? (await page.getByTestId('hook-only').textContent()) ?? '' : '');
    }
    expect(seen.filter(Boolean)).toEqual([`TLS hooks only: no packet of it crossed a captured interface (loopback inside network namespace ${POD_NETNS})`]);
  });

  it('shows the row just selected at once while its detail loads, not the flow selected before', async () => {
    const { page } = ui;
    await page.getByTestId('flow-row').nth(0).click();
    await page.getByTestId('detail').waitFor();
    await page.waitForTimeout(300);
    const firstIsHookOnly = (await page.getByTestId('hook-only').count()) > 0;
    // the next detail answers late: until then the pane must show the newly selected row, not the old detail
    const svc = service as unknown as { flowDetail: (req: unknown) => Promise<unknown> };
    const original = svc.flowDetail.bind(service);
    svc.flowDetail = async (req) => {
      await new Promise((r) => setTimeout(r, 3000));
      return original(req);
    };
    try {
      await page.getByTestId('flow-row').nth(1).click();
      await page.waitForFunction(`(document.querySelector('[data-testid="hook-only"]') !== null) === ${!firstIsHookOnly}`, undefined, { timeout: 1500 });
    } finally {
      svc.flowDetail = original;
    }
  });
});
