// The HAR export's fields say what the capture saw: each message's own HTTP version (HTTP/1.0, HTTP/1.1, HTTP/2 on a TLS
// flow whose ALPN is not known), bodies as received and their content decoded (gzip, deflate, br) or given as base64,
// truncation said; URLs by the request-target's form (absolute, CONNECT's authority, OPTIONS *); the reason phrase;
// timings from the packets' times; no method invented for a response whose request was not captured; and whether an
// exchange was read from TLS hooks or decrypted with a key log. Every export is checked against HAR 1.2's fields.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { CaptureBuilder, fixtureClientHello, flightConversation, tcpConversation, tls12ServerHello } from './core-packet-builder.js';
import { DATA, END_HEADERS, END_STREAM, HEADERS, SETTINGS, frame, litIdx } from './export-h2-frames.js';
import { analyzeFiles } from '../../src/flows/load.js';
import { exportCapture } from '../../src/export/index.js';
import { KeyLog } from '../../src/dissect/tls-keylog.js';
import { H2_PREFACE } from '../../src/dissect/http2.js';
import { Http3Connection } from '../../src/dissect/http3.js';
import type { HttpMessage } from '../../src/dissect/http1.js';
import { makePairCert, tlsPair } from '../lib/tls-memory-pair.js';

interface Nv { name: string; value: string }
interface Entry {
  startedDateTime: string;
  time: number;
  comment: string;
  timings: Record<string, number>;
  request: { method: string; url: string; httpVersion: string; queryString: Nv[]; bodySize: number; postData?: { mimeType: string; text: string; _encoding?: string }; comment?: string };
  response: {
    status: number; statusText: string; httpVersion: string; bodySize: number; comment?: string;
    content: { size: number; compression?: number; mimeType: string; text?: string; encoding?: string };
  };
  [k: string]: unknown;
}
interface Har { log: { version: string; creator: { name: string; version: string }; entries: Entry[]; [k: string]: unknown } }

const SERVER = { ip: '10.77.0.2', port: 80 };
let dir = '';
let port = 41000;
const client = (): { ip: string; port: number } => ({ ip: '10.77.0.1', port: port++ });
let exports = 0;

/**
 * The capture analyzed and exported as HAR the way `tapscope export --format har` does it: its entries, in order, once
 * the whole export was found to be HAR 1.2 (harProblems).
 */
async function harOf(b: CaptureBuilder, keyLog?: KeyLog): Promise<Entry[]> {
  const path = join(dir, `c${exports++}.pcapng`);
  writeFileSync(path, b.build());
  const files = [{ path }];
  const { analyzer } = await analyzeFiles(files, keyLog ? { keyLog } : {});
  const out = `${path}.har`;
  await exportCapture(files, analyzer, { format: 'har', out, keyLog });
  const har = JSON.parse(readFileSync(out, 'utf8')) as Har;
  expect(harProblems(har)).toEqual([]);
  return har.log.entries;
}

/** One HTTP/1 exchange on its own connection: the request, then the response's pieces in turns (each `gapMs` after the last). */
function h1(b: CaptureBuilder, request: string | Buffer, response: (string | Buffer)[], gapMs = 0, server = SERVER): void {
  const bytes = (x: string | Buffer): Buffer => (typeof x === 'string' ? Buffer.from(x, 'latin1') : x);
  tcpConversation(b, client(), server, [bytes(request), ...response.map(() => null)], [null, ...response.map(bytes)], { afterTurn: () => { b.ts += gapMs; } });
}

