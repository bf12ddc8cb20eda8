// UI: a saved capture of a real TLS 1.3 connection (OpenSSL) shows no plaintext; its "Key log" button takes the
// client's SSLKEYLOGFILE (uploaded in web mode), the session is analyzed again and the connection's requests appear,
// its detail saying it was decrypted with its secrets, both sides plaintext; the session keeps the key log (reopened,
// still decrypted); a file that is no key log is an error notice and changes nothing — in Chromium over web mode
// with the real CoreService.
import { existsSync, mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CaptureBuilder, flightConversation } from '../unit/core-packet-builder.js';
import { makePairCert, tlsPair, type TlsPair } from '../lib/tls-memory-pair.js';
import { SessionStore } from '../../src/store/session-store.js';
import { openFileUi, type FileUi } from './support.js';
import { screenshot } from './browser.js';

let app: FileUi;
let pair: TlsPair;
let sessionId = '';

beforeAll(async () => {
  const certs = mkdtempSync(join(tmpdir(), 'tsu-keylog-certs-'));
  makePairCert(certs);
  pair = tlsPair(certs, '1.3');
  app = await openFileUi('tsu-keylog-', (home) => {
    const b = new CaptureBuilder();
    flightConversation(b, { ip: '10.9.11.1', port: 45001 }, { ip: '10.9.11.2', port: 443 }, pair.flights);
    const file = join(home, 'tls13.pcapng');
    writeFileSync(file, b.build());
    writeFileSync(join(home, 'client.keys'), pair.keylog);
    writeFileSync(join(home, 'notes.txt'), 'these are no TLS secrets\n');
    return file;
  });
  sessionId = (await app.service.listSessions())[0]!.id;
});

afterAll(async () => {
  await app?.close();
});

/** The session store the service uses (openFileUi's, in the private home). */
const store = (): SessionStore => new SessionStore(join(app.home, 'sessions'));

const text = async (id: string): Promise<string> => ((await app.ui.page.getByTestId(id).first().textContent()) ?? '').replace(/\s+/g, ' ').trim();

describe('adding a key log to a saved session', () => {
  it('a file that is no key log: an error notice, and nothing changes', async () => {
    const { page } = app.ui;
    await page.getByTestId('keylog-input').setInputFiles(join(app.home, 'notes.txt'));
    await expect.poll(async () => (await page.getByRole('alert').allTextContents()).join(' '), { timeout: 10_000 }).toMatch(/E_KEYLOG.*holds no TLS secrets/);
    expect(existsSync(store().keyLogPath(sessionId))).toBe(false);
    await page.getByTestId('flow-row').first().click();
    expect(await page.getByTestId('detail-keylog').count()).toBe(0);
    expect(await page.getByTestId('exchange').count()).toBe(0);
    expect(await page.getByTestId('tls-badge').first().getAttribute('data-plaintext')).toBe('no');
  });

  it('decrypts the connection: its requests appear, its detail says so, both sides plaintext', async () => {
    const { page } = app.ui;
    await page.getByTestId('keylog-input').setInputFiles(join(app.home, 'client.keys'));
    await expect.poll(async () => (await page.getByRole('status').allTextContents()).join(' '), { timeout: 10_000 })
      .toContain('Key log added: 1 TLS connection decrypted (it has secrets for 1)');
    // (the row too: its TLS badge says plaintext)
    await expect.poll(() => page.getByTestId('tls-badge').first().getAttribute('data-plaintext'), { timeout: 10_000 }).toBe('yes');
    // (marked as the key log's plaintext, not a hook's: KL, not PT)
    expect(await page.getByTestId('pt-mark').first().textContent()).toBe('KL');
    await page.getByTestId('flow-row').first().click();
    await expect.poll(() => text('detail-keylog'), { timeout: 10_000 }).toMatch(/^decrypted with its secrets \(4 records of application data\)/);
    expect(await page.getByTestId('verdict').filter({ hasText: 'plaintext from the key log' }).count()).toBe(2);
    await screenshot(page, 'keylog-decrypted');
    await page.getByTestId('tab-http').click();
    await expect.poll(() => page.getByTestId('exchange-path').allTextContents(), { timeout: 10_000 }).toEqual(['keylog.test/first', 'keylog.test/second']);
    // the session keeps its key log, readable by its owner only
    const kept = store().keyLogPath(sessionId);
    expect(statSync(kept).mode & 0o777).toBe(0o600);
  });

  it('a session opened again is decrypted with the key log it keeps', async () => {
    const { CoreService } = await import('../../src/service/core-service.js');
    const fresh = new CoreService({ store: store() });
    try {
      const r = await fresh.queryFlows({ sessionId, offset: 0, limit: 10 });
      expect(r.rows.map((f) => [f.tls?.keylog?.status, f.http.map((h) => h.path)])).toEqual([['decrypted', ['/first', '/second']]]);
    } finally {
      await fresh.close();
    }
  });
});
