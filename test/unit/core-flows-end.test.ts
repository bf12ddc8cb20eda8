// The end of a capture: HTTP messages still in flight when it ended (a download or an upload cut off, HTTP/2 streams
// not ended) are taken as they are and marked unfinished, in the flows of a file (analyzeFiles) and of a stopped capture.
import { describe, it, expect } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseBuffer } from '../../src/pcapng/index.js';
import { Analyzer } from '../../src/flows/analyzer.js';
import { analyzeFiles } from '../../src/flows/load.js';
import { compileFilter } from '../../src/filter/index.js';
import { FlowJsonLines } from '../../src/model/flow-json.js';
import { har } from '../../src/export/index.js';
import { H2_PREFACE } from '../../src/dissect/http2.js';
import { CaptureBuilder, fixtureClientHello, tcpConversation } from './core-packet-builder.js';
import { SETTINGS, addIdx, frame, indexed, litIdx } from './export-h2-frames.js';
import type { Flow } from '../../src/model/flow.js';

const client = { ip: '10.202.45.1', port: 43300 };
const server = { ip: '10.202.45.2', port: 80 };

function analyzer(buf: Buffer): Analyzer {
  const a = new Analyzer();
  const feed = a.stream();
  for (const b of parseBuffer(buf)) feed(b);
  return a;
}

function fileOf(buf: Buffer): string {
  const path = join(mkdtempSync(join(tmpdir(), 'tapscope-end-')), 'c.pcapng');
  writeFileSync(path, buf);
  return path;
}

async function jsonLine(f: Flow): Promise<Record<string, unknown>> {
  const lines = new FlowJsonLines();
  const parts: Buffer[] = [];
  await lines.addAll([f], (chunk) => { parts.push(Buffer.from(chunk)); lines.reuse(chunk); });
  return JSON.parse(Buffer.concat(parts).toString('utf8')) as Record<string, unknown>;
}

