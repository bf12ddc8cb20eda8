// The analyzer's shortcuts around TCP reassembly must not change what it finds: a direction's first in-order
// segment goes to the dissectors without a reassembler, and bulk HTTP/1 body bytes are counted without being
// handed over (Http1Parser.countableBody/countBody): messages, summaries, exchanges and counters must equal
// those of the reassembler's path.
import { describe, it, expect, vi } from 'vitest';
import { Http1Parser, BODY_CAP, BODY_SAMPLE, type HttpMessage } from '../../src/dissect/http1.js';
import { Analyzer } from '../../src/flows/analyzer.js';
import { analyzeCapture, CaptureBuilder, fixtureClientHello } from './core-packet-builder.js';
import type { HttpExchangeDetail, HttpMessageInfo } from '../../src/api/contract.js';

const binary = (n: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7919) & 0xff));
const text = (n: number): Buffer => Buffer.from('abcdefghij'.repeat(Math.ceil(n / 10)).slice(0, n));
const response = (status: number, body: Buffer): Buffer => Buffer.concat([Buffer.from(`HTTP/1.1 ${status} X\r\nContent-Length: ${body.length}\r\n\r\n`), body]);

/** Pushes `bytes` in `step`-byte pieces, counting instead of pushing whenever the parser allows it. */
function parse(bytes: Buffer, step: number, skip: boolean, bodies = true): { msgs: HttpMessage[]; counted: number } {
  const p = new Http1Parser({ bodies });
  const msgs: HttpMessage[] = [];
  let counted = 0;
  for (let o = 0; o < bytes.length; o += step) {
    const piece = bytes.subarray(o, Math.min(o + step, bytes.length));
    if (skip && p.countableBody() >= piece.length) {
      p.countBody(piece.length, 1);
      counted += piece.length;
    } else msgs.push(...p.push(piece, 1));
  }
  return { msgs, counted };
}

/** An exchange without its times (when it began, when each message's first and last bytes came). */
function withoutTimes({ startedAt: _, ...e }: HttpExchangeDetail): unknown {
  const untimed = (i: HttpMessageInfo | undefined): unknown => i && (({ firstAt: _f, lastAt: _l, ...rest }) => rest)(i);
  return { ...e, requestInfo: untimed(e.requestInfo), responseInfo: untimed(e.responseInfo) };
}

describe('HTTP/1 body bytes counted without their bytes', () => {
  const cases: [string, Buffer][] = [
    ['a binary body', response(200, binary(40_000))],
    ['a text body past the cap', response(200, text(BODY_CAP + 30_000))],
    ['a text body within the cap', response(200, text(20_000))],
    ['a short binary body', response(200, binary(BODY_SAMPLE + 3))],
    ['two responses back to back', Buffer.concat([response(200, binary(9_000)), response(404, text(9))])],
  ];
  for (const [name, bytes] of cases) {
    it(`gives the same messages for ${name}`, () => {
      for (const step of [1400, 4096, 333]) {
        for (const bodies of [true, false]) {
          const full = parse(bytes, step, false, bodies);
          const skipped = parse(bytes, step, true, bodies);
          expect(skipped.msgs).toEqual(full.msgs);
          expect(full.msgs.length).toBeGreaterThan(0);
        }
      }
    });
  }

  it('counts only bytes it would not keep, and never the last byte of a body', () => {
    expect(parse(response(200, binary(40_000)), 1400, true).counted).toBeGreaterThan(30_000);
    expect(parse(response(200, text(BODY_CAP + 30_000)), 1400, true).counted).toBeGreaterThan(20_000);
    // a text body within the cap is kept whole: nothing may be counted past it, unless bodies are not kept
    expect(parse(response(200, text(20_000)), 1400, true).counted).toBe(0);
    expect(parse(response(200, text(20_000)), 1400, true, false).counted).toBeGreaterThan(15_000);
    const p = new Http1Parser();
    expect(p.countableBody()).toBe(0);
    p.push(Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n`), 1);
    expect(p.countableBody()).toBe(0); // the sample is not complete yet
    p.push(binary(BODY_SAMPLE), 1);
    expect(p.countableBody()).toBe(2000 - BODY_SAMPLE - 1);
    p.push(Buffer.from('x'), 1); // a partial piece in the parser's buffer would come first
    expect(p.countableBody()).toBe(2000 - BODY_SAMPLE - 2);
    const chunked = new Http1Parser();
    chunked.push(Buffer.from(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4000\r\n`), 1);
    chunked.push(binary(2000), 1);
    expect(chunked.countableBody()).toBe(0);
  });
});

const client = { ip: '10.1.0.2', port: 40001 };
const server = { ip: '10.1.0.3', port: 80 };

