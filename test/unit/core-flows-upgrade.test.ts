// 101 Switching Protocols: after it the connection speaks another protocol both ways, so neither side is read as HTTP/1
// any more (a WebSocket message that reads like a request is no request); a plain WebSocket connection is named so.
import { describe, it, expect } from 'vitest';
import { analyzeCapture, CaptureBuilder, fixtureClientHello, tcpConversation } from './core-packet-builder.js';
import { H2_PREFACE } from '../../src/dissect/http2.js';
import { SETTINGS, addIdx, frame, indexed, litIdx } from './export-h2-frames.js';
import type { Flow } from '../../src/model/flow.js';

const client = { ip: '10.202.46.1', port: 43400 };
const server = { ip: '10.202.46.2', port: 80 };

const upgrade = Buffer.from('GET /chat HTTP/1.1\r\nHost: ws.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
  + 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
const switched = Buffer.from('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
  + 'Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n');
const text = 'GET /not-a-request HTTP/1.1\r\nHost: ws.test\r\n\r\n';

/** A client's WebSocket text frame (RFC 6455 §5.2), masked with a key of zeros (any key is allowed): the text as it is. */
function clientFrame(t: string): Buffer {
  const p = Buffer.from(t);
  return Buffer.concat([Buffer.from([0x81, 0x80 | p.length, 0, 0, 0, 0]), p]);
}

/** A server's frame, not masked. */
function serverFrame(t: string): Buffer {
  const p = Buffer.from(t);
  return Buffer.concat([Buffer.from([0x81, p.length]), p]);
}

const flowsOf = (buf: Buffer): Flow[] => analyzeCapture(buf, { end: true }).flows();

describe('101 Switching Protocols', () => {
  it('a WebSocket: its frames are not read as HTTP, and the connection is named websocket', () => {
    const b = new CaptureBuilder();
    tcpConversation(b, client, server, [upgrade, clientFrame(text), clientFrame('hello')], [switched, serverFrame('HTTP/1.1 200 OK\r\n\r\n')]);
    const [f] = flowsOf(b.build());
    expect(f!.http).toEqual([{ method: 'GET', host: 'ws.test', path: '/chat', status: 101 }]);
    expect(f!.app).toBe('websocket');
  });

  it('an upgrade the server declines: the connection stays HTTP/1 and its next request is read', () => {
    const b = new CaptureBuilder();
    tcpConversation(b, client, server, [upgrade, Buffer.from('GET /next HTTP/1.1\r\nHost: ws.test\r\n\r\n')],
      [Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'), Buffer.from('HTTP/1.1 204 No Content\r\n\r\n')]);
    const [f] = flowsOf(b.build());
    expect(f!.http.map((h) => [h.path, h.status])).toEqual([['/chat', 200], ['/next', 204]]);
    expect(f!.app).toBe('http');
  });

  const h2cExchange = (): { h2c: Buffer; ok: Buffer; second: Buffer; notFound: Buffer } => ({
    h2c: Buffer.from('GET /first HTTP/1.1\r\nHost: h2c.test\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n'),
    ok: Buffer.concat([Buffer.from('HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n'), SETTINGS,
      frame(1, 0x4, 1, indexed(8)), frame(0, 0x1, 1, Buffer.from('hello'))]),
    second: Buffer.concat([H2_PREFACE, SETTINGS, frame(1, 0x5, 3, Buffer.concat([indexed(2), litIdx(4, '/second'), indexed(6), addIdx(1, 'h2c.test')]))]),
    notFound: frame(1, 0x5, 3, indexed(13)),
  });

  it('h2c: the same whatever segments the answer and the client\'s HTTP/2 come in (1 to 24 bytes)', () => {
    const { h2c, ok, second, notFound } = h2cExchange();
    const cut = (b: Buffer, size: number): Buffer[] => Array.from({ length: Math.ceil(b.length / size) }, (_, i) => b.subarray(i * size, (i + 1) * size));
    for (let size = 1; size <= 24; size++) {
      const okPieces = cut(ok, size);
      const secondPieces = cut(second, size);
      const b = new CaptureBuilder();
      tcpConversation(b, client, server,
        [h2c, ...okPieces.slice(1).map(() => null), ...secondPieces, null],
        [...okPieces, ...secondPieces.map(() => null), notFound]);
      const [f] = flowsOf(b.build());
      expect([f!.app, f!.http.map((h) => [h.path, h.status])], `${size}-byte segments`).toEqual(['http2', [['/first', 200], ['/second', 404]]]);
    }
  });

  it('h2c (RFC 7540 §3.2): both sides are read as HTTP/2 after it, the upgrade request answered on stream 1', () => {
    const b = new CaptureBuilder();
    // (the client's preface after the 101, then a second request on stream 3, answered 404)
    const { h2c, ok, second, notFound } = h2cExchange();
    tcpConversation(b, client, server, [h2c, second], [ok, notFound]);
    const [f] = flowsOf(b.build());
    expect(f!.app).toBe('http2');
    expect(f!.http).toEqual([
      { method: 'GET', host: 'h2c.test', path: '/first', status: 200 },
      { method: 'GET', host: 'h2c.test', path: '/second', status: 404 },
    ]);
  });

  it('over TLS, decrypted by the hooks: the same, the connection still TLS', () => {
    const b = new CaptureBuilder();
    const tls = { ...server, port: 443 };
    const attrs = { pid: 100, comm: 'node', lib: 'openssl', proto: 'http' };
    tcpConversation(b, client, tls, [fixtureClientHello()], [Buffer.from([0x16, 0x03, 0x03, 0x00, 0x01, 0x00])], {
      afterTurn: () => {
        b.tls(client, tls, 'out', upgrade, attrs);
        b.tls(tls, client, 'in', switched, attrs);
        b.tls(client, tls, 'out', clientFrame(text), { ...attrs, proto: 'data' });
        b.tls(tls, client, 'in', serverFrame('HTTP/1.1 200 OK\r\n\r\n'), { ...attrs, proto: 'data' });
      },
    });
    const [f] = flowsOf(b.build());
    expect(f!.http).toEqual([{ method: 'GET', host: 'ws.test', path: '/chat', status: 101 }]);
    expect(f!.app).toBe('tls');
  });
});
