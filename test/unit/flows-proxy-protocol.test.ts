// Connections that begin with a PROXY protocol header (HAProxy's versions 1 and 2, as load balancers and proxies
// that relay TCP send it): the header's client and address read, and the client's TLS, HTTP or mail session after it
// dissected as if the header were not there; every prefix of a header waits for more, malformed ones and the
// requests that merely begin alike ("POST", "PUT", HTTP/2's "PRI") are no header.
import { describe, it, expect } from 'vitest';
import { conversationFlows, CLIENT, server } from './conversation-flows.js';
import { proxyHeader } from '../../src/dissect/proxy-protocol.js';
import { INCOMPLETE } from '../../src/dissect/db-prelude.js';
import { tlsStartInPlace } from '../../src/dissect/starttls.js';
import { compileFilter } from '../../src/filter/index.js';
import { proxiedText } from '../../src/model/flow-target.js';
import { fixtureClientHello, tls12ServerHello } from './core-packet-builder.js';

const C = CLIENT;
const S = server;

/** A v2 header (written here from the spec, not by the code under test): command 1 (PROXY) unless given. */
function v2(family: 'tcp4' | 'tcp6' | 'unix' | 'unspec', opts: { command?: number; tlvs?: Buffer; src?: string; dst?: string; sport?: number; dport?: number } = {}): Buffer {
  const sig = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');
  const addr = (ip: string): Buffer => (ip.includes(':')
    ? Buffer.from(ip.split(':').map((g) => g.padStart(4, '0')).join(''), 'hex')
    : Buffer.from(ip.split('.').map(Number)));
  const ports = Buffer.alloc(4);
  ports.writeUInt16BE(opts.sport ?? 51234, 0);
  ports.writeUInt16BE(opts.dport ?? 443, 2);
  const block = family === 'tcp4' ? Buffer.concat([addr(opts.src ?? '198.51.100.7'), addr(opts.dst ?? '203.0.113.10'), ports])
    : family === 'tcp6' ? Buffer.concat([addr(opts.src ?? '2001:0db8:0000:0000:0000:0000:0000:0007'), addr(opts.dst ?? '2001:0db8:0000:0000:0000:0000:0001:0000'), ports])
      : family === 'unix' ? Buffer.alloc(216) : Buffer.alloc(0);
  const body = Buffer.concat([block, opts.tlvs ?? Buffer.alloc(0)]);
  const head = Buffer.from([0x20 | (opts.command ?? 1), { tcp4: 0x11, tcp6: 0x21, unix: 0x31, unspec: 0x00 }[family], body.length >> 8, body.length & 0xff]);
  return Buffer.concat([sig, head, body]);
}

const V1 = 'PROXY TCP4 198.51.100.7 203.0.113.10 51234 443\r\n';
const hello = fixtureClientHello();
const serverHello = tls12ServerHello;

const flowsOf = conversationFlows;

const plainTls = flowsOf([{ port: 443, c2s: [hello], s2c: [serverHello()] }])[0]!;