/**
 * A keep-alive connection: GET /a answered by a large binary body, GET /b by a large text body, GET /c by
 * a short one, the bodies in 1400-byte segments; `shuffle` sends each body segment's second half before
 * its first, and every fifth segment twice (the reassembler's path for out-of-order and retransmitted data).
 */
function keepAlive(shuffle: boolean): Buffer {
  const b = new CaptureBuilder();
  const C = { src: client.ip, dst: server.ip, sport: client.port, dport: server.port };
  const S = { src: server.ip, dst: client.ip, sport: server.port, dport: client.port };
  let cs = 100;
  let ss = 9000;
  b.tcp({ ...C, seq: cs, flags: 0x02 });
  b.tcp({ ...S, seq: ss, ack: cs + 1, flags: 0x12 });
  cs++; ss++;
  const exchanges: [string, Buffer][] = [['/a', response(200, binary(120_000))], ['/b', response(200, text(BODY_CAP + 10_000))], ['/c', response(404, text(9))]];
  for (const [path, res] of exchanges) {
    const req = Buffer.from(`GET ${path} HTTP/1.1\r\nHost: h\r\n\r\n`);
    b.tcp({ ...C, seq: cs, ack: ss, flags: 0x18, payload: req });
    cs += req.length;
    for (let o = 0, k = 0; o < res.length; o += 1400, k++) {
      const seg = res.subarray(o, Math.min(o + 1400, res.length));
      const half = Math.floor(seg.length / 2);
      if (shuffle && half > 0) {
        b.tcp({ ...S, seq: ss + o + half, ack: cs, flags: 0x10, payload: seg.subarray(half) });
        b.tcp({ ...S, seq: ss + o, ack: cs, flags: 0x10, payload: seg.subarray(0, half) });
      } else b.tcp({ ...S, seq: ss + o, ack: cs, flags: 0x10, payload: seg });
      if (shuffle && k % 5 === 0) b.tcp({ ...S, seq: ss + o, ack: cs, flags: 0x10, payload: seg });
    }
    ss += res.length;
  }
  b.tcp({ ...C, seq: cs, ack: ss, flags: 0x11 });
  b.tcp({ ...S, seq: ss, ack: cs + 1, flags: 0x11 });
  return b.build();
}

const analyze = (buf: Buffer, details: boolean): Analyzer => analyzeCapture(buf, { options: { details } });

describe('analyzer: in-order body segments skip the reassembler', () => {
  for (const details of [true, false]) {
    it(`summaries and exchanges equal the reassembler's path (details ${details})`, () => {
      const fast = analyze(keepAlive(false), details);
      const slow = analyze(keepAlive(true), details);
      const [f] = fast.flows();
      const [s] = slow.flows();
      expect(f!.http).toEqual([
        { method: 'GET', host: 'h', path: '/a', status: 200 },
        { method: 'GET', host: 'h', path: '/b', status: 200 },
        { method: 'GET', host: 'h', path: '/c', status: 404 },
      ]);
      expect(s!.http).toEqual(f!.http);
      expect(slow.counters.retransmittedBytes).toBeGreaterThan(0);
      expect(fast.counters.retransmittedBytes).toBe(0);
      const fd = fast.detail(f!.id)!;
      const sd = slow.detail(s!.id)!;
      // (the shuffled capture has more packets, so later times differ)
      const untimed = (d: typeof fd): unknown[] => d.exchanges.map(withoutTimes);
      expect(untimed(fd)).toEqual(untimed(sd));
      expect(fd.serverBytesHex).toBe(sd.serverBytesHex);
      if (details) expect(fd.exchanges[2]!.responseBody).toBe('abcdefghi');
    });
  }
});

