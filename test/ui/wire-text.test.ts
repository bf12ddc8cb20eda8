// UI: text a peer or a process chose, in a flow's detail (its request line, headers and body; the process's name), is
// shown with its control characters and bidirectional overrides as escapes: a right-to-left override cannot make a
// process name read as another's, a control byte cannot hide in a header or path. A body keeps its line breaks. In
// Chromium over web mode with the real CoreService.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CaptureBuilder, tcpConversation } from '../unit/core-packet-builder.js';
import { openFileUi, type FileUi, type UiHarness } from './support.js';

let app: FileUi;
let ui: UiHarness;

// (HTTP/1 heads read as Latin-1: a path holding an override's UTF-8 bytes, E2 80 AE, shows their C1 control 80 as an
// escape; a header hides an escape sequence; a body of lines with a NUL and an isolate in it. A process that named
// itself "sshd" + U+202E + "lruc", which an override shows as "sshdcurl".)
const REQUEST = 'GET /\u202etxt.exe HTTP/1.1\r\nHost: site.test\r\nX-Note: a\x1b[2Jb\r\n\r\n';
const BODY = 'line one\r\nline\x00two\n\u2066end';
const COMM = 'sshd\u202elruc';
const RESPONSE = `HTTP/1.1 200 OK\r\nContent-Length: ${Buffer.byteLength(BODY, 'utf8')}\r\nContent-Type: text/plain\r\n\r\n${BODY}`;

function capture(home: string): string {
  const b = new CaptureBuilder();
  b.record({ t: 'capture', v: 1, mode: 'afpacket', reason: 'test', hostname: 'node-1' });
  const client = { ip: '10.9.3.1', port: 42001 };
  const server = { ip: '10.9.3.2', port: 80 };
  b.record({ t: 'conn', proto: 'tcp', local: client, remote: server, role: 'client', pid: 100, tid: 100, comm: COMM, via: 'tracepoint' });
  tcpConversation(b, client, server, [Buffer.from(REQUEST, 'utf8')], [Buffer.from(RESPONSE, 'utf8')]);
  const path = join(home, 'wire-text.pcapng');
  writeFileSync(path, b.build());
  return path;
}

beforeAll(async () => {
  app = await openFileUi('tsu-wiretext-', capture);
  ({ ui } = app);
});

afterAll(async () => {
  await app?.close();
});

/** Whether s holds a C0 or C1 control other than a line break or tab, DEL, or a bidirectional override or isolate. */
// eslint-disable-next-line no-control-regex -- control characters are what it looks for
const unsafe = (s: string): boolean => /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/.test(s);

describe('text from the wire in the flow detail', () => {
  it('the overview shows the process name with escapes', async () => {
    const { page } = ui;
    const rows = page.getByTestId('flow-row');
    await expect.poll(() => rows.count(), { timeout: 10_000 }).toBe(1);
    await rows.nth(0).click();
    const overview = page.getByTestId('detail');
    await expect.poll(async () => (await overview.textContent()) ?? '', { timeout: 10_000 }).toContain('sshd\\u{202e}lruc · pid 100');
    expect(unsafe((await overview.textContent())!)).toBe(false);
  });

  it('the HTTP tab shows the path, headers and body with escapes, the body on its lines', async () => {
    const { page } = ui;
    await page.getByTestId('tab-http').click();
    const exchange = page.getByTestId('exchange');
    await expect.poll(() => exchange.count(), { timeout: 10_000 }).toBe(1);
    const path = (await exchange.getByTestId('exchange-path').textContent())!;
    expect(path).toBe('site.test/\u00e2\\x80\u00aetxt.exe');
    const request = (await exchange.locator('section').nth(0).textContent())!;
    expect(request).toContain('a\\x1b[2Jb');
    const body = (await exchange.getByTestId('response-body').textContent())!;
    expect(body).toBe('line one\r\nline\\x00two\n\\u{2066}end');
    expect(unsafe((await exchange.textContent())!)).toBe(false);
    expect(ui.pageErrors).toEqual([]);
  });
});