describe('reading a PROXY protocol header', () => {
  it('v1: TCP4, TCP6 and UNKNOWN, with the length the client\'s bytes begin after', () => {
    expect(proxyHeader(Buffer.from(`${V1}\x16\x03\x01`))).toEqual({ version: 1, src: { ip: '198.51.100.7', port: 51234 }, dst: { ip: '203.0.113.10', port: 443 }, length: V1.length });
    const six = 'PROXY TCP6 2001:db8::7 2001:db8::1:0 65535 0\r\n';
    expect(proxyHeader(Buffer.from(`${six}GET /`))).toEqual({ version: 1, src: { ip: '2001:db8::7', port: 65535 }, dst: { ip: '2001:db8::1:0', port: 0 }, length: six.length });
    for (const unknown of ['PROXY UNKNOWN\r\n', 'PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n']) {
      expect(proxyHeader(Buffer.from(unknown))).toEqual({ version: 1, src: null, dst: null, length: unknown.length });
    }
  });

  it('v2 TLVs: the authority and ALPN the client asked for, and its TLS the proxy ended (version, cipher, certificate CN)', () => {
    const tlv = (type: number, value: Buffer | string): Buffer => {
      const v = typeof value === 'string' ? Buffer.from(value) : value;
      return Buffer.concat([Buffer.from([type, v.length >> 8, v.length & 0xff]), v]);
    };
    // PP2_TYPE_SSL: client flags (SSL, certificate on this connection), verify 0, then sub-TLVs
    const ssl = (client: number, subs: Buffer[]): Buffer => tlv(0x20, Buffer.concat([Buffer.from([client, 0, 0, 0, 0]), ...subs]));
    const terminated = Buffer.concat([
      tlv(0x01, 'h2'), tlv(0x02, 'api.example'), tlv(0x04, Buffer.alloc(3)),
      ssl(0x03, [tlv(0x21, 'TLSv1.3'), tlv(0x23, 'TLS_AES_256_GCM_SHA384'), tlv(0x22, 'büro client'), tlv(0x25, 'RSA2048')]),
      // (AWS's: the VPC endpoint id)
      tlv(0xea, Buffer.concat([Buffer.from([0x01]), Buffer.from('vpce-08d2bf15fac5001c9')])),
    ]);
    expect(proxyHeader(v2('tcp4', { tlvs: terminated }))).toMatchObject({
      authority: 'api.example', alpn: 'h2', tls: { version: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', clientCertCn: 'büro client' },
    });
    // the SSL TLV without the client's SSL flag (a plain client): no TLS; a health check's (LOCAL) keeps its TLVs
    expect(proxyHeader(v2('tcp4', { tlvs: ssl(0x00, [tlv(0x21, 'TLSv1.3')]) }))).not.toHaveProperty('tls');
    expect(proxyHeader(v2('tcp4', { command: 0, tlvs: tlv(0x02, 'health.example') }))).toMatchObject({ src: null, authority: 'health.example' });
    // TLVs that do not fit the header, or text that is not text: not read; the header is
    const cut = Buffer.concat([tlv(0x02, 'api.example'), Buffer.from([0x01, 0x00, 0x09, 0x68])]);
    expect(proxyHeader(v2('tcp4', { tlvs: cut }))).toEqual({ version: 2, src: { ip: '198.51.100.7', port: 51234 }, dst: { ip: '203.0.113.10', port: 443 }, length: 16 + 12 + cut.length });
    expect(proxyHeader(v2('tcp4', { tlvs: tlv(0x02, 'a\nb') }))).not.toHaveProperty('authority');
    expect(proxyHeader(v2('tcp4', { tlvs: ssl(0x01, [tlv(0x21, 'TLSv1.2')]) }))!).toMatchObject({ tls: { version: 'TLSv1.2', cipher: null, clientCertCn: null } });
  });

  it('a TLS-terminating proxy\'s plain connection says what the client asked for and its TLS; the filter names them', () => {
    const tlv = (type: number, value: string): Buffer => Buffer.concat([Buffer.from([type, 0, value.length]), Buffer.from(value)]);
    const ssl = Buffer.concat([Buffer.from([0x20, 0, 5 + 3 + 7 + 3 + 22, 0x01, 0, 0, 0, 0]), tlv(0x21, 'TLSv1.3'), tlv(0x23, 'TLS_AES_256_GCM_SHA384')]);
    const [f] = flowsOf([{ port: 8080, c2s: [Buffer.concat([v2('tcp4', { tlvs: Buffer.concat([tlv(0x02, 'shop.example'), ssl]) }), Buffer.from('GET /cart HTTP/1.1\r\nHost: shop.example\r\n\r\n')])], s2c: ['HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'] }]);
    expect(f!.app).toBe('http');
    expect(f!.proxy).toEqual({ version: 2, src: { ip: '198.51.100.7', port: 51234 }, dst: { ip: '203.0.113.10', port: 443 }, authority: 'shop.example', tls: { version: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', clientCertCn: null } });
    expect(proxiedText(f!.proxy!)).toBe("its client's TLS (TLSv1.3, TLS_AES_256_GCM_SHA384) ended at the proxy; it asked for shop.example");
    expect(proxiedText({ version: 2, src: null, dst: null, alpn: 'h2', tls: { version: null, cipher: null, clientCertCn: 'ops' } }))
      .toBe("its client's TLS ended at the proxy, with a client certificate for ops; over h2");
    expect(proxiedText({ version: 1, src: null, dst: null })).toBeNull();
    for (const [expr, want] of [['proxy.tls', true], ['proxy.tls.version == "TLSv1.3"', true], ['proxy.authority == "shop.example"', true], ['proxy.alpn', false], ['proxy.tls.cipher contains "CHACHA"', false]] as const) {
      expect(compileFilter(expr)(f!), expr).toBe(want);
    }
  });

  it('v2: IPv4, IPv6 (canonical text), TLVs read past, LOCAL, UNIX and unspecified addresses named as none', () => {
    const tlvs = Buffer.from([0x02, 0x00, 0x0b, ...Buffer.from('example.com'), 0x04, 0x00, 0x00]);
    expect(proxyHeader(Buffer.concat([v2('tcp4', { tlvs }), hello]))).toEqual({
      version: 2, src: { ip: '198.51.100.7', port: 51234 }, dst: { ip: '203.0.113.10', port: 443 }, length: 16 + 12 + tlvs.length, authority: 'example.com',
    });
    expect(proxyHeader(v2('tcp6'))).toEqual({ version: 2, src: { ip: '2001:db8::7', port: 51234 }, dst: { ip: '2001:db8::1:0', port: 443 }, length: 16 + 36 });
    expect(proxyHeader(v2('tcp4', { command: 0 }))).toEqual({ version: 2, src: null, dst: null, length: 28 });
    expect(proxyHeader(v2('unix'))).toEqual({ version: 2, src: null, dst: null, length: 16 + 216 });
    expect(proxyHeader(v2('unspec'))).toEqual({ version: 2, src: null, dst: null, length: 16 });
  });

  it('every prefix of a header waits for more; the whole header is read', () => {
    for (const whole of [Buffer.from(V1), v2('tcp4'), v2('tcp6', { tlvs: Buffer.from([0x01, 0x00, 0x02, 0x68, 0x32]) })]) {
      for (let n = 1; n < whole.length; n++) expect(proxyHeader(whole.subarray(0, n)), `${n} of ${whole.length}`).toBe(INCOMPLETE);
      expect(proxyHeader(whole)).toMatchObject({ length: whole.length });
    }
  });

  it('malformed headers and the streams that only begin alike are none', () => {
    const none = [
      'POST / HTTP/1.1\r\n', 'PUT /x HTTP/1.1\r\n', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'PROXYTCP4 1.2.3.4 1.2.3.4 1 2\r\n',
      'PROXY TCP4 198.51.100.7 203.0.113.10 51234 443\n', // no CR
      'PROXY TCP4 198.51.100.7 203.0.113.10 51234\r\n', // a port missing
      'PROXY TCP4 198.51.100.7 203.0.113.10 51234 443 9\r\n',
      'PROXY TCP4 198.51.100.777 203.0.113.10 51234 443\r\n',
      'PROXY TCP4 2001:db8::7 2001:db8::1 51234 443\r\n', // IPv6 addresses under TCP4
      'PROXY TCP6 198.51.100.7 203.0.113.10 51234 443\r\n',
      'PROXY TCP4 198.51.100.7 203.0.113.10 65536 443\r\n',
      'PROXY TCP4 198.51.100.7 203.0.113.10 051234 443\r\n',
      'PROXY UDP4 198.51.100.7 203.0.113.10 51234 443\r\n',
      `PROXY UNKNOWN ${'x'.repeat(100)}\r\n`, // longer than v1's 107 bytes
      '\r\n\r\nGET / HTTP/1.1\r\n',
    ];
    for (const text of none) expect(proxyHeader(Buffer.from(text)), JSON.stringify(text)).toBeNull();
    // no line end within v1's 107 bytes
    expect(proxyHeader(Buffer.from(`PROXY UNKNOWN ${'x'.repeat(120)}`))).toBeNull();
    const good = v2('tcp4');
    const bad = (at: number, value: number): Buffer => { const b = Buffer.from(good); b[at] = value; return b; };
    expect(proxyHeader(bad(12, 0x11)), 'version 1 in the binary form').toBeNull();
    expect(proxyHeader(bad(12, 0x22)), 'command 2').toBeNull();
    expect(proxyHeader(bad(13, 0x41)), 'family 4').toBeNull();
    expect(proxyHeader(bad(13, 0x13)), 'transport 3').toBeNull();
    expect(proxyHeader(bad(15, 11)), 'an address block shorter than IPv4\'s').toBeNull();
    expect(proxyHeader(Buffer.from([0x16, 0x03, 0x01]))).toBeNull();
  });
});

describe('connections that begin with a PROXY header', () => {
  it('TLS after v1 or v2, in the header\'s segment or the next, or cut anywhere: the same hello fields as without it, and a relay\'s verdict', () => {
    const h2 = v2('tcp4');
    const flows = flowsOf([
      { port: 443, c2s: [Buffer.concat([Buffer.from(V1), hello])], s2c: [serverHello()] },
      { port: 443, c2s: [V1, hello], s2c: [null, serverHello()] },
      { port: 443, c2s: [V1.slice(0, 3), Buffer.concat([Buffer.from(V1.slice(3)), hello.subarray(0, 20)]), hello.subarray(20)], s2c: [null, null, serverHello()] },
      { port: 8443, c2s: [h2.subarray(0, 1), Buffer.concat([h2.subarray(1), hello])], s2c: [null, serverHello()] },
      { port: 8443, c2s: [Buffer.concat([v2('tcp6'), hello])], s2c: [serverHello()] },
    ]);
    expect(flows).toHaveLength(5);
    for (const f of flows) {
      expect(f.app, JSON.stringify(f)).toBe('tls');
      expect(f.tls).toMatchObject({ sni: plainTls.tls!.sni, ja3: plainTls.tls!.ja3, ja4: plainTls.tls!.ja4, cipher: 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256' });
      // the header names another client: this one relays its TLS; the library is the fingerprint's, the reason says so
      expect(f.tls!.client).toMatchObject({ library: plainTls.tls!.client!.library, via: 'fingerprint', confidence: plainTls.tls!.client!.confidence, plaintext: false });
      expect(f.tls!.client!.reason).toContain(`this connection relays TLS for ${f.proxy!.src!.ip.includes(':') ? `[${f.proxy!.src!.ip}]` : f.proxy!.src!.ip}:51234 (its PROXY protocol header`);
      expect(f.tls!.server).toEqual(plainTls.tls!.server);
    }
    // a client whose header names itself relays nothing: the verdict of a plain TLS flow
    const [self] = flowsOf([{ port: 443, c2s: [Buffer.concat([Buffer.from(`PROXY TCP4 ${C.ip} 10.9.0.2 ${C.port} 443\r\n`), hello])], s2c: [serverHello()] }]);
    expect(self!.proxy?.src).toEqual(C);
    expect(self!.tls!.client).toEqual(plainTls.tls!.client);
    expect(flows.map((f) => f.proxy)).toEqual([
      ...Array(3).fill({ version: 1, src: { ip: '198.51.100.7', port: 51234 }, dst: { ip: '203.0.113.10', port: 443 } }),
      { version: 2, src: { ip: '198.51.100.7', port: 51234 }, dst: { ip: '203.0.113.10', port: 443 } },
      { version: 2, src: { ip: '2001:db8::7', port: 51234 }, dst: { ip: '2001:db8::1:0', port: 443 } },
    ]);
    expect(plainTls.proxy).toBeUndefined();
  });

  it('the same flow whatever the segment size (a stride over the header, the hello and an HTTP request after them)', () => {
    for (const [port, stream] of [[443, Buffer.concat([Buffer.from(V1), hello])], [8443, Buffer.concat([v2('tcp6', { tlvs: Buffer.from([0x04, 0x00, 0x00]) }), hello])],
      [80, Buffer.concat([v2('tcp4'), Buffer.from('GET /s HTTP/1.1\r\nHost: s\r\n\r\n')])]] as const) {
      const answer = port === 80 ? Buffer.from('HTTP/1.1 204 No Content\r\n\r\n') : serverHello();
      const whole = flowsOf([{ port, c2s: [stream], s2c: [answer] }])[0]!;
      expect(whole.proxy, `${port}`).toBeDefined();
      for (let size = 1; size <= 64; size++) {
        const pieces: Buffer[] = [];
        for (let at = 0; at < stream.length; at += size) pieces.push(stream.subarray(at, at + size));
        const [f] = flowsOf([{ port, c2s: [...pieces, null], s2c: [...pieces.map(() => null), answer] }]);
        expect([f!.app, f!.proxy, f!.tls, f!.http], `${port} in ${size}-byte segments`).toEqual([whole.app, whole.proxy, whole.tls, whole.http]);
      }
    }
  });

  it('a decrypted record that comes before the client\'s first bytes: the header is still read before the hello', () => {
    // (the hooks' ring and the packets' are read apart: the client's first write inside TLS can come first)
    const [f] = flowsOf([{
      port: 443, c2s: [null, Buffer.concat([Buffer.from(V1), hello])], s2c: [null, serverHello()],
      afterTurn: (b, client, turn) => { if (turn === 0) b.tls(client, S(443), 'out', Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n\r\n'), { pid: 9, comm: 'curl', lib: 'openssl' }); },
    }]);
    expect(f!.app).toBe('tls');
    expect(f!.proxy).toMatchObject({ version: 1, src: { ip: '198.51.100.7' } });
    expect(f!.tls).toMatchObject({ sni: plainTls.tls!.sni, ja4: plainTls.tls!.ja4, cipher: 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256' });
    expect(f!.tls!.client).toMatchObject({ library: 'openssl', via: 'hook', plaintext: true });
  });

  it('HTTP after the header: its requests and statuses, the header not taken for a request line', () => {
    const [post, local] = flowsOf([
      { port: 80, c2s: [`${V1}POST /orders HTTP/1.1\r\nHost: shop.example\r\nContent-Length: 2\r\n\r\n{}`], s2c: ['HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n'] },
      // a health check's LOCAL header, then its request in the next segment
      { port: 80, c2s: [v2('tcp4', { command: 0 }), 'GET /healthz HTTP/1.1\r\nHost: lb\r\n\r\n'], s2c: [null, 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'] },
    ]);
    expect(post!.app).toBe('http');
    expect(post!.http.map((h) => [h.method, h.host, h.path, h.status])).toEqual([['POST', 'shop.example', '/orders', 201]]);
    expect(post!.proxy).toMatchObject({ version: 1, src: { ip: '198.51.100.7' } });
    expect(local!.app).toBe('http');
    expect(local!.http.map((h) => [h.method, h.path, h.status])).toEqual([['GET', '/healthz', 200]]);
    expect(local!.proxy).toEqual({ version: 2, src: null, dst: null });
  });

  it('a mail server behind the proxy: SMTP\'s STARTTLS read after the header, and where TLS began counts it', () => {
    // (the server greets once the header is in)
    const c2s = [Buffer.from(V1), null, 'EHLO a\r\n', 'STARTTLS\r\n', hello];
    const s2c = [null, '220 mx ESMTP\r\n', '250 STARTTLS\r\n', '220 Ready\r\n', serverHello()];
    const [f] = flowsOf([{ port: 25, c2s, s2c }]);
    expect(f!.app).toBe('smtp');
    expect(f!.tls).toMatchObject({ sni: plainTls.tls!.sni, ja4: plainTls.tls!.ja4 });
    expect(f!.proxy?.version).toBe(1);
    const wire = (parts: (Buffer | string | null)[]): Buffer => Buffer.concat(parts.filter((p) => p !== null).map((p) => Buffer.from(p)));
    expect(tlsStartInPlace(wire(c2s), wire(s2c))).toEqual({ client: V1.length + 'EHLO a\r\nSTARTTLS\r\n'.length, server: '220 mx ESMTP\r\n250 STARTTLS\r\n220 Ready\r\n'.length });
    // TLS right after the header: the header is the prelude
    expect(tlsStartInPlace(Buffer.concat([v2('tcp6'), hello]), serverHello())).toEqual({ client: 52, server: 0 });
    expect(tlsStartInPlace(hello, serverHello())).toBeNull();
  });

  it('a session whose first byte alone could begin a header goes on as it was (IMAP tags beginning with P)', () => {
    const [f] = flowsOf([{
      port: 143, c2s: [null, 'P', '1 CAPABILITY\r\n', 'P2 STARTTLS\r\n', hello],
      s2c: ['* OK IMAP4rev1 ready\r\n', null, '* CAPABILITY IMAP4rev1 STARTTLS\r\nP1 OK done\r\n', 'P2 OK Begin TLS\r\n', serverHello()],
    }]);
    expect(f!.app).toBe('imap');
    expect(f!.proxy).toBeUndefined();
    expect(f!.tls).toMatchObject({ sni: plainTls.tls!.sni, ja4: plainTls.tls!.ja4, cipher: 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256' });
  });

  it('requests that begin like a header stay what they are; a header alone leaves the flow unknown', () => {
    const [put, h2, bare] = flowsOf([
      // (then its body, and a second request, in segments of their own)
      { port: 80, c2s: ['P', 'UT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\n', 'abcd', 'GET /y HTTP/1.1\r\nHost: a\r\n\r\n'], s2c: [null, null, 'HTTP/1.1 204 No Content\r\n\r\n', 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'] },
      { port: 80, c2s: ['PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00'], s2c: ['\x00\x00\x00\x04\x00\x00\x00\x00\x00'] },
      { port: 443, c2s: [V1], s2c: [] },
    ]);
    expect(put!.app).toBe('http');
    expect(put!.http.map((h) => [h.method, h.path, h.status])).toEqual([['PUT', '/x', 204], ['GET', '/y', 200]]);
    expect(put!.proxy).toBeUndefined();
    expect(h2!.app).toBe('http2');
    expect(h2!.proxy).toBeUndefined();
    expect(bare!.app).toBe('unknown');
    expect(bare!.proxy).toMatchObject({ version: 1 });
  });

  it('filters name the header\'s fields', () => {
    const flows = flowsOf([
      { port: 443, c2s: [Buffer.concat([Buffer.from(V1), hello])], s2c: [serverHello()] },
      { port: 443, c2s: [Buffer.concat([v2('tcp4', { src: '192.0.2.44', sport: 7 }), hello])], s2c: [serverHello()] },
      { port: 443, c2s: [hello], s2c: [serverHello()] },
    ]);
    const match = (expr: string): number[] => { const m = compileFilter(expr); return flows.filter((f) => m(f)).map((f) => f.src.port - C.port); };
    expect(match('proxy')).toEqual([0, 1]);
    expect(match('!proxy')).toEqual([2]);
    expect(match('proxy.version == 2')).toEqual([1]);
    expect(match('proxy.src.ip == 192.0.2.0/24 && proxy.src.port == 7')).toEqual([1]);
    expect(match('proxy.dst.ip == 203.0.113.10 && proxy.dst.port == 443')).toEqual([0, 1]);
  });
});
