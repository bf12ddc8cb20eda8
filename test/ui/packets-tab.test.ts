// UI: the detail's Packets tab: the flow's packets as Wireshark lists a TCP stream (flags, relative numbers, lengths,
// notes) and a hooked flow's decrypted records among them; how each TCP connection went (a refused one marked in
// the table) — in Chromium over web mode with the real CoreService.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CaptureBuilder, tcpConversation } from '../unit/core-packet-builder.js';
import { screenshot } from './browser.js';
import { openFileUi, type FileUi } from './support.js';

let app: FileUi;
const client = { ip: '10.9.2.1', port: 42101 };
const server = { ip: '10.9.2.2', port: 8080 };

beforeAll(async () => {
  app = await openFileUi('tsu-packets-', (home) => {
    const b = new CaptureBuilder();
    tcpConversation(b, client, server, [Buffer.from('GET / HTTP/1.1\r\nHost: p.test\r\n\r\n')], [Buffer.from('HTTP/1.1 204 No Content\r\n\r\n')], { isnC: 100, isnS: 900, fin: false });
    // the request again: a retransmission (the server had acknowledged it: spurious, as Wireshark says)
    b.tcp({ src: client.ip, dst: server.ip, sport: client.port, dport: server.port, seq: 101, ack: 901 + 27, flags: 0x18, payload: Buffer.from('GET / HTTP/1.1\r\nHost: p.test\r\n\r\n') });
    const tls = { ip: '10.9.2.3', port: 443 };
    const tc = { ip: '10.9.2.1', port: 42102 };
    b.tcp({ src: tc.ip, dst: tls.ip, sport: tc.port, dport: tls.port, seq: 5, flags: 0x02 });
    b.tls(tc, tls, 'out', Buffer.from('GET /secret HTTP/1.1\r\nHost: s.test\r\n\r\n'), { pid: 77, comm: 'curl', lib: 'openssl' });
    // a connection refused: the SYN answered by a RST
    b.tcp({ src: client.ip, dst: server.ip, sport: 42103, dport: 9, seq: 50, flags: 0x02 });
    b.tcp({ src: server.ip, dst: client.ip, sport: 9, dport: 42103, seq: 0, ack: 51, flags: 0x14 });
    const file = join(home, 'packets.pcapng');
    writeFileSync(file, b.build());
    return file;
  });
});

afterAll(async () => {
  await app?.close();
});

describe('the Packets tab', () => {
  it('lists the selected flow\'s packets with Wireshark\'s numbers and notes, and the next flow\'s when the selection moves', async () => {
    const { page } = app.ui;
    const rows = async () => page.getByTestId('packet-row').evaluateAll((els) => els.map((e) => [...e.querySelectorAll('td')].map((td) => td.textContent!.trim()).join('|')));
    await page.getByTestId('flow-row').nth(0).click();
    await page.getByTestId('detail').waitFor();
    expect(await page.getByTestId('tab-packets').textContent()).toMatch(/Packets\s*6/);
    await page.getByTestId('tab-packets').click();
    await page.getByTestId('packets').waitFor({ timeout: 10_000 });
    expect(await page.getByTestId('packets-count').textContent()).toMatch(/^\s*6 packets\s*$/);
    expect(await rows()).toEqual([
      '1|0.000000|→|SYN|0|0|0|',
      '2|0.001000|←|SYN, ACK|0|1|0|',
      '3|0.002000|→|ACK|1|1|0|',
      '4|0.003000|→|PSH, ACK|1|1|32|',
      '5|0.004000|←|PSH, ACK|1|33|27|',
      '6|0.005000|→|PSH, ACK|1|28|32|spurious retransmission',
    ]);
    expect(await page.locator('[data-testid="packet-row"].note').count()).toBe(1);
    // a row's bytes: the whole frame, read from its block
    await page.getByTestId('packet-row').nth(3).click();
    await page.getByTestId('hex').waitFor({ timeout: 10_000 });
    expect(await page.getByTestId('packet-bytes').locator('h3').textContent()).toMatch(/^Packet 4 \(86 bytes\)$/);
    // (the dump's hex columns, whatever its width)
    const dumped = async () => (await page.getByTestId('hex').textContent())!.split('\n').map((l) => l.split('  ')[1] ?? '').join('').replace(/\s+/g, '');
    expect(await dumped()).toContain(Buffer.from('GET / HTTP/1.1\r\nHost: p.test').toString('hex'));
    await screenshot(page, 'flow-packets');
    await page.getByTestId('flow-row').nth(1).click();
    await expect.poll(rows, { timeout: 10_000 }).toEqual([
      '1|0.000000|→|SYN|0|0|0|',
      '2|0.001000|→|TLS|||38|decrypted by SSL_write (openssl), curl pid 77',
    ]);
    expect(await page.locator('[data-testid="packet-row"].record').count()).toBe(1);
    // the record is no packet: the list counts it apart, and its packets as the tab does
    expect((await page.getByTestId('tab-packets').textContent())!.replace(/\s+/g, ' ').trim()).toBe('Packets 1');
    expect((await page.getByTestId('packets-count').textContent())!.trim()).toBe('1 packet');
    expect((await page.getByTestId('records-count').textContent())!.trim()).toBe(', 1 decrypted record');
    // (the other flow's list: the bytes shown before are gone until a row is picked)
    expect(await page.getByTestId('packet-bytes').count()).toBe(0);
    await page.locator('[data-testid="packet-row"].record').click();
    await expect.poll(async () => page.getByTestId('packet-bytes').locator('h3').textContent(), { timeout: 10_000 }).toMatch(/^Record 2, decrypted \(38 bytes\)$/);
    expect(await dumped()).toBe(Buffer.from('GET /secret HTTP/1.1\r\nHost: s.test\r\n\r\n').toString('hex'));
    expect(app.ui.pageErrors).toEqual([]);
  });
});