const byUrl = (entries: Entry[], suffix: string): Entry => {
  const e = entries.find((x) => x.request.url.endsWith(suffix));
  if (!e) throw new Error(`no entry ${suffix} in ${entries.map((x) => x.request.url).join(' ')}`);
  return e;
};

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tapscope-har-fields-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('HAR httpVersion: the exchange\'s own', () => {
  it('HTTP/1.0 and HTTP/1.1 as each start line says, request and response apart', async () => {
    const b = new CaptureBuilder();
    h1(b, 'GET /ten HTTP/1.0\r\nHost: v.test\r\n\r\n', ['HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok']);
    h1(b, 'GET /eleven HTTP/1.1\r\nHost: v.test\r\n\r\n', ['HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok']);
    h1(b, 'GET /mixed HTTP/1.0\r\nHost: v.test\r\n\r\n', ['HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok']);
    const entries = await harOf(b);
    expect(['/ten', '/eleven', '/mixed'].map((p) => [byUrl(entries, p).request.httpVersion, byUrl(entries, p).response.httpVersion])).toEqual([
      ['HTTP/1.0', 'HTTP/1.0'], ['HTTP/1.1', 'HTTP/1.1'], ['HTTP/1.0', 'HTTP/1.1'],
    ]);
  });

  it('HTTP/2 read from TLS hooks on a flow whose ALPN is not known (app "tls", as TLS 1.3 hides it)', async () => {
    const b = new CaptureBuilder();
    const c = client();
    const s = { ip: SERVER.ip, port: 443 };
    const hook = { pid: 7, comm: 'curl', lib: 'openssl', proto: 'http2' };
    // :method GET, :scheme https, :path /h2, :authority h2.test; the answer :status 200 and a DATA frame ending it
    const reqBlock = Buffer.concat([Buffer.from([0x82, 0x87]), litIdx(4, '/h2'), litIdx(1, 'h2.test')]);
    const resBlock = Buffer.concat([Buffer.from([0x88]), litIdx(31, 'text/plain')]);
    tcpConversation(b, c, s, [fixtureClientHello(), null], [null, tls12ServerHello()], {
      afterTurn: (turn) => {
        if (turn !== 1) return;
        b.tls(c, s, 'out', Buffer.concat([H2_PREFACE, SETTINGS, frame(HEADERS, END_HEADERS | END_STREAM, 1, reqBlock)]), hook);
        b.tls(s, c, 'in', Buffer.concat([SETTINGS, frame(HEADERS, END_HEADERS, 1, resBlock), frame(DATA, END_STREAM, 1, Buffer.from('hi'))]), hook);
      },
    });
    const path = join(dir, 'h2-precheck.pcapng');
    writeFileSync(path, b.build());
    const { analyzer } = await analyzeFiles([{ path }]);
    // (the case of the bug: nothing on the flow says HTTP/2)
    expect(analyzer.flows().map((f) => [f.app, f.tls?.negotiatedAlpn ?? null])).toEqual([['tls', null]]);
    const [e] = await harOf(b);
    expect([e!.request.url, e!.request.httpVersion, e!.response.httpVersion, e!.response.statusText, e!.response.content.text]).toEqual([
      'https://h2.test/h2', 'HTTP/2', 'HTTP/2', '', 'hi',
    ]);
    expect(e!.comment).toContain('decrypted from TLS hooks');
  });

  it('HTTP/3: the parser names its messages so, and when their last bytes came', () => {
    const h3 = new Http3Connection();
    const out: HttpMessage[] = [];
    const f3 = (type: number, payload: Buffer): Buffer => Buffer.concat([Buffer.of(type, payload.length), payload]);
    // (RFC 9204 B.1's request: :method GET, :path /index.html; the answer :status 200 with a body in a later piece)
    h3.data(0, true, f3(0x01, Buffer.from('0000d1510b2f696e6465782e68746d6c', 'hex')), true, 10, out);
    h3.data(0, false, f3(0x01, Buffer.from('0000d9', 'hex')), false, 20, out);
    h3.data(0, false, f3(0x00, Buffer.from('hi')), true, 35, out);
    expect(out.map((m) => [m.kind, m.version, m.ts, m.endTs])).toEqual([['request', 'HTTP/3', 10, 10], ['response', 'HTTP/3', 20, 35]]);
  });
});

