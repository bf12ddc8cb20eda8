// UI: the detail's Stream tab ("Follow stream"): a flow's request and response as text, client and server turns
// apart, read from the capture file, and a connection that switched to TLS in place with its plain prelude marked
// before the decrypted records — in Chromium over web mode with the real CoreService.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CaptureBuilder, fixtureClientHello, tcpConversation } from '../unit/core-packet-builder.js';
import { openFileUi, type FileUi } from './support.js';
import { screenshot } from './browser.js';

let app: FileUi;

beforeAll(async () => {
  app = await openFileUi('tsu-follow-', (home) => {
    const b = new CaptureBuilder();
    tcpConversation(b, { ip: '10.9.1.1', port: 42001 }, { ip: '10.9.1.2', port: 6379 }, [Buffer.from('PING\r\n'), Buffer.from('GET k\r\n')], [Buffer.from('+PONG\r\n'), Buffer.from('$1\r\nv\r\n')]);
    tcpConversation(b, { ip: '10.9.1.1', port: 42002 }, { ip: '10.9.1.2', port: 80 }, [Buffer.from('GET /other HTTP/1.1\r\nHost: o.test\r\n\r\n')], [Buffer.from('HTTP/1.1 204 No Content\r\n\r\n')]);
    // SMTP's STARTTLS, then a decrypted command from the client's hook
    const c = { ip: '10.9.1.1', port: 42003 };
    const mx = { ip: '10.9.1.2', port: 587 };
    tcpConversation(b, c, mx, [null, Buffer.from('EHLO c\r\n'), Buffer.from('STARTTLS\r\n'), fixtureClientHello()],
      [Buffer.from('220 mx\r\n'), Buffer.from('250 STARTTLS\r\n'), Buffer.from('220 go\r\n'), Buffer.from([0x16, 3, 3, 0, 1, 2])]);
    b.tls(c, mx, 'out', Buffer.from('EHLO c\r\n'), { pid: 9, comm: 'curl', lib: 'openssl' });
    const file = join(home, 'follow.pcapng');
    writeFileSync(file, b.build());
    return file;
  });
});

afterAll(async () => {
  await app?.close();
});

describe('the Stream tab', () => {
  it('shows the selected flow\'s turns in order, and the next flow\'s when the selection moves', async () => {
    const { page } = app.ui;
    const turns = async () => page.getByTestId('turn').evaluateAll((els) => els.map((e) => `${e.getAttribute('data-dir')} ${e.textContent}`));
    await page.getByTestId('flow-row').nth(0).click();
    await page.getByTestId('detail').waitFor();
    await page.getByTestId('tab-stream').click();
    await page.getByTestId('stream').waitFor({ timeout: 10_000 });
    expect(await page.getByTestId('stream-source').textContent()).toMatch(/As on the wire · 27 B/);
    expect(await turns()).toEqual(['c2s PING\n', 's2c +PONG\n', 'c2s GET k\n', 's2c $1\nv\n']);
    await page.getByTestId('flow-row').nth(1).click();
    await expect.poll(turns, { timeout: 10_000 }).toEqual(['c2s GET /other HTTP/1.1\nHost: o.test\n\n', 's2c HTTP/1.1 204 No Content\n\n']);
    expect(app.ui.pageErrors).toEqual([]);
  });

  it('shows a connection that switched to TLS in place with its prelude marked as on the wire, then the decrypted records', async () => {
    const { page } = app.ui;
    const turns = async () => page.getByTestId('stream').locator('[data-testid=turn], [data-testid=stream-before-tls], [data-testid=stream-after-tls]')
      .evaluateAll((els) => els.map((e) => `${e.getAttribute('data-testid') === 'turn' ? `${e.getAttribute('data-dir')} ${e.classList.contains('plain') ? 'plain' : 'tls'}` : e.getAttribute('data-testid')} ${e.textContent}`));
    await page.getByTestId('flow-row').nth(2).click();
    await page.getByTestId('tab-overview').click();
    await expect.poll(async () => page.getByTestId('detail-protocol').textContent(), { timeout: 10_000 }).toBe('TCP · smtp, TLS after STARTTLS');
    await page.getByTestId('tab-stream').click();
    await expect.poll(turns, { timeout: 10_000 }).toEqual([
      'stream-before-tls On the wire, before the connection switched to TLS:',
      's2c plain 220 mx\n', 'c2s plain EHLO c\n', 's2c plain 250 STARTTLS\n', 'c2s plain STARTTLS\n', 's2c plain 220 go\n',
      'stream-after-tls Then, decrypted by the TLS hooks:', 'c2s tls EHLO c\n',
    ]);
    expect(await page.getByTestId('stream-source').textContent()).toMatch(/Decrypted by the TLS hooks/);
    await screenshot(page, 'stream-starttls');
    expect(app.ui.pageErrors).toEqual([]);
  });
});
