// UI: the flow detail says what the capture could not give, and why: an HTTP/2 side whose decoding stopped (an HPACK
// error, with its frame and offset) above the exchanges it left without answers, an exchange whose stream the client
// reset (RST_STREAM, CANCEL), and a TLS server that asked for
// another ClientHello (a HelloRetryRequest), with no ServerHello after it. In Chromium over web mode with the real
// CoreService.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CaptureBuilder, fixtureClientHello, tcpConversation } from '../unit/core-packet-builder.js';
import { SETTINGS, frame, indexed, litIdx } from '../unit/export-h2-frames.js';
import { H2_PREFACE } from '../../src/dissect/http2.js';
import { openFileUi, type FileUi, type UiHarness } from './support.js';

let app: FileUi;
let ui: UiHarness;

const HEADERS = 1;
const END_STREAM_HEADERS = 0x5;
/** RFC 8446 §4.1.3: a ServerHello with this random is a HelloRetryRequest */
const HRR_RANDOM = Buffer.from('cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c', 'hex');

/** A HelloRetryRequest record: TLS 1.3 (supported_versions), TLS_AES_128_GCM_SHA256. */
function helloRetryRequest(): Buffer {
  const ext = Buffer.from([0x00, 0x2b, 0x00, 0x02, 0x03, 0x04]);
  const body = Buffer.concat([Buffer.from([0x03, 0x03]), HRR_RANDOM, Buffer.from([0x00, 0x13, 0x01, 0x00]), Buffer.from([0, ext.length]), ext]);
  const hs = Buffer.concat([Buffer.from([0x02, 0, 0, body.length]), body]);
  return Buffer.concat([Buffer.from([0x16, 0x03, 0x03, 0, hs.length]), hs]);
}

function capture(home: string): string {
  const b = new CaptureBuilder();
  b.record({ t: 'capture', v: 1, mode: 'afpacket', reason: 'test', hostname: 'node-1' });
  const request = (p: string): Buffer => Buffer.concat([indexed(2), indexed(6), litIdx(4, p), litIdx(1, 'example.test')]);
  const client = Buffer.concat([H2_PREFACE, SETTINGS, frame(HEADERS, END_STREAM_HEADERS, 1, request('/one')), frame(HEADERS, END_STREAM_HEADERS, 3, request('/two')),
    frame(HEADERS, END_STREAM_HEADERS, 5, request('/three'))]);
  // (the client gives up on /three: RST_STREAM, CANCEL)
  const cancel = frame(3, 0, 5, Buffer.from([0, 0, 0, 8]));
  // (stream 3's answer names index 70 of an empty dynamic table)
  const server = Buffer.concat([SETTINGS, frame(HEADERS, END_STREAM_HEADERS, 1, indexed(8)), frame(HEADERS, END_STREAM_HEADERS, 3, indexed(70))]);
  tcpConversation(b, { ip: '10.9.4.1', port: 42001 }, { ip: '10.9.4.2', port: 8080 }, [client, null, cancel], [null, server, null]);
  tcpConversation(b, { ip: '10.9.4.1', port: 42002 }, { ip: '10.9.4.3', port: 443 }, [fixtureClientHello(), null], [null, helloRetryRequest()]);
  const path = join(home, 'detail-notes.pcapng');
  writeFileSync(path, b.build());
  return path;
}

beforeAll(async () => {
  app = await openFileUi('tsu-notes-', capture);
  ({ ui } = app);
});

afterAll(async () => {
  await app?.close();
});

describe('notes in the flow detail', () => {
  it('an HTTP/2 side that stopped: the HTTP tab says which side, why and where, above the exchange left unanswered', async () => {
    const { page } = ui;
    const rows = page.getByTestId('flow-row');
    await expect.poll(() => rows.count(), { timeout: 10_000 }).toBe(2);
    await rows.filter({ hasText: '8080' }).first().click();
    await page.getByTestId('tab-http').click();
    const note = page.getByTestId('http-stopped');
    await expect.poll(async () => (await note.textContent()) ?? '', { timeout: 10_000 })
      .toMatch(/^HTTP\/2 decoding of the server's side stopped: frame 3 \(HEADERS, stream 3\) at byte \d+: HPACK index 70 names no entry/);
    expect(await note.count()).toBe(1);
    // (the exchange the client cancelled says so)
    const reset = page.getByTestId('exchange-reset');
    await expect.poll(() => reset.count(), { timeout: 10_000 }).toBe(1);
    expect(await reset.textContent()).toBe('reset by client: CANCEL');
    expect(await page.getByTestId('exchange').filter({ has: reset }).getByTestId('exchange-path').textContent()).toBe('example.test/three');
  });

  it('a HelloRetryRequest with no ServerHello after it: the TLS section says the server asked for a retry, nothing negotiated', async () => {
    const { page } = ui;
    await page.getByTestId('flow-row').filter({ hasText: '443' }).first().click();
    await page.getByTestId('tab-overview').click();
    const retry = page.getByTestId('detail-hello-retry');
    await expect.poll(async () => (await retry.textContent()) ?? '', { timeout: 10_000 }).toContain('the server asked for another ClientHello (HelloRetryRequest)');
    expect(await retry.textContent()).toContain('no ServerHello came after it in the capture');
    expect(await page.getByTestId('http-stopped').count()).toBe(0);
  });
});