describe('HTTP/1 in flight when the capture ended', () => {
  // a keep-alive connection: one whole exchange, then a download whose body was still coming, no FIN
  const done = Buffer.from('GET /small HTTP/1.1\r\nHost: files.test\r\n\r\n');
  const doneAnswer = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
  const big = Buffer.from('GET /big.iso HTTP/1.1\r\nHost: files.test\r\n\r\n');
  const bigHead = Buffer.from('HTTP/1.1 206 Partial Content\r\nContent-Length: 100000\r\nContent-Type: text/plain\r\n\r\n');
  function download(): Buffer {
    const b = new CaptureBuilder();
    tcpConversation(b, client, server, [done, big, null], [doneAnswer, bigHead, Buffer.alloc(3000, 0x61)], { fin: false });
    return b.build();
  }

  it('a response whose body had not ended has its status, unfinished; the whole one before it is not', () => {
    const a = analyzer(download());
    // (while the capture goes on, the answer is still coming)
    expect(a.flows()[0]!.http).toEqual([
      { method: 'GET', host: 'files.test', path: '/small', status: 200 },
      { method: 'GET', host: 'files.test', path: '/big.iso', status: null },
    ]);
    const version = a.version;
    a.endCapture();
    expect(a.version).not.toBe(version);
    const f = a.flows()[0]!;
    expect(f.http).toEqual([
      { method: 'GET', host: 'files.test', path: '/small', status: 200 },
      { method: 'GET', host: 'files.test', path: '/big.iso', status: 206, unfinished: true },
    ]);
    // (the body as far as it came)
    expect(a.detail(f.id)!.exchanges[1]).toMatchObject({ status: 206, responseBody: 'a'.repeat(3000) });
    // (once: a second end takes nothing more)
    a.endCapture();
    expect(a.flows()[0]!.http).toHaveLength(2);
  });

  it('is what the flows of a capture file show, in their JSON and to the filter', async () => {
    const { analyzer: a } = await analyzeFiles([{ path: fileOf(download()) }]);
    const f = a.flows()[0]!;
    expect(f.http[1]).toEqual({ method: 'GET', host: 'files.test', path: '/big.iso', status: 206, unfinished: true });
    expect((await jsonLine(f)).http).toEqual([
      { method: 'GET', host: 'files.test', path: '/small', status: 200 },
      { method: 'GET', host: 'files.test', path: '/big.iso', status: 206, unfinished: true },
    ]);
    expect([f].filter(compileFilter('http.status == 206'))).toHaveLength(1);
    expect([f].filter(compileFilter('http.unfinished'))).toHaveLength(1);
    const entries = (har([f], (id) => a.exchangesOf(id), false) as { log: { entries: { response: { status: number }; comment: string }[] } }).log.entries;
    expect(entries.map((e) => [e.response.status, /; unfinished \(response: the capture ended before its end\): its bodies are as far as they came$/.test(e.comment)])).toEqual([[200, false], [206, true]]);
  });

  it('a request whose body was still coming (an upload) is listed, unfinished, without a status', async () => {
    const b = new CaptureBuilder();
    const upload = Buffer.from('POST /upload HTTP/1.1\r\nHost: files.test\r\nContent-Length: 50000\r\n\r\n');
    tcpConversation(b, client, server, [upload, Buffer.alloc(1400, 0x62)], [], { fin: false });
    const a = analyzer(b.build());
    expect(a.flows()[0]!.http).toEqual([]);
    const { analyzer: fromFile } = await analyzeFiles([{ path: fileOf(b.build()) }]);
    const f = fromFile.flows()[0]!;
    expect(f.http).toEqual([{ method: 'POST', host: 'files.test', path: '/upload', status: null, unfinished: true }]);
    expect(fromFile.detail(f.id)!.exchanges[0]!.requestBody).toBe('b'.repeat(1400));
    // (a flow that ended whole has nothing unfinished: the filter does not take it)
    expect([f].filter(compileFilter('!http.unfinished'))).toHaveLength(0);
  });

  it('a connection that closed has nothing unfinished, and a response delimited by its close ends whole', async () => {
    const b = new CaptureBuilder();
    tcpConversation(b, client, server, [done], [Buffer.from('HTTP/1.0 200 OK\r\n\r\nuntil the close')]);
    const { analyzer: a } = await analyzeFiles([{ path: fileOf(b.build()) }]);
    const f = a.flows()[0]!;
    expect(f.http).toEqual([{ method: 'GET', host: 'files.test', path: '/small', status: 200 }]);
    expect([f].filter(compileFilter('http.unfinished'))).toHaveLength(0);
  });
});

