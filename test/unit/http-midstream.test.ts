// An HTTP/1 keep-alive connection taken up in the middle (open before the capture began): its first message may be the
// answer to a request before the capture. That answer stands alone; the requests after it get their own answers. (It
// was taken by the next request, and every exchange after it was off by one.) A connection whose start was seen
// still pairs an answer that came before its request in the capture with that request, and so do the TLS hooks'
// decrypted records (two processes' writes, which may come in either order).
import { describe, it, expect } from 'vitest';
import { analyzeCapture, CaptureBuilder, tcpConversation } from './core-packet-builder.js';

const client = { ip: '10.8.0.1', port: 45000 };
const server = { ip: '10.8.0.2', port: 8080 };
const C = { src: client.ip, dst: server.ip, sport: client.port, dport: server.port };
const S = { src: server.ip, dst: client.ip, sport: server.port, dport: client.port };
const req = (path: string) => Buffer.from(`GET ${path} HTTP/1.1\r\nHost: api.test\r\n\r\n`);
const res = (status: number, body = '') => Buffer.from(`HTTP/1.1 ${status} X\r\nContent-Length: ${body.length}\r\n\r\n${body}`);

function midstream(turns: [Buffer | null, Buffer | null][], serverFirst: Buffer | null): ReturnType<typeof summaries> {
  const b = new CaptureBuilder();
  let cs = 7000;
  let ss = 9000;
  if (serverFirst) {
    b.tcp({ ...S, seq: ss, ack: cs, flags: 0x18, payload: serverFirst });
    ss += serverFirst.length;
  }
  for (const [c, s] of turns) {
    if (c) { b.tcp({ ...C, seq: cs, ack: ss, flags: 0x18, payload: c }); cs += c.length; }
    if (s) { b.tcp({ ...S, seq: ss, ack: cs, flags: 0x18, payload: s }); ss += s.length; }
  }
  return summaries(b);
}

function summaries(b: CaptureBuilder): { http: [string | null, string | null, number | null][]; tcp: string | undefined } {
  const f = analyzeCapture(b.build(), { end: true }).flows()[0]!;
  return { http: f.http.map((h) => [h.method, h.path, h.status]), tcp: f.tcp?.state };
}

describe('HTTP/1 on a connection taken up in the middle', () => {
  it('an answer before any request stands alone, and each request after it gets its own', () => {
    const r = midstream([[req('/1'), res(404)], [req('/2'), res(201, 'ok')]], res(200, 'hi'));
    expect(r.tcp).toBe('midstream');
    expect(r.http).toEqual([[null, null, 200], ['GET', '/1', 404], ['GET', '/2', 201]]);
  });

  it('so do two answers before any request', () => {
    const r = midstream([[req('/1'), res(404)]], Buffer.concat([res(200, 'a'), res(204)]));
    expect(r.http).toEqual([[null, null, 200], [null, null, 204], ['GET', '/1', 404]]);
  });

  it('without an answer first, requests and answers pair as usual', () => {
    expect(midstream([[req('/1'), res(404)], [req('/2'), res(201, 'ok')]], null).http).toEqual([['GET', '/1', 404], ['GET', '/2', 201]]);
  });

  it('a connection whose start was seen pairs a request with its answer even when the capture has the answer first', () => {
    // (packets captured out of order: the answer's segment before the request's)
    const b = new CaptureBuilder();
    b.tcp({ ...C, seq: 6999, flags: 0x02 });
    b.tcp({ ...S, seq: 8999, ack: 7000, flags: 0x12 });
    b.tcp({ ...C, seq: 7000, ack: 9000, flags: 0x10 });
    // (the request's head in two segments, the answer's between them)
    const q = req('/1');
    b.tcp({ ...C, seq: 7000, ack: 9000, flags: 0x18, payload: q.subarray(0, 20) });
    b.tcp({ ...S, seq: 9000, ack: 7000 + q.length, flags: 0x18, payload: res(200, 'hi') });
    b.tcp({ ...C, seq: 7020, ack: 9000, flags: 0x18, payload: q.subarray(20) });
    expect(summaries(b).http).toEqual([['GET', '/1', 200]]);
    const t = new CaptureBuilder();
    tcpConversation(t, client, server, [req('/1'), req('/2')], [res(200, 'hi'), res(404)]);
    expect(summaries(t).http).toEqual([['GET', '/1', 200], ['GET', '/2', 404]]);
  });

  it("the hooks' records: an answer before its request is still that request's", () => {
    // (a TLS connection taken up in the middle: records of the application data on the wire, no handshake; the server's
    // write of an answer comes before the client's write of its request)
    const b = new CaptureBuilder();
    const who = { pid: 7, comm: 'python3', lib: 'openssl' };
    const rec = Buffer.concat([Buffer.from([0x17, 0x03, 0x03, 0x00, 0x40]), Buffer.alloc(0x40, 0xaa)]);
    b.tcp({ ...C, seq: 7000, ack: 9000, flags: 0x18, payload: rec });
    b.tls(server, client, 'out', res(200, 'hi'), who);
    b.tls(client, server, 'out', req('/x'), who);
    b.tcp({ ...S, seq: 9000, ack: 7000 + rec.length, flags: 0x18, payload: rec });
    expect(summaries(b).http).toEqual([['GET', '/x', 200]]);
  });
});
