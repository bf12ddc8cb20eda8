// HAR and JSON Lines exports leave no secret header value anywhere: repeated headers, case variants,
// Proxy-Authorization, folded continuation lines, HTTP/1 over plain TCP and decrypted records, HTTP/2 cookie
// crumbs; with includeSecrets every value is there.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CaptureBuilder, tcpConversation } from './core-packet-builder.js';
import { CoreService } from '../../src/service/core-service.js';
import { SessionStore } from '../../src/store/session-store.js';
import { H2_PREFACE } from '../../src/dissect/http2.js';
import { frame, str } from './export-h2-frames.js';

const SECRETS = ['lower-auth', 'UPPER-COOKIE', 'second-cookie', 'proxy-cred', 'folded-tail', 'resp-one', 'RESP-TWO', 'tls-bearer', 'h2crumb1', 'h2crumb2', 'h2-auth'];

const raw = (s: string): Buffer => str(s, false);

function capture(): Buffer {
  const b = new CaptureBuilder();
  tcpConversation(b, { ip: '10.232.11.1', port: 42000 }, { ip: '10.232.11.2', port: 80 },
    [Buffer.from('GET /p?q=1 HTTP/1.1\r\nHost: har.test\r\nauthorization: Basic lower-auth\r\nCOOKIE: a=UPPER-COOKIE\r\n'
      + 'Cookie: b=second-cookie\r\nProxy-Authorization: Bearer proxy-cred\r\nX-Keep: kept-value\r\n\r\n')],
    [Buffer.from('HTTP/1.1 200 OK\r\nSet-Cookie: s1=resp-one; Path=/\r\nset-cookie: s2=\r\n folded-tail\r\nSET-COOKIE: s3=RESP-TWO\r\n'
      + 'Content-Length: 2\r\n\r\nok')]);
  const c = { ip: '10.232.11.1', port: 42001 };
  const s = { ip: '10.232.11.2', port: 443 };
  b.tls(c, s, 'out', Buffer.from('GET /tls HTTP/1.1\r\nHost: tls.har.test\r\nAuthorization: Bearer tls-bearer\r\n\r\n'), { pid: 3, comm: 'c', lib: 'openssl' });
  b.tls(s, c, 'in', Buffer.from('HTTP/1.1 204 No Content\r\n\r\n'), { pid: 3, comm: 'c', lib: 'openssl' });
  const h2c = { ip: '10.232.11.1', port: 42002 };
  const block = Buffer.concat([Buffer.from([0x82, 0x84, 0x87, 0x41]), raw('h2.har.test'),
    Buffer.from([0x0f, 0x11]), raw('k=h2crumb1'), Buffer.from([0x0f, 0x11]), raw('j=h2crumb2'), Buffer.from([0x0f, 0x08]), raw('Bearer h2-auth')]);
  b.tls(h2c, s, 'out', Buffer.concat([H2_PREFACE, frame(4, 0, 0, Buffer.alloc(0)), frame(1, 0x5, 1, block)]), { pid: 3, comm: 'c', lib: 'openssl', proto: 'http2' });
  b.tls(s, h2c, 'in', Buffer.concat([frame(4, 0, 0, Buffer.alloc(0)), frame(1, 0x5, 1, Buffer.from([0x88]))]), { pid: 3, comm: 'c', lib: 'openssl', proto: 'http2' });
  return b.build();
}

describe('HAR and JSON Lines redaction', () => {
  let tmp: string;
  let svc: CoreService;
  let sessionId: string;
  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'tsr-har-'));
    writeFileSync(join(tmp, 'c.pcapng'), capture());
    svc = new CoreService({ store: new SessionStore(join(tmp, 'store')) });
    sessionId = (await svc.openFile({ path: join(tmp, 'c.pcapng') })).id;
  });
  afterAll(() => { rmSync(tmp, { recursive: true, force: true }); });

  it('HAR: no secret value anywhere, every secret header (any case, repeated) listed as [redacted], others kept', async () => {
    const path = join(tmp, 'x.har');
    await svc.exportSession({ sessionId, format: 'har', path });
    const text = readFileSync(path, 'utf8');
    expect(SECRETS.filter((s) => text.includes(s))).toEqual([]);
    const har = JSON.parse(text) as { log: { entries: { request: { url: string; headers: { name: string; value: string }[]; cookies: { name: string; value: string }[] }; response: { headers: { name: string; value: string }[]; cookies: { name: string; value: string }[] } }[] } };
    const plain = har.log.entries.find((e) => e.request.url.startsWith('http://har.test/'))!;
    const secretRows = (h: { name: string; value: string }[]) => h.filter((x) => /^(proxy-)?authorization$|^(set-)?cookie$/i.test(x.name));
    expect(secretRows(plain.request.headers).map((h) => `${h.name}=${h.value}`)).toEqual(
      ['authorization=[redacted]', 'COOKIE=[redacted]', 'Cookie=[redacted]', 'Proxy-Authorization=[redacted]']);
    expect(plain.request.headers.find((h) => h.name === 'X-Keep')?.value).toBe('kept-value');
    expect(plain.request.cookies).toEqual([{ name: 'a', value: '[redacted]' }, { name: 'b', value: '[redacted]' }]);
    expect(secretRows(plain.response.headers).map((h) => h.value)).toEqual(['[redacted]', '[redacted]', '[redacted]']);
    expect(plain.response.cookies.map((c) => c.name)).toEqual(['s1', 's2', 's3']);
    const h2 = har.log.entries.find((e) => e.request.url.startsWith('https://h2.har.test/'))!;
    expect(secretRows(h2.request.headers).map((h) => h.value)).toEqual(['[redacted]', '[redacted]', '[redacted]']);
    expect(har.log.entries).toHaveLength(3);

    await svc.exportSession({ sessionId, format: 'har', path, includeSecrets: true });
    const all = readFileSync(path, 'utf8');
    expect(SECRETS.filter((s) => !all.includes(s))).toEqual([]);
  });

  it('JSON Lines of flows carries no header value at all', async () => {
    const path = join(tmp, 'x.jsonl');
    await svc.exportSession({ sessionId, format: 'json', path });
    const text = readFileSync(path, 'utf8');
    expect(text.trim().split('\n')).toHaveLength(3);
    expect(text).toContain('har.test');
    expect(SECRETS.filter((s) => text.includes(s))).toEqual([]);
  });
});