describe('HTTP/1 cut short by its connection\'s close or reset', () => {
  // a download its client gave up on: the answer's head and 1000 of its 100000 bytes, then the connection ended
  const get = Buffer.from('GET /slow HTTP/1.1\r\nHost: files.test\r\n\r\n');
  const head = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 100000\r\nContent-Type: text/plain\r\n\r\n');
  const part = Buffer.concat([head, Buffer.alloc(1000, 0x61)]);
  const closed = 'response: the connection closed before its body\'s end';

  it('a response whose body the close cut off has its status as it came, unfinished, before the capture ends', async () => {
    const b = new CaptureBuilder();
    tcpConversation(b, client, server, [get], [part]);
    // (taken at the close, as a live capture shows it: the capture has not ended)
    const live = analyzer(b.build());
    const f = live.flows()[0]!;
    expect(f.http).toEqual([{ method: 'GET', host: 'files.test', path: '/slow', status: 200, unfinished: true }]);
    expect(live.detail(f.id)!.exchanges[0]).toMatchObject({ status: 200, unfinished: true, unfinishedReason: closed, responseBody: 'a'.repeat(1000) });
    const { analyzer: a } = await analyzeFiles([{ path: fileOf(b.build()) }]);
    const g = a.flows()[0]!;
    expect((await jsonLine(g)).http).toEqual([{ method: 'GET', host: 'files.test', path: '/slow', status: 200, unfinished: true }]);
    expect([g].filter(compileFilter('http.unfinished && http.status == 200'))).toHaveLength(1);
    const entries = (har([g], (id) => a.exchangesOf(id), false) as { log: { entries: { response: { status: number; content: { text: string } }; comment: string }[] } }).log.entries;
    expect(entries.map((e) => [e.response.status, e.response.content.text.length])).toEqual([[200, 1000]]);
    // (the entry's comment says what cut it short)
    expect(entries[0]!.comment).toMatch(/; unfinished \(response: the connection closed before its body's end\): its bodies are as far as they came$/);
  });

  it('by a reset of either side the same, saying so', () => {
    for (const by of [client, server]) {
      const b = new CaptureBuilder();
      tcpConversation(b, client, server, [get], [part], { fin: false });
      const [src, dst] = by === client ? [client, server] : [server, client];
      const seq = by === client ? 1001 + get.length : 5001 + part.length;
      b.tcp({ src: src.ip, dst: dst.ip, sport: src.port, dport: dst.port, seq, ack: 0, flags: 0x14 });
      const a = analyzer(b.build());
      const f = a.flows()[0]!;
      expect(f.http, `reset by ${by.port}`).toEqual([{ method: 'GET', host: 'files.test', path: '/slow', status: 200, unfinished: true }]);
      expect(a.detail(f.id)!.exchanges[0]!.unfinishedReason).toBe('response: the connection was reset before its body\'s end');
    }
  });

  it('an upload the client\'s close cut off is listed, unfinished, without a status', () => {
    const b = new CaptureBuilder();
    const upload = Buffer.from('POST /upload HTTP/1.1\r\nHost: files.test\r\nContent-Length: 50000\r\n\r\n');
    tcpConversation(b, client, server, [upload, Buffer.alloc(1400, 0x62)], []);
    const a = analyzer(b.build());
    const f = a.flows()[0]!;
    expect(f.http).toEqual([{ method: 'POST', host: 'files.test', path: '/upload', status: null, unfinished: true }]);
    expect(a.detail(f.id)!.exchanges[0]).toMatchObject({ requestBody: 'b'.repeat(1400), unfinishedReason: 'request: the connection closed before its body\'s end' });
  });

  describe('decrypted by the hooks', () => {
    const tls = { ip: server.ip, port: 443 };
    const curl = { pid: 100, comm: 'curl', lib: 'openssl' };
    const node = { pid: 200, comm: 'node', lib: 'openssl' };
    const serverHello = Buffer.from([0x16, 0x03, 0x03, 0x00, 0x01, 0x00]);
    /**
     * A TLS connection closed by both FINs, or reset by its server; `records` puts the hooks' records after the segment
     * of that number (4: the server's hello; 6: the server's FIN).
     */
    function hooked(records: (b: CaptureBuilder, segment: number) => void, reset = false): Buffer {
      const b = new CaptureBuilder();
      tcpConversation(b, client, tls, [fixtureClientHello()], [serverHello], { fin: !reset, afterSegment: (n) => records(b, n) });
      if (reset) b.tcp({ src: tls.ip, dst: client.ip, sport: tls.port, dport: client.port, seq: 5001 + serverHello.length, ack: 0, flags: 0x14 });
      return b.build();
    }

    it('written by the server: cut at its FIN or reset, as on the wire', () => {
      for (const reset of [false, true]) {
        const buf = hooked((b, n) => {
          if (n !== 4) return;
          b.tls(client, tls, 'in', get, node);
          b.tls(tls, client, 'out', part, node);
        }, reset);
        const a = analyzer(buf);
        const f = a.flows()[0]!;
        expect(f.http).toEqual([{ method: 'GET', host: 'files.test', path: '/slow', status: 200, unfinished: true }]);
        const why = reset ? 'response: the connection was reset before its body\'s end' : closed;
        expect(a.detail(f.id)!.exchanges[0]).toMatchObject({ source: 'decrypted', unfinishedReason: why });
      }
    });

    it('read by the client: its reads after the server\'s FIN still end the answer whole; one they never end ends as the connection did', async () => {
      // (records of reads come when the client reads, after the bytes came: here the answer's last ones after both FINs)
      const whole = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n');
      const late = hooked((b, n) => {
        if (n === 4) {
          b.tls(client, tls, 'out', get, curl);
          b.tls(tls, client, 'in', Buffer.concat([whole, Buffer.alloc(10, 0x61)]), curl);
        } else if (n === 6) b.tls(tls, client, 'in', Buffer.alloc(10, 0x62), curl);
      });
      const { analyzer: a } = await analyzeFiles([{ path: fileOf(late) }]);
      const f = a.flows()[0]!;
      expect(f.http).toEqual([{ method: 'GET', host: 'files.test', path: '/slow', status: 200 }]);
      expect(a.detail(f.id)!.exchanges[0]!.responseBody).toBe(`${'a'.repeat(10)}${'b'.repeat(10)}`);
      const cut = hooked((b, n) => {
        if (n !== 4) return;
        b.tls(client, tls, 'out', get, curl);
        b.tls(tls, client, 'in', part, curl);
      });
      const { analyzer: c } = await analyzeFiles([{ path: fileOf(cut) }]);
      const g = c.flows()[0]!;
      expect(g.http).toEqual([{ method: 'GET', host: 'files.test', path: '/slow', status: 200, unfinished: true }]);
      expect(c.detail(g.id)!.exchanges[0]!.unfinishedReason).toBe(closed);
    });
  });
});

describe('HTTP/2 streams in flight when the capture ended', () => {
  const tls = { ip: server.ip, port: 443 };
  // stream 1 answered whole; stream 3's answer came without its END_STREAM (its body going on)
  const request = Buffer.concat([H2_PREFACE, SETTINGS,
    frame(1, 0x5, 1, Buffer.concat([indexed(2), indexed(4), indexed(7), addIdx(1, 'api.test')])),
    frame(1, 0x5, 3, Buffer.concat([indexed(2), litIdx(4, '/stream'), indexed(7), addIdx(1, 'api.test')]))]);
  const answer = Buffer.concat([SETTINGS,
    frame(1, 0x4, 1, Buffer.concat([indexed(8), litIdx(28, '5')])), frame(0, 0x1, 1, Buffer.from('hello')),
    frame(1, 0x4, 3, indexed(8)), frame(0, 0, 3, Buffer.from('event: 1\n\n'))]);

  it('decrypted by the hooks: the stream whose answer was still coming has its status, unfinished', async () => {
    const b = new CaptureBuilder();
    tcpConversation(b, client, tls, [fixtureClientHello()], [Buffer.from([0x16, 0x03, 0x03, 0x00, 0x01, 0x00])], {
      fin: false,
      afterTurn: () => {
        b.tls(client, tls, 'out', request, { pid: 100, comm: 'curl', lib: 'openssl', proto: 'http2' });
        b.tls(tls, client, 'in', answer, { pid: 100, comm: 'curl', lib: 'openssl', proto: 'http2' });
      },
    });
    const live = analyzer(b.build());
    expect(live.flows()[0]!.http.map((h) => h.status)).toEqual([200, null]);
    const { analyzer: a } = await analyzeFiles([{ path: fileOf(b.build()) }]);
    const f = a.flows()[0]!;
    expect(f.http).toEqual([
      { method: 'GET', host: 'api.test', path: '/', status: 200 },
      { method: 'GET', host: 'api.test', path: '/stream', status: 200, unfinished: true },
    ]);
    expect(a.detail(f.id)!.exchanges[1]).toMatchObject({ source: 'decrypted', responseBody: 'event: 1\n\n' });
  });

  it('in plain text (h2c) the same', async () => {
    const b = new CaptureBuilder();
    tcpConversation(b, client, server, [request], [answer], { fin: false });
    const { analyzer: a } = await analyzeFiles([{ path: fileOf(b.build()) }]);
    expect(a.flows()[0]!.http.map((h) => [h.path, h.status, h.unfinished ?? false])).toEqual([['/', 200, false], ['/stream', 200, true]]);
  });
});