describe('a TCP flow\'s connection state', () => {
  it('marks a refused connection in the table, and says how each connection went in the detail', async () => {
    const { page } = app.ui;
    const marks = await page.getByTestId('conn-state').evaluateAll((els) => els.map((e) => [e.textContent, e.getAttribute('title')]));
    // (the hooked flow's capture holds only its SYN: no reply, as far as the packets tell)
    expect(marks).toEqual([['no reply', 'tls: the client\'s SYN got no answer'], ['refused', expect.stringMatching(/^tcp: the server answered the SYN with a RST/)]]);
    // each mark fits its column: it ends before the next cell begins (in the whole table: the detail closed)
    await page.getByRole('button', { name: 'Close detail' }).click();
    await expect.poll(() => page.getByTestId('detail').count()).toBe(0);
    for (const m of await page.getByTestId('conn-state').all()) {
      const host = m.locator('xpath=../following-sibling::span[1]');
      expect((await m.boundingBox())!.x + (await m.boundingBox())!.width).toBeLessThanOrEqual((await host.boundingBox())!.x);
    }
    await page.getByTestId('flow-row').nth(2).click();
    await page.getByRole('tab', { name: 'Overview' }).click();
    await expect.poll(async () => page.getByTestId('tcp-state').textContent(), { timeout: 10_000 }).toMatch(/^refused — the server answered the SYN with a RST/);
    await page.getByTestId('flow-row').nth(0).click();
    await expect.poll(async () => page.getByTestId('tcp-state').textContent(), { timeout: 10_000 }).toMatch(/^established — handshake completed/);
    // (its request was sent again)
    expect(await page.getByTestId('tcp-retransmissions').textContent()).toBe('1 segment sent again (retransmissions)');
    expect(app.ui.pageErrors).toEqual([]);
  });

  it('keeps the marks in view as the table narrows: beside the detail, and in a small window', async () => {
    const { page } = app.ui;
    const shown = async (width: number, detail: boolean): Promise<string[]> => {
      await page.setViewportSize({ width, height: 900 });
      if (detail) await page.getByTestId('flow-row').nth(0).click();
      else await page.keyboard.press('Escape');
      await expect.poll(() => page.getByTestId('detail').count()).toBe(detail ? 1 : 0);
      const table = (await page.getByTestId('flow-scroller').boundingBox())!;
      const seen: string[] = [];
      for (const m of await page.getByTestId('conn-state').all()) {
        const box = await m.boundingBox();
        // (drawn, inside the table, and ending before the next cell begins)
        if (!(await m.isVisible()) || !box || box.width === 0 || box.x + box.width > table.x + table.width) continue;
        const nextCell = await m.evaluate((el) => {
          let cell = el.parentElement!.nextElementSibling;
          while (cell && cell.getBoundingClientRect().width === 0) cell = cell.nextElementSibling;
          return cell ? cell.getBoundingClientRect().left : Infinity;
        });
        if (box.x + box.width <= nextCell) seen.push((await m.textContent())!);
      }
      return seen;
    };
    try {
      for (const [width, detail] of [[1440, true], [1280, true], [1024, true], [900, false], [700, false]] as const) {
        expect(await shown(width, detail), `${width} px${detail ? ', detail open' : ''}`).toEqual(['no reply', 'refused']);
      }
    } finally {
      await page.setViewportSize({ width: 1440, height: 900 });
      await page.keyboard.press('Escape');
    }
    expect(app.ui.pageErrors).toEqual([]);
  });

  it('counts the failed connections in the header, and lists one kind on a click', async () => {
    const { page } = app.ui;
    const header = async () => page.getByTestId('conn-problem').evaluateAll((els) => els.map((e) => `${e.getAttribute('data-state')}: ${e.textContent!.trim()}`));
    await expect.poll(header, { timeout: 10_000 }).toEqual(['refused: 1 refused', 'no-reply: 1 no reply']);
    await page.locator('[data-testid="conn-problem"][data-state="refused"]').click();
    await expect.poll(async () => page.getByTestId('flow-row').count(), { timeout: 10_000 }).toBe(1);
    expect(await page.getByTestId('flow-row').first().textContent()).toContain(':9');
    expect(await page.getByTestId('filter').inputValue()).toBe('tcp.state == "refused"');
    await screenshot(page, 'conn-problems');
    expect(app.ui.pageErrors).toEqual([]);
  });
});