describe('HAR bodies: as received, content decoded, truncation said', () => {
  const text = 'hello world '.repeat(50);
  const binary = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  const big = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7919) & 0xff));
  let entries: Entry[] = [];
  const coded: [string, Buffer][] = [['gzip', gzipSync(text)], ['deflate', deflateSync(text)], ['br', brotliCompressSync(text)]];
  const json = JSON.stringify(Array.from({ length: 300 }, (_, i) => ({ id: i, v: ((i * 2654435761) >>> 0).toString(16) })));
  const gzBig = gzipSync(json);

  beforeAll(async () => {
    const b = new CaptureBuilder();
    for (const [coding, body] of coded) {
      h1(b, `GET /${coding} HTTP/1.1\r\nHost: body.test\r\n\r\n`, [Buffer.concat([
        Buffer.from(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Encoding: ${coding}\r\nContent-Length: ${body.length}\r\n\r\n`), body])]);
    }
    // (a compressed body past the 512 bytes a binary body keeps: kept to the cap, as text is, and decoded)
    h1(b, 'GET /gzbig HTTP/1.1\r\nHost: body.test\r\n\r\n', [Buffer.concat([
      Buffer.from(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: ${gzBig.length}\r\n\r\n`), gzBig])]);
    h1(b, 'GET /bin HTTP/1.1\r\nHost: body.test\r\n\r\n', [Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${binary.length}\r\n\r\n`), binary])]);
    h1(b, 'GET /bigbin HTTP/1.1\r\nHost: body.test\r\n\r\n', [Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${big.length}\r\n\r\n`), big])]);
    h1(b, 'GET /chunked HTTP/1.1\r\nHost: body.test\r\n\r\n', ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n']);
    const huge = 'x'.repeat(70_000);
    flightConversation(b, client(), SERVER, [['c', Buffer.from('GET /huge HTTP/1.1\r\nHost: body.test\r\n\r\n')],
      ['s', Buffer.from(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${huge.length}\r\n\r\n${huge}`)]]);
    const post = Buffer.from([0, 1, 2, 3, 0xff, 0xfe, 0, 0, 9]);
    h1(b, Buffer.concat([Buffer.from(`POST /upload HTTP/1.1\r\nHost: body.test\r\nContent-Type: application/octet-stream\r\nContent-Length: ${post.length}\r\n\r\n`), post]),
      ['HTTP/1.1 204 No Content\r\n\r\n']);
    // content-codings not undone here: a short gzip body (its coding made it longer), bytes that are no gzip, zstd
    for (const [path, coding, body] of [['gz-small', 'gzip', gzipSync('ok')], ['gz-bad', 'gzip', Buffer.from('not gzip at all')], ['zstd', 'zstd', Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0x58, 0x11, 0, 0, 0x6f, 0x6b])]] as const) {
      h1(b, `GET /${path} HTTP/1.1\r\nHost: body.test\r\n\r\n`, [Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Encoding: ${coding}\r\nContent-Length: ${body.length}\r\n\r\n`), body])]);
    }
    // a body the capture's end cut: 300 of its 1000 bytes came
    tcpConversation(b, client(), SERVER, [Buffer.from('GET /cut HTTP/1.1\r\nHost: body.test\r\n\r\n')], [Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n${'y'.repeat(300)}`)], { fin: false });
    entries = await harOf(b);
  });

  it('gzip, deflate and br: bodySize the bytes received, content its decoded size and text, compression the bytes saved', () => {
    for (const [coding, body] of coded) {
      const r = byUrl(entries, `/${coding}`).response;
      expect([coding, r.bodySize, r.content.size, r.content.compression, r.content.text, r.content.encoding]).toEqual(
        [coding, body.length, text.length, text.length - body.length, text, undefined]);
    }
  });

  it('an HTTP/1 compressed body past 512 bytes is kept and decoded', () => {
    const r = byUrl(entries, '/gzbig').response;
    expect(gzBig.length).toBeGreaterThan(1000);
    expect([r.bodySize, r.content.size, r.content.text]).toEqual([gzBig.length, json.length, json]);
  });

  it('a binary body kept whole is its base64; one of which only a sample was kept has its size and no text', () => {
    const bin = byUrl(entries, '/bin').response;
    expect([bin.bodySize, bin.content.size, bin.content.encoding]).toEqual([256, 256, 'base64']);
    expect(Buffer.from(bin.content.text!, 'base64').equals(binary)).toBe(true);
    const bigbin = byUrl(entries, '/bigbin').response;
    expect([bigbin.bodySize, bigbin.content.size, bigbin.content.text]).toEqual([3000, 3000, undefined]);
    expect(bigbin.comment).toMatch(/3000 bytes were not kept/);
  });

  it('a chunked body counts its bytes, not its chunks\' framing; a body past the 64 KiB kept says it was truncated', () => {
    const chunked = byUrl(entries, '/chunked').response;
    expect([chunked.bodySize, chunked.content.size, chunked.content.text]).toEqual([11, 11, 'hello world']);
    const huge = byUrl(entries, '/huge').response;
    // (its Content-Length says what came; its text is the head the flow detail keeps)
    expect([huge.bodySize, huge.content.size, huge.content.text?.length, /^x+$/.test(huge.content.text ?? '')]).toEqual([70_000, 70_000, 16_384, true]);
    expect(huge.comment).toMatch(/truncated: only its first 65536 bytes were kept/);
  });

  it('content.size is never -1 (HAR allows it for bodySize only): a coding not undone gives the body\'s coded size; compression is left out when the coding saved nothing', () => {
    const small = byUrl(entries, '/gz-small').response;
    expect([small.content.size, small.content.compression, small.content.text]).toEqual([2, undefined, 'ok']);
    for (const path of ['/gz-bad', '/zstd']) {
      const r = byUrl(entries, path).response;
      expect([path, r.content.size, r.content.compression, r.content.text]).toEqual([path, r.bodySize, undefined, undefined]);
      expect(r.bodySize).toBeGreaterThan(0);
      expect(r.comment).toMatch(/not decoded .*content\.size is the body's, coded/);
    }
    const cut = byUrl(entries, '/cut').response;
    expect([cut.bodySize, cut.content.size, cut.content.text?.length]).toEqual([-1, 300, 300]);
  });

  it('a binary request body: postData base64, bodySize its bytes', () => {
    const q = byUrl(entries, '/upload').request;
    expect([q.method, q.bodySize, q.postData?._encoding]).toEqual(['POST', 9, 'base64']);
    expect(Buffer.from(q.postData!.text, 'base64').equals(Buffer.from([0, 1, 2, 3, 0xff, 0xfe, 0, 0, 9]))).toBe(true);
  });
});

describe('HAR request URLs by the request-target\'s form (RFC 9112 §3.2)', () => {
  it('absolute-form (to a proxy), authority-form (CONNECT), asterisk-form (OPTIONS *), origin-form, and an IPv6 server with no Host', async () => {
    const b = new CaptureBuilder();
    const proxy = { ip: SERVER.ip, port: 3128 };
    h1(b, 'GET http://example.com/abs?q=1 HTTP/1.1\r\nHost: example.com\r\n\r\n', ['HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'], 0, proxy);
    h1(b, 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n', ['HTTP/1.1 200 Connection established\r\n\r\n'], 0, proxy);
    h1(b, 'OPTIONS * HTTP/1.1\r\nHost: star.test\r\n\r\n', ['HTTP/1.1 204 No Content\r\n\r\n']);
    h1(b, 'GET /o/p?a=1&b=two HTTP/1.1\r\nHost: origin.test:8080\r\n\r\n', ['HTTP/1.1 204 No Content\r\n\r\n']);
    tcpConversation(b, { ip: 'fd00::1', port: 43000 }, { ip: 'fd00::2', port: 8080 }, [Buffer.from('GET /v6 HTTP/1.0\r\n\r\n')], [Buffer.from('HTTP/1.0 204 No Content\r\n\r\n')]);
    const entries = await harOf(b);
    expect(entries.map((e) => [e.request.method, e.request.url])).toEqual([
      ['GET', 'http://example.com/abs?q=1'],
      ['CONNECT', 'http://example.com:443/'],
      ['OPTIONS', 'http://star.test/'],
      ['GET', 'http://origin.test:8080/o/p?a=1&b=two'],
      ['GET', 'http://[fd00::2]:8080/v6'],
    ]);
    expect(entries[0]!.request.queryString).toEqual([{ name: 'q', value: '1' }]);
    expect(entries[3]!.request.queryString).toEqual([{ name: 'a', value: '1' }, { name: 'b', value: 'two' }]);
    expect([entries[1]!.request.comment, entries[2]!.request.comment]).toEqual([expect.stringContaining('CONNECT example.com:443'), expect.stringContaining('"*"')]);
  });
});

describe('HAR statusText, timings, a response without its request, and where an exchange was read from', () => {
  it('statusText is the reason phrase ("" when the status line has none)', async () => {
    const b = new CaptureBuilder();
    h1(b, 'GET /nf HTTP/1.1\r\nHost: s.test\r\n\r\n', ['HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n']);
    h1(b, 'GET /moved HTTP/1.1\r\nHost: s.test\r\n\r\n', ['HTTP/1.1 301 Moved Permanently\r\nLocation: /new\r\nContent-Length: 0\r\n\r\n']);
    h1(b, 'GET /bare HTTP/1.1\r\nHost: s.test\r\n\r\n', ['HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n']);
    const entries = await harOf(b);
    expect(entries.map((e) => [e.response.status, e.response.statusText])).toEqual([[404, 'Not Found'], [301, 'Moved Permanently'], [200, '']]);
  });

  it('connection is the server\'s port, which Chromium\'s HAR importer shows with serverIPAddress as the Remote Address', async () => {
    const b = new CaptureBuilder();
    h1(b, 'GET /p HTTP/1.1\r\nHost: s.test\r\n\r\n', ['HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'], 0, { ip: SERVER.ip, port: 8081 });
    const [e] = await harOf(b);
    expect([e!.serverIPAddress, e!.connection]).toEqual([SERVER.ip, '8081']);
  });

  it('wait from the request\'s end to the answer\'s first bytes, receive to its last; time their sum', async () => {
    const b = new CaptureBuilder(1_700_000_000_000);
    // (SYN, SYN-ACK, ACK 1 ms apart, the request at +4 ms; each later turn 20 ms and 1 ms after the last)
    h1(b, 'GET /slow HTTP/1.1\r\nHost: t.test\r\n\r\n', ['HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab', 'cd'], 20);
    const [e] = await harOf(b);
    expect(e!.startedDateTime).toBe(new Date(1_700_000_000_004).toISOString());
    // (the answer's head came 21 ms after the request, its rest 21 ms after its head)
    expect([e!.timings.send, e!.timings.wait, e!.timings.receive, e!.time]).toEqual([0, 21, 21, 42]);
    expect(e!.response.content.text).toBe('abcd');
  });

  it('a response whose request the capture did not see: no invented GET, and a comment saying so', async () => {
    const b = new CaptureBuilder();
    // (a connection taken up in the middle: its first request and answer are before the capture; then an answer whose
    // request is not captured either, then a whole exchange)
    flightConversation(b, client(), SERVER, [
      ['c', Buffer.from('GET /before HTTP/1.1\r\nHost: m.test\r\n\r\n')], ['s', Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n')],
      ['s', Buffer.from('HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy')],
      ['c', Buffer.from('GET /after HTTP/1.1\r\nHost: m.test\r\n\r\n')], ['s', Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')],
    ], { midstream: true });
    const entries = await harOf(b);
    expect(entries.map((e) => [e.request.method, e.response.status])).toEqual([['UNKNOWN', 503], ['GET', 200]]);
    expect([entries[0]!.request.httpVersion, entries[0]!.response.httpVersion, entries[0]!.response.content.text]).toEqual(['', 'HTTP/1.1', 'busy']);
    expect(entries[0]!.request.comment).toMatch(/request was not captured/);
    expect(entries[1]!.request.url).toBe('http://m.test/after');
  });

  it('an exchange decrypted with a key log says so, not "TLS hooks"', async () => {
    makePairCert(dir);
    const pair = tlsPair(dir, '1.3');
    const log = new KeyLog();
    log.add(pair.keylog, 'test.keys');
    const b = new CaptureBuilder();
    flightConversation(b, client(), { ip: SERVER.ip, port: 443 }, pair.flights);
    const entries = await harOf(b, log);
    expect(entries.map((e) => [e.request.url, e.request.httpVersion, e.response.statusText])).toEqual([
      ['https://keylog.test/first', 'HTTP/1.1', 'OK'], ['https://keylog.test/second', 'HTTP/1.1', 'OK'],
    ]);
    for (const e of entries) {
      expect(e.comment).toContain('decrypted with the key log');
      expect(e.comment).not.toContain('hooks');
    }
  });
});

/**
 * The ways an export breaks HAR 1.2 (http://www.softwareishard.com/blog/har-12-spec/): a required field missing or of
 * the wrong type, a timing out of range, a time that is not the sum of its timings, a field of our own not named "_...".
 */
function harProblems(har: Har): string[] {
  const problems: string[] = [];
  const need = (where: string, o: Record<string, unknown> | undefined, fields: Record<string, 'string' | 'number' | 'object' | 'array'>): void => {
    if (!o || typeof o !== 'object') { problems.push(`${where}: missing`); return; }
    for (const [k, t] of Object.entries(fields)) {
      const v = o[k];
      const ok = t === 'array' ? Array.isArray(v) : typeof v === t && v !== null;
      if (!ok) problems.push(`${where}.${k}: not ${t}`);
    }
  };
  const only = (where: string, o: Record<string, unknown>, allowed: string[]): void => {
    for (const k of Object.keys(o)) if (!allowed.includes(k) && !k.startsWith('_')) problems.push(`${where}.${k}: not a HAR field`);
  };
  const nv = (where: string, list: unknown): void => {
    for (const [i, x] of (list as Record<string, unknown>[]).entries()) need(`${where}[${i}]`, x, { name: 'string', value: 'string' });
  };
  need('log', har.log, { version: 'string', creator: 'object', entries: 'array' });
  need('log.creator', har.log.creator, { name: 'string', version: 'string' });
  if (har.log.version !== '1.2') problems.push('log.version: not 1.2');
  only('log', har.log, ['version', 'creator', 'browser', 'pages', 'entries', 'comment']);
  for (const [i, e] of har.log.entries.entries()) {
    const at = `entries[${i}]`;
    need(at, e, { startedDateTime: 'string', time: 'number', request: 'object', response: 'object', cache: 'object', timings: 'object' });
    only(at, e, ['pageref', 'startedDateTime', 'time', 'request', 'response', 'cache', 'timings', 'serverIPAddress', 'connection', 'comment']);
    if (Number.isNaN(Date.parse(e.startedDateTime)) || !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(e.startedDateTime)) problems.push(`${at}.startedDateTime: not ISO 8601`);
    const q = e.request as unknown as Record<string, unknown>;
    need(`${at}.request`, q, { method: 'string', url: 'string', httpVersion: 'string', cookies: 'array', headers: 'array', queryString: 'array', headersSize: 'number', bodySize: 'number' });
    only(`${at}.request`, q, ['method', 'url', 'httpVersion', 'cookies', 'headers', 'queryString', 'postData', 'headersSize', 'bodySize', 'comment']);
    if (e.request.method === '') problems.push(`${at}.request.method: empty`);
    try { new URL(e.request.url); } catch { problems.push(`${at}.request.url: not an absolute URL`); }
    nv(`${at}.request.headers`, q.headers);
    nv(`${at}.request.queryString`, q.queryString);
    if (e.request.postData) {
      need(`${at}.request.postData`, e.request.postData as unknown as Record<string, unknown>, { mimeType: 'string', text: 'string' });
      only(`${at}.request.postData`, e.request.postData as unknown as Record<string, unknown>, ['mimeType', 'params', 'text', 'comment']);
    }
    const r = e.response as unknown as Record<string, unknown>;
    need(`${at}.response`, r, { status: 'number', statusText: 'string', httpVersion: 'string', cookies: 'array', headers: 'array', content: 'object', redirectURL: 'string', headersSize: 'number', bodySize: 'number' });
    only(`${at}.response`, r, ['status', 'statusText', 'httpVersion', 'cookies', 'headers', 'content', 'redirectURL', 'headersSize', 'bodySize', 'comment']);
    nv(`${at}.response.headers`, r.headers);
    const c = e.response.content as unknown as Record<string, unknown>;
    need(`${at}.response.content`, c, { size: 'number', mimeType: 'string' });
    only(`${at}.response.content`, c, ['size', 'compression', 'mimeType', 'text', 'encoding', 'comment']);
    if (c.encoding !== undefined && c.encoding !== 'base64') problems.push(`${at}.response.content.encoding: ${String(c.encoding)}`);
    // (content.size is the content's length, -1 not allowed; compression the bytes saved, left out when not known)
    if (!Number.isInteger(c.size) || (c.size as number) < 0) problems.push(`${at}.response.content.size: ${String(c.size)}`);
    if (c.compression !== undefined && (!Number.isInteger(c.compression) || (c.compression as number) < 0)) problems.push(`${at}.response.content.compression: ${String(c.compression)}`);
    for (const side of [e.request.bodySize, e.response.bodySize]) if (!Number.isInteger(side) || side < -1) problems.push(`${at}: bodySize ${side}`);
    const t = e.timings;
    need(`${at}.timings`, t, { send: 'number', wait: 'number', receive: 'number' });
    only(`${at}.timings`, t, ['blocked', 'dns', 'connect', 'send', 'wait', 'receive', 'ssl', 'comment']);
    for (const k of ['send', 'wait', 'receive']) if (!(t[k]! >= 0)) problems.push(`${at}.timings.${k}: ${t[k]}`);
    for (const k of ['blocked', 'dns', 'connect', 'ssl']) if (t[k] !== undefined && t[k]! < -1) problems.push(`${at}.timings.${k}: ${t[k]}`);
    const sum = Object.entries(t).filter(([k, v]) => k !== 'ssl' && k !== 'comment' && v >= 0).reduce((n, [, v]) => n + v, 0);
    if (Math.abs(sum - e.time) > 1e-6) problems.push(`${at}.time ${e.time} is not the sum of its timings (${sum})`);
  }
  return problems;
}

describe('HAR 1.2 structure', () => {
  it('the check every export above passed finds what breaks HAR (a missing method, a time not its timings\' sum, a field of our own)', async () => {
    const b = new CaptureBuilder();
    h1(b, 'GET /s HTTP/1.1\r\nHost: s.test\r\n\r\n', ['HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n']);
    const [entry] = await harOf(b);
    const har: Har = { log: { version: '1.2', creator: { name: 'tapscope', version: 'x' }, entries: [structuredClone(entry!)] } };
    expect(harProblems(har)).toEqual([]);
    const e = har.log.entries[0]!;
    delete (e.request as Partial<Entry['request']>).method;
    e.time += 5;
    e.encoding = 'x';
    e.response.content.size = -1;
    e.response.content.compression = -20;
    expect(harProblems(har)).toEqual([
      'entries[0].encoding: not a HAR field',
      'entries[0].request.method: not string',
      'entries[0].response.content.size: -1',
      'entries[0].response.content.compression: -20',
      `entries[0].time ${e.time} is not the sum of its timings (${e.time - 5})`,
    ]);
  });
});