describe('analyzer: decrypted records inside a body are counted like plain segments', () => {
  /** The keep-alive exchanges as a hook records them: each response in `size`-byte reads (0: one read each). */
  function hooked(size: number): Buffer {
    const b = new CaptureBuilder();
    const tls = { ip: server.ip, port: 443 };
    const who = { pid: 7, comm: 'curl', lib: 'openssl' };
    for (const [path, res] of [['/a', response(200, binary(120_000))], ['/b', response(200, text(BODY_CAP + 10_000))], ['/c', response(404, text(9))]] as const) {
      b.tls(client, tls, 'out', Buffer.from(`GET ${path} HTTP/1.1\r\nHost: h\r\n\r\n`), who);
      const step = size || res.length;
      for (let o = 0; o < res.length; o += step) b.tls(tls, client, 'in', res.subarray(o, Math.min(o + step, res.length)), who);
    }
    return b.build();
  }

  for (const details of [true, false]) {
    it(`exchanges equal those of one record per response (details ${details})`, () => {
      const count = vi.spyOn(Http1Parser.prototype, 'countBody');
      // (records that no packet or conn record orients are read once their flow is asked for: see Analyzer.held)
      const many = analyze(hooked(1400), details);
      const [m] = many.flows();
      const counted = count.mock.calls.length;
      count.mockClear();
      const one = analyze(hooked(0), details);
      const [o] = one.flows();
      expect(count.mock.calls.length).toBe(0);
      count.mockRestore();
      // (most of the bodies' records were counted, not parsed)
      expect(counted).toBeGreaterThan(details ? 60 : 90);
      expect(m!.http).toEqual([
        { method: 'GET', host: 'h', path: '/a', status: 200 }, { method: 'GET', host: 'h', path: '/b', status: 200 }, { method: 'GET', host: 'h', path: '/c', status: 404 },
      ]);
      expect(o!.http).toEqual(m!.http);
      expect(m!.tls?.client?.plaintext).toBe(true);
      const untimed = (a: Analyzer, id: string): unknown[] => a.detail(id)!.exchanges.map(withoutTimes);
      expect(untimed(many, m!.id)).toEqual(untimed(one, o!.id));
    });
  }
});

describe('analyzer: a direction\'s first segment without a reassembler', () => {
  /** GET /one and GET /two on one connection; `retransmit` sends the first request twice and the second late. */
  function twoRequests(retransmit: boolean): Buffer {
    const b = new CaptureBuilder();
    const C = { src: client.ip, dst: server.ip, sport: client.port, dport: server.port };
    const S = { src: server.ip, dst: client.ip, sport: server.port, dport: client.port };
    const one = Buffer.from('GET /one HTTP/1.1\r\nHost: h\r\n\r\n');
    const two = Buffer.from('GET /two HTTP/1.1\r\nHost: h\r\n\r\n');
    const ok = response(200, text(5));
    b.tcp({ ...C, seq: 10, flags: 0x02 });
    b.tcp({ ...S, seq: 500, ack: 11, flags: 0x12 });
    b.tcp({ ...C, seq: 11, ack: 501, flags: 0x18, payload: one });
    if (retransmit) b.tcp({ ...C, seq: 11, ack: 501, flags: 0x18, payload: one });
    b.tcp({ ...S, seq: 501, ack: 11 + one.length, flags: 0x18, payload: ok });
    if (retransmit) {
      // the second request's second half arrives before its first
      b.tcp({ ...C, seq: 11 + one.length + 10, ack: 501 + ok.length, flags: 0x18, payload: two.subarray(10) });
      b.tcp({ ...C, seq: 11 + one.length, ack: 501 + ok.length, flags: 0x18, payload: two.subarray(0, 10) });
    } else b.tcp({ ...C, seq: 11 + one.length, ack: 501 + ok.length, flags: 0x18, payload: two });
    b.tcp({ ...S, seq: 501 + ok.length, ack: 11 + one.length + two.length, flags: 0x18, payload: response(404, text(3)) });
    return b.build();
  }

  it('finds the same exchanges when the first segment is retransmitted and later ones come out of order', () => {
    const plain = analyze(twoRequests(false), true);
    const messy = analyze(twoRequests(true), true);
    const expected = [{ method: 'GET', host: 'h', path: '/one', status: 200 }, { method: 'GET', host: 'h', path: '/two', status: 404 }];
    expect(plain.flows()[0]!.http).toEqual(expected);
    expect(messy.flows()[0]!.http).toEqual(expected);
    expect(messy.counters.retransmittedBytes).toBe(Buffer.byteLength('GET /one HTTP/1.1\r\nHost: h\r\n\r\n'));
    expect(plain.counters.retransmittedBytes).toBe(0);
  });

  for (const order of ['in order', 'second part first'] as const) {
    it(`reassembles a hello split in two segments, ${order}`, () => {
      const hello = fixtureClientHello();
      const b = new CaptureBuilder();
      const C = { src: client.ip, dst: '10.1.0.4', sport: client.port, dport: 443 };
      b.tcp({ ...C, seq: 10, flags: 0x02 });
      const first = (): unknown => b.tcp({ ...C, seq: 11, flags: 0x18, payload: hello.subarray(0, 40) });
      const second = (): unknown => b.tcp({ ...C, seq: 51, flags: 0x18, payload: hello.subarray(40) });
      if (order === 'in order') { first(); second(); } else { second(); first(); }
      const [f] = analyze(b.build(), false).flows();
      expect(f!.app).toBe('tls');
      expect(f!.tls?.sni).toBe('localhost');
      expect(f!.tls?.ja4).toMatch(/^t1/);
    });
  }
});
