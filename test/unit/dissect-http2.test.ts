// HTTP/2 parser against real h2c traffic between Node's http2 client and server on loopback, tapped by
// a TCP relay: several requests on one connection (HPACK dynamic table reuse), a header block big
// enough to need CONTINUATION, padded frames, priority, a POST body, a gRPC call with trailers.
// A recorded copy is the golden fixture (test/fixtures/dissect/h2c.json; regenerate with
// UPDATE_GOLDEN=1); the same checks run on live traffic, then every chunk size (stride).
import { describe, it, expect, beforeAll } from 'vitest';
import fs from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import os from 'node:os';
import { Http2Parser, looksLikeHttp2, grpcMessages, H2_PREFACE, HEADER_BYTES_CAP } from '../../src/dissect/http2.js';
import { CaptureBuilder, tcpConversation } from './core-packet-builder.js';
import { SETTINGS, addNew, frame, indexed, litIdx } from './export-h2-frames.js';
import type { HttpMessage } from '../../src/dissect/http1.js';

const GOLDEN = path.join(import.meta.dirname, '../fixtures/dissect/h2c.json');
const BIG_HEADER = 'x'.repeat(20_000);

/** Run the exchange through a tapping relay; return both byte streams. */
async function record(settings: { server?: http2.Settings; client?: http2.Settings } = {}): Promise<{ client: Buffer; server: Buffer }> {
  const server = http2.createServer({ paddingStrategy: http2.constants.PADDING_STRATEGY_MAX, settings: settings.server ?? {} });
  server.on('stream', (stream, headers) => {
    const body: Buffer[] = [];
    stream.on('data', (d: Buffer) => body.push(d));
    stream.on('end', () => {
      const p = String(headers[':path']);
      if (String(headers['content-type']).startsWith('application/grpc')) {
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'grpc-message': 'OK' }));
        stream.end(Buffer.from([0, 0, 0, 0, 2, 0x08, 0x01]));
      } else if (p === '/echo') {
        stream.respond({ ':status': 201, 'content-type': 'text/plain' });
        stream.end(Buffer.concat(body));
      } else {
        stream.respond({ ':status': 200, 'content-type': 'text/plain', 'x-path': p });
        stream.end(`hello ${p}`);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const target = (server.address() as net.AddressInfo).port;
  const c2s: Buffer[] = [];
  const s2c: Buffer[] = [];
  const relay = net.createServer((down) => {
    const up = net.connect(target, '127.0.0.1');
    down.on('data', (d) => { c2s.push(d); up.write(d); });
    up.on('data', (d) => { s2c.push(d); down.write(d); });
    down.on('end', () => up.end());
    up.on('end', () => down.end());
    down.on('error', () => up.destroy());
    up.on('error', () => down.destroy());
  });
  await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
  const relayPort = (relay.address() as net.AddressInfo).port;
  const session = http2.connect(`http://127.0.0.1:${relayPort}`, { paddingStrategy: http2.constants.PADDING_STRATEGY_MAX, settings: settings.client ?? {} });
  const call = (headers: http2.OutgoingHttpHeaders, body?: Buffer, opts?: http2.ClientSessionRequestOptions): Promise<void> =>
    new Promise((resolve, reject) => {
      const req = session.request(headers, { endStream: body === undefined, ...opts });
      req.on('response', () => {});
      req.on('data', () => {});
      req.on('end', () => resolve());
      req.on('error', reject);
      if (body !== undefined) req.end(body);
    });
  // sequential, so the fixture's stream order is stable
  await call({ ':path': '/one', 'user-agent': 'tapscope-test' });
  await call({ ':path': '/two', 'user-agent': 'tapscope-test' }, undefined, { weight: 32, exclusive: true });
  await call({ ':path': '/big', 'x-big': BIG_HEADER });
  await call({ ':method': 'POST', ':path': '/echo', 'content-type': 'text/plain' }, Buffer.from('posted body'));
  await call({ ':method': 'POST', ':path': '/helloworld.Greeter/SayHello', 'content-type': 'application/grpc', te: 'trailers' },
    Buffer.from([0, 0, 0, 0, 3, 0x0a, 0x01, 0x41]));
  await new Promise<void>((r) => session.close(() => r()));
  await new Promise((r) => setTimeout(r, 50));
  relay.close();
  server.close();
  return { client: Buffer.concat(c2s), server: Buffer.concat(s2c) };
}

function parse(side: 'client' | 'server', data: Buffer, chunk = data.length): HttpMessage[] {
  const p = new Http2Parser(side);
  const out: HttpMessage[] = [];
  for (let o = 0; o < data.length; o += chunk) out.push(...p.push(data.subarray(o, o + chunk), o));
  expect(p.failed).toBe(false);
  return out;
}

function check(rec: { client: Buffer; server: Buffer }): void {
  expect(rec.client.subarray(0, 24).equals(H2_PREFACE)).toBe(true);
  const reqs = parse('client', rec.client);
  expect(reqs.map((m) => `${m.method} ${m.path}`)).toEqual([
    'GET /one', 'GET /two', 'GET /big', 'POST /echo', 'POST /helloworld.Greeter/SayHello',
  ]);
  expect(reqs.map((m) => m.streamId)).toEqual([1, 3, 5, 7, 9]);
  const get = (m: HttpMessage, k: string): string | undefined => m.headers.find(([n]) => n === k)?.[1];
  // the second request's user-agent comes from the HPACK dynamic table
  expect(get(reqs[1]!, 'user-agent')).toBe('tapscope-test');
  expect(get(reqs[2]!, 'x-big')).toBe(BIG_HEADER);
  expect(reqs[3]!.body.toString()).toBe('posted body');
  expect(reqs[4]!.grpcMethod).toBe('/helloworld.Greeter/SayHello');
  expect(reqs.slice(0, 4).every((m) => m.grpcMethod === undefined)).toBe(true);
  expect(reqs.every((m) => m.kind === 'request' && !m.bodyTruncated)).toBe(true);

  const resps = parse('server', rec.server);
  expect(resps.map((m) => [m.streamId, m.status])).toEqual([[1, 200], [3, 200], [5, 200], [7, 201], [9, 200]]);
  expect(resps[0]!.body.toString()).toBe('hello /one');
  expect(get(resps[1]!, 'x-path')).toBe('/two');
  expect(resps[3]!.body.toString()).toBe('posted body');
  expect(get(resps[4]!, 'grpc-status')).toBe('0');
  expect(resps[4]!.body).toEqual(Buffer.from([0, 0, 0, 0, 2, 0x08, 0x01]));
  expect(grpcMessages(reqs[4]!.body)).toEqual([{ compressed: false, length: 3, data: Buffer.from([0x0a, 0x01, 0x41]) }]);
  expect(grpcMessages(resps[4]!.body)).toEqual([{ compressed: false, length: 2, data: Buffer.from([0x08, 0x01]) }]);
}

/** Frame types and flags present in a direction, to prove the traffic exercises what we claim. */
function frameKinds(data: Buffer, client: boolean): Set<string> {
  const kinds = new Set<string>();
  let o = client ? 24 : 0;
  while (o + 9 <= data.length) {
    const len = data.readUIntBE(o, 3);
    const type = data[o + 3]!;
    const flags = data[o + 4]!;
    kinds.add(`type${type}`);
    if ((type === 0 || type === 1) && flags & 0x8) kinds.add('padded');
    if (type === 1 && flags & 0x20) kinds.add('priority');
    o += 9 + len;
  }
  return kinds;
}

describe('HTTP/2 golden fixture (recorded h2c between Node http2 client and server)', () => {
  let rec = { client: Buffer.alloc(0), server: Buffer.alloc(0) };
  beforeAll(async () => {
    if (process.env.UPDATE_GOLDEN) {
      const r = await record();
      fs.writeFileSync(GOLDEN, `${JSON.stringify({ recordedWith: `node ${process.version} http2 (nghttp2 ${process.versions.nghttp2})`, client: r.client.toString('hex'), server: r.server.toString('hex') }, null, 1)}\n`);
    }
    const golden = JSON.parse(fs.readFileSync(GOLDEN, 'utf8')) as { client: string; server: string };
    rec = { client: Buffer.from(golden.client, 'hex'), server: Buffer.from(golden.server, 'hex') };
  });

  it('the traffic has CONTINUATION, padding, priority and SETTINGS frames', () => {
    const c = frameKinds(rec.client, true);
    for (const k of ['type4', 'type1', 'type9', 'type0', 'padded', 'priority']) expect(c).toContain(k);
  });
  it('requests and responses, HPACK dynamic table, CONTINUATION, gRPC method and trailers', () => check(rec));
  it('stride: every chunk size gives the same messages', () => {
    for (const side of ['client', 'server'] as const) {
      const data = side === 'client' ? rec.client : rec.server;
      const ref = JSON.stringify(parse(side, data).map((m) => ({ ...m, ts: 0, endTs: 0 })));
      for (const size of [1, 2, 3, 7, 9, 10, 100, 1000, 16393]) {
        expect(JSON.stringify(parse(side, data, size).map((m) => ({ ...m, ts: 0, endTs: 0 })))).toBe(ref);
      }
    }
  });
  it('gap() returns streams in flight as truncated and stops decoding', () => {
    const p = new Http2Parser('server');
    const cut = rec.server.indexOf(Buffer.from('hello /one')) + 3;
    expect(p.push(rec.server.subarray(0, cut), 0)).toEqual([]);
    expect(p.gap().map((m) => [m.streamId, m.bodyTruncated])).toEqual([[1, true]]);
    expect(p.push(rec.server.subarray(cut), 1)).toEqual([]);
    expect(p.failed).toBe(true);
  });
  it('close() returns the streams whose headers came (the body short of its content-length truncated), and no others', () => {
    // (an answer whose END_STREAM never came: its connection closed first; and a request stream with no headers yet)
    // (:status 200 and content-length, HEADERS with END_HEADERS only; DATA without END_STREAM)
    const answer = (id: number, length: string, body: string): Buffer =>
      Buffer.concat([frame(1, 0x4, id, Buffer.concat([indexed(8), litIdx(28, length)])), frame(0, 0, id, Buffer.from(body))]);
    const p = new Http2Parser('server');
    expect(p.push(Buffer.concat([SETTINGS, answer(1, '5', 'hello'), answer(3, '9', 'cut'), frame(1, 0, 5, indexed(8))]), 0)).toEqual([]);
    expect(p.close().map((m) => [m.streamId, m.status, m.body.toString(), m.bodyTruncated])).toEqual([[1, 200, 'hello', false], [3, 200, 'cut', true]]);
    expect(p.close()).toEqual([]);
  });
  it('keeps no view into the caller\'s chunks', () => {
    const ref = JSON.stringify(parse('client', rec.client).map((m) => ({ ...m, ts: 0, endTs: 0 })));
    for (const size of [5, 20, 700, 9000]) {
      const p = new Http2Parser('client');
      const out: HttpMessage[] = [];
      for (let o = 0; o < rec.client.length; o += size) {
        const chunk = Buffer.from(rec.client.subarray(o, o + size));
        out.push(...p.push(chunk, o));
        chunk.fill(0);
      }
      expect(JSON.stringify(out.map((m) => ({ ...m, ts: 0, endTs: 0 })))).toBe(ref);
    }
  });
  it('an HPACK bomb (one 4000-byte table entry named 16,000 times) keeps 64 KiB of headers and counts the rest; trailers too', () => {
    const big = 'a'.repeat(4000);
    // (:method GET, :path /, :scheme http; x: big, added to the table; then the entry (62) again and again)
    const block = Buffer.concat([indexed(2), indexed(4), indexed(6), addNew('x', big), Buffer.alloc(16_000, 0xbe)]);
    const p = new Http2Parser('client');
    const [m] = p.push(Buffer.concat([H2_PREFACE, SETTINGS, frame(1, 0x4, 1, block), frame(1, 0x5, 1, Buffer.alloc(100, 0xbe))]), 0);
    expect(p.failed).toBe(false);
    expect([m!.method, m!.path]).toEqual(['GET', '/']);
    const size = m!.headers.reduce((n, [k, v]) => n + k.length + v.length, 0);
    expect(size).toBeLessThanOrEqual(HEADER_BYTES_CAP);
    expect(size).toBeGreaterThan(HEADER_BYTES_CAP - 4001);
    expect(m!.headers.length + m!.headersDropped!).toBe(3 + 1 + 16_000 + 100);
    // (a block within the cap: all kept, nothing counted)
    const [small] = new Http2Parser('client').push(Buffer.concat([H2_PREFACE, SETTINGS, frame(1, 0x5, 1, Buffer.concat([indexed(2), indexed(4), indexed(6), addNew('x', big), Buffer.alloc(10, 0xbe)]))]), 0);
    expect([small!.headers.length, small!.headersDropped]).toEqual([3 + 1 + 10, undefined]);
  });
  it('a frame of 4 MiB (a peer may allow 16 MiB) in 1448-byte segments: the same answer as in one piece', () => {
    const body = Buffer.alloc(4 << 20, 0x61);
    const bytes = Buffer.concat([SETTINGS, frame(1, 0x4, 1, Buffer.concat([indexed(8), litIdx(28, String(body.length))])), frame(0, 0x1, 1, body)]);
    const whole = new Http2Parser('server').push(bytes, 0);
    const p = new Http2Parser('server');
    const out: HttpMessage[] = [];
    for (let o = 0; o < bytes.length; o += 1448) out.push(...p.push(Buffer.from(bytes.subarray(o, o + 1448)), 0));
    // (its body kept up to the cap)
    expect(whole.map((m) => [m.status, m.body.length, m.body.every((x) => x === 0x61)])).toEqual([[200, 65536, true]]);
    expect(out.map((m) => [m.status, m.bodySize, m.body.length])).toEqual(whole.map((m) => [m.status, m.bodySize, m.body.length]));
  });
  it('a header block that never ends (a CONTINUATION flood) ends the direction\'s decoding; a long real one is read', () => {
    // (HEADERS without END_HEADERS, then one-byte CONTINUATION frames: each was kept, a million took 230 MB)
    const flood = new Http2Parser('client');
    flood.push(Buffer.concat([H2_PREFACE, SETTINGS, frame(1, 0x1, 1, indexed(2))]), 0);
    for (let i = 0; i < 4095; i++) flood.push(frame(9, 0, 1, indexed(4)), 0);
    expect(flood.failed).toBe(false);
    flood.push(frame(9, 0, 1, indexed(4)), 0);
    expect(flood.failed).toBe(true);
    // (a block of 40 CONTINUATION frames of 20 KiB each: 800 KiB, its headers read)
    const value = 'v'.repeat(20 * 1024);
    const parts = Array.from({ length: 41 }, (_, i) => (i === 0 ? Buffer.concat([indexed(2), indexed(4), indexed(6)]) : addNew(`x-${i}`, value)));
    const long = new Http2Parser('client');
    const msgs = long.push(Buffer.concat([H2_PREFACE, SETTINGS, frame(1, 0x1, 1, parts[0]!), ...parts.slice(1).map((p, i) => frame(9, i === 39 ? 0x4 : 0, 1, p))]), 0);
    expect(long.failed).toBe(false);
    expect(msgs.map((m) => [m.method, m.path, m.headers.length + (m.headersDropped ?? 0)])).toEqual([['GET', '/', 3 + 40]]);
  });
  it('a parser started mid-connection (no preface) still reads frames', () => {
    const settingsEnd = 24 + 9 + rec.client.readUIntBE(24, 3);
    const msgs = parse('client', rec.client.subarray(settingsEnd));
    expect(msgs.length).toBe(5);
  });
});

describe.skipIf(spawnSync('tshark', ['--version']).status !== 0)('HTTP/2 cross-check with tshark', () => {
  it('tshark decodes the same requests, statuses and headers from the golden bytes', () => {
    const golden = JSON.parse(fs.readFileSync(GOLDEN, 'utf8')) as { client: string; server: string };
    const client = Buffer.from(golden.client, 'hex');
    const server = Buffer.from(golden.server, 'hex');
    const segs = (b: Buffer): Buffer[] => Array.from({ length: Math.ceil(b.length / 1400) }, (_, i) => b.subarray(i * 1400, (i + 1) * 1400));
    const cap = new CaptureBuilder();
    tcpConversation(cap, { ip: '10.206.0.1', port: 40000 }, { ip: '10.206.0.2', port: 8080 }, segs(client), segs(server));
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsd-h2-'));
    try {
      const file = path.join(dir, 'h2c.pcapng');
      fs.writeFileSync(file, cap.build());
      const out = execFileSync('tshark', ['-r', file, '-d', 'tcp.port==8080,http2', '-Y', 'http2.type == 1', '-T', 'fields', '-E', 'occurrence=a', '-E', 'aggregator=|',
        '-e', 'tcp.srcport', '-e', 'http2.headers.path', '-e', 'http2.headers.status', '-e', 'http2.headers.user_agent', '-e', 'http2.header.name'],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      const rows = out.trim().split('\n').map((l) => l.split('\t'));
      const col = (i: number, port: string): string[] => rows.filter((r) => r[0] === port).flatMap((r) => (r[i] ? r[i]!.split('|') : []));
      const reqs = parse('client', client);
      const resps = parse('server', server);
      expect(col(1, '40000')).toEqual(reqs.map((m) => m.path));
      expect(col(2, '8080').map(Number)).toEqual(resps.map((m) => m.status));
      expect(col(3, '40000')).toEqual(reqs.filter((m) => m.headers.some(([k]) => k === 'user-agent')).map((m) => m.headers.find(([k]) => k === 'user-agent')![1]));
      expect(col(4, '8080')).toEqual(resps.flatMap((m) => m.headers.map(([k]) => k)));
      expect(col(4, '40000')).toEqual(reqs.flatMap((m) => m.headers.map(([k]) => k)));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('HTTP/2 live traffic', () => {
  it('the current Node/nghttp2 produces traffic the parser reads the same way', async () => {
    check(await record());
  });
  it('HPACK dynamic table resized by SETTINGS_HEADER_TABLE_SIZE (0 and 256) on both sides', async () => {
    const rec = await record({ server: { headerTableSize: 0 }, client: { headerTableSize: 256 } });
    check(rec);
    // the client's encoder follows the server's SETTINGS (0) and vice versa (256): size updates were applied
    const c = new Http2Parser('client');
    c.push(rec.client, 0);
    const sv = new Http2Parser('server');
    sv.push(rec.server, 0);
    expect([c.hpackTableSize, sv.hpackTableSize]).toEqual([0, 256]);
  });
});

describe('grpcMessages', () => {
  it('splits several messages, marks compression, keeps a capped tail', () => {
    const body = Buffer.from([0, 0, 0, 0, 1, 0xaa, 1, 0, 0, 0, 2, 0xbb, 0xcc, 0, 0, 0, 0, 9, 0xdd]);
    expect(grpcMessages(body)).toEqual([
      { compressed: false, length: 1, data: Buffer.from([0xaa]) },
      { compressed: true, length: 2, data: Buffer.from([0xbb, 0xcc]) },
      { compressed: false, length: 9, data: Buffer.from([0xdd]) },
    ]);
    expect(grpcMessages(Buffer.from('not grpc'))).toEqual([]);
  });
});

describe('looksLikeHttp2', () => {
  it('matches the client preface and its prefixes only', () => {
    expect(looksLikeHttp2(H2_PREFACE)).toBe(true);
    expect(looksLikeHttp2(Buffer.from('PRI * HT'))).toBe(true);
    expect(looksLikeHttp2(Buffer.from('GET / HTTP/1.1'))).toBe(false);
    expect(looksLikeHttp2(Buffer.from('PR'))).toBe(false);
  });
});
