// UI: a connection from a load balancer that sent a PROXY protocol header: the detail names the client it relays for,
// with the funnel that narrows the filter to that client, and the client side's verdict says whose TLS it is; the
// Stream tab marks the header as on the wire, before TLS; a relay that ended its client's TLS says with what TLS. A
// TLS session seen on both legs of a NAT: each names the other. And a TLS connection open before the capture: a TLS
// flow taken up in the middle — in Chromium over web mode with the real CoreService.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CaptureBuilder, fixtureClientHello, tcpConversation, tls12ServerHello } from '../unit/core-packet-builder.js';
import { openFileUi, type FileUi } from './support.js';

let app: FileUi;
const HEADER = 'PROXY TCP4 198.51.100.7 10.9.6.2 51234 443\r\n';

beforeAll(async () => {
  app = await openFileUi('tsu-proxy-', (home) => {
    const b = new CaptureBuilder();
    const lb = { ip: '10.9.6.1', port: 41001 };
    const svc = { ip: '10.9.6.2', port: 443 };
    tcpConversation(b, lb, svc, [Buffer.concat([Buffer.from(HEADER), fixtureClientHello()])], [tls12ServerHello()]);
    b.tls(lb, svc, 'in', Buffer.from('GET /checkout HTTP/1.1\r\nHost: shop\r\n\r\n'), { pid: 7, comm: 'nginx', lib: 'openssl' });
    tcpConversation(b, { ip: '10.9.6.1', port: 41002 }, svc, [fixtureClientHello()], [tls12ServerHello()]);
    // one TLS session on both legs of a NAT: to the service address, then after DNAT (the same hello, random included)
    const pod = { ip: '10.9.7.1', port: 42001 };
    const hello = Buffer.from(fixtureClientHello());
    hello.fill(0x5a, 11, 43);
    tcpConversation(b, pod, { ip: '10.96.0.10', port: 443 }, [hello], [tls12ServerHello()], { fin: false });
    tcpConversation(b, pod, { ip: '10.9.7.2', port: 8443 }, [hello], [tls12ServerHello()], { fin: false });
    b.tls(pod, { ip: '10.96.0.10', port: 443 }, 'out', Buffer.from('GET /cart HTTP/1.1\r\nHost: cart\r\n\r\n'), { pid: 8, comm: 'curl', lib: 'openssl' });
    // a relay that ended its client's TLS: a PROXY v2 header with the SSL and AUTHORITY TLVs, then plain HTTP
    const tlv = (type: number, value: string): Buffer => Buffer.concat([Buffer.from([type, 0, value.length]), Buffer.from(value)]);
    const ssl = Buffer.concat([Buffer.from([0x20, 0, 5 + 10 + 25, 0x01, 0, 0, 0, 0]), tlv(0x21, 'TLSv1.3'), tlv(0x23, 'TLS_AES_256_GCM_SHA384')]);
    const tlvs = Buffer.concat([tlv(0x02, 'shop.example'), ssl]);
    const addrs = Buffer.from([198, 51, 100, 9, 10, 9, 9, 2, 0xc8, 0x05, 0x01, 0xbb]);
    const v2 = Buffer.concat([Buffer.from('0d0a0d0a000d0a515549540a', 'hex'), Buffer.from([0x21, 0x11, 0, addrs.length + tlvs.length]), addrs, tlvs]);
    tcpConversation(b, { ip: '10.9.9.1', port: 44001 }, { ip: '10.9.9.2', port: 8080 }, [Buffer.concat([v2, Buffer.from('GET /cart HTTP/1.1\r\nHost: shop.example\r\n\r\n')])],
      [Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n')]);
    // a connection open before the capture began: TLS records only, no SYN, no hello
    const rec = (len: number): Buffer => Buffer.concat([Buffer.from([0x17, 0x03, 0x03, len >> 8, len & 0xff]), Buffer.alloc(len, 0x3c)]);
    b.tcp({ src: '10.9.8.1', dst: '10.9.8.2', sport: 43001, dport: 5432, seq: 7000, ack: 9000, flags: 0x18, payload: Buffer.concat([rec(40), rec(40)]) });
    b.tcp({ src: '10.9.8.2', dst: '10.9.8.1', sport: 5432, dport: 43001, seq: 9000, ack: 7090, flags: 0x18, payload: rec(300) });
    const file = join(home, 'proxied.pcapng');
    writeFileSync(file, b.build());
    return file;
  });
});

/** Every flow listed again (no filter), and the one whose row shows `text` selected. */
async function selectRow(text: string): Promise<void> {
  const { page } = app.ui;
  await page.getByTestId('filter').fill('');
  await page.getByTestId('filter').press('Enter');
  await page.getByTestId('flow-row').filter({ hasText: text }).click();
}

afterAll(async () => {
  await app?.close();
});

describe('a connection behind a PROXY protocol header', () => {
  it('names the client it relays for, says whose TLS it carries, and filters to that client', async () => {
    const { page } = app.ui;
    await page.getByTestId('flow-row').filter({ hasText: '41001' }).click();
    await expect.poll(async () => ((await page.getByTestId('detail-proxy').textContent()) ?? '').replace(/\s+/g, ' ').trim(), { timeout: 10_000 })
      .toBe('198.51.100.7:51234 → 10.9.6.2:443 from the PROXY protocol v1 header the client (a load balancer or proxy) sent first');
    expect(await page.getByTestId('verdict-reason').first().textContent()).toMatch(/^this connection relays TLS for 198\.51\.100\.7:51234 \(its PROXY protocol header/);
    await page.getByTestId('tab-stream').click();
    await expect.poll(async () => page.getByTestId('stream').locator('[data-testid=turn], [data-testid=stream-before-tls], [data-testid=stream-after-tls]')
      .evaluateAll((els) => els.map((e) => `${e.getAttribute('data-testid') === 'turn' ? e.getAttribute('data-dir') : e.getAttribute('data-testid')} ${e.textContent}`)), { timeout: 10_000 })
      .toEqual([
        'stream-before-tls On the wire, before the connection switched to TLS:', `c2s ${HEADER.replace('\r\n', '\n')}`,
        'stream-after-tls Then, decrypted by the TLS hooks:', 'c2s GET /checkout HTTP/1.1\nHost: shop\n\n',
      ]);
    await page.getByTestId('tab-overview').click();
    await page.getByTestId('detail-proxy').getByTestId('filter-on').click();
    await expect.poll(() => page.getByTestId('flow-row').count(), { timeout: 10_000 }).toBe(1);
    expect(await page.getByTestId('filter').inputValue()).toBe('proxy.src.ip == 198.51.100.7');
    expect(app.ui.pageErrors).toEqual([]);
  });

  it('a relay that ended its client\'s TLS: says with what TLS, and what the client asked for', async () => {
    const { page } = app.ui;
    await selectRow('44001');
    await expect.poll(async () => ((await page.getByTestId('detail-proxy-asked').textContent()) ?? '').trim(), { timeout: 10_000 })
      .toBe("its client's TLS (TLSv1.3, TLS_AES_256_GCM_SHA384) ended at the proxy; it asked for shop.example");
    expect(((await page.getByTestId('detail-proxy').textContent()) ?? '').replace(/\s+/g, ' ')).toMatch(/^198\.51\.100\.9:51205 → 10\.9\.9\.2:443 /);
    expect(app.ui.pageErrors).toEqual([]);
  });

  it('names the other leg of a TLS session seen twice (NAT), takes its client verdict, and filters to both legs', async () => {
    const { page } = app.ui;
    await page.getByTestId('filter').fill('');
    await page.getByTestId('filter').press('Enter');
    await expect.poll(() => page.getByTestId('flow-row').count(), { timeout: 10_000 }).toBe(6);
    await page.getByTestId('flow-row').filter({ hasText: '10.9.7.2' }).click();
    await expect.poll(async () => ((await page.getByTestId('detail-same-session').textContent()) ?? '').replace(/\s+/g, ' ').trim(), { timeout: 10_000 })
      .toMatch(/^also carried by flow [0-9a-f]{16} the same ClientHello crossed both connections/);
    // (the client's hook read it on the first leg: plaintext captured, no reason)
    expect(await page.getByTestId('verdict').first().textContent()).toMatch(/openssl.*plaintext captured.*via hook/s);
    await page.getByTestId('detail-same-session').getByTestId('filter-on').click();
    await expect.poll(() => page.getByTestId('flow-row').count(), { timeout: 10_000 }).toBe(2);
    expect(await page.getByTestId('flow-row').allTextContents()).toEqual([expect.stringContaining('10.96.0.10'), expect.stringContaining('10.9.7.2')]);
    expect(app.ui.pageErrors).toEqual([]);
  });

  it('a TLS connection open before the capture: a TLS flow whose handshake came before it, and filters to such flows', async () => {
    const { page } = app.ui;
    await selectRow('43001');
    await expect.poll(async () => ((await page.getByTestId('detail-midstream').textContent()) ?? '').replace(/\s+/g, ' ').trim(), { timeout: 10_000 })
      .toMatch(/^before the capture began the connection was open already and was taken up in the middle/);
    expect(await page.getByTestId('detail-protocol').textContent()).toMatch(/TCP · tls/);
    expect(await page.getByTestId('verdict-reason').first().textContent()).toMatch(/its TLS handshake came before the capture began: no ClientHello to fingerprint$/);
    await page.getByTestId('detail-midstream').getByTestId('filter-on').click();
    await expect.poll(() => page.getByTestId('flow-row').count(), { timeout: 10_000 }).toBe(1);
    expect(await page.getByTestId('filter').inputValue()).toBe('tls.midstream');
    expect(app.ui.pageErrors).toEqual([]);
  });
});
