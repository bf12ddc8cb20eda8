// Mail, file transfer and directory connections: SMTP, IMAP, POP3 and FTP told from their first lines, LDAP from its
// first message, and the TLS they switch to in place (STARTTLS, STLS, AUTH TLS, LDAP's StartTLS operation) dissected
// after their prelude, so the flow gets its hello fields and a verdict like any TLS flow; segment boundaries
// anywhere, a refused upgrade, an upgrade whose TLS the capture did not see, and the look-alikes that must stay
// what they are.
import { describe, it, expect } from 'vitest';
import { conversationFlows, server } from './conversation-flows.js';
import { ldapPrelude, textPrelude } from '../../src/dissect/starttls.js';
import { tlsStartText } from '../../src/model/flow-target.js';
import { compileFilter } from '../../src/filter/index.js';
import { CaptureBuilder, analyzeCapture, fixtureClientHello, tcpConversation, tls12ServerHello } from './core-packet-builder.js';
import type { Flow } from '../../src/model/flow.js';

const S = server;

const serverHello = tls12ServerHello;

const flowsOf = conversationFlows;

const hello = fixtureClientHello();
const plainTls = flowsOf([{ port: 443, c2s: [hello], s2c: [serverHello()] }])[0]!;

describe('mail and file transfer connections that switch to TLS', () => {
  it('SMTP: the hellos after EHLO, STARTTLS and the server\'s 220, in separate segments or together', () => {
    const [apart, together, split] = flowsOf([
      {
        port: 587,
        c2s: [null, 'EHLO client.example\r\n', 'STARTTLS\r\n', hello],
        s2c: ['220 mx.example ESMTP ready\r\n', '250-mx.example\r\n250-PIPELINING\r\n250 STARTTLS\r\n', '220 2.0.0 Ready to start TLS\r\n', serverHello()],
      },
      {
        port: 25,
        c2s: [null, 'ehlo client.example\r\n', Buffer.concat([Buffer.from('starttls\r\n'), hello])],
        s2c: ['220 mx.example ESMTP\r\n', '250 STARTTLS\r\n', Buffer.concat([Buffer.from('220 go ahead\r\n'), serverHello()])],
      },
      {
        // the command and the hello cut mid-line and mid-record
        port: 2525,
        c2s: [null, 'EHLO a\r\nSTAR', Buffer.concat([Buffer.from('TTLS\r\n'), hello.subarray(0, 9)]), hello.subarray(9)],
        s2c: ['220-mx.example\r\n220 more greeting\r\n', '250 STARTTLS\r\n', '220 Ready\r\n', serverHello()],
      },
    ]);
    for (const f of [apart!, together!, split!]) {
      expect(f.app).toBe('smtp');
      expect(f.tls).toMatchObject({ sni: plainTls.tls!.sni, ja4: plainTls.tls!.ja4, ja3Hash: plainTls.tls!.ja3Hash, cipher: 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256' });
      expect(f.tls!.client).toEqual(plainTls.tls!.client);
    }
  });

  it('a decrypted record that comes before the server\'s hello leaves the upgrade to be read (hooks report before packets)', () => {
    // the client's first write inside TLS, reported by its hook after its ClientHello went out, before the
    // ServerHello's packet is in the stream
    const [f] = flowsOf([{
      port: 587, c2s: [null, 'EHLO a\r\n', 'STARTTLS\r\n', hello], s2c: ['220 mx ESMTP\r\n', '250 STARTTLS\r\n', '220 Ready\r\n', serverHello()],
      afterTurn: (b, client, turn) => { if (turn === 2) b.tls(client, S(587), 'out', Buffer.from('EHLO a\r\n'), { pid: 9, comm: 'curl', lib: 'openssl' }); },
    }]);
    expect(f!.app).toBe('smtp');
    expect(f!.tls).toMatchObject({ sni: plainTls.tls!.sni, ja4: plainTls.tls!.ja4, cipher: 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256' });
    expect(f!.tls!.client).toMatchObject({ library: 'openssl', via: 'hook', plaintext: true });
  });

  it('its hooks\' records anywhere among its packets (the helper hands packets over up to 50 ms later): still FTP, with its hello', () => {
    // why: an eBPF capture of starttls.test on a loaded machine had FTP's flow 'tls', without hello: its records came
    // after its SYN and before AUTH, its client's first line
    const client = { ip: '10.9.4.1', port: 41500 };
    const c2s = ['', 'AUTH SSL\r\n', hello, Buffer.from('170303001a' + '00'.repeat(26), 'hex')];
    const s2c = ['220 lab ftp\r\n', '234 Proceed with negotiation.\r\n', serverHello(), ''];
    const buf = (x: Buffer | string): Buffer | null => (x.length === 0 ? null : typeof x === 'string' ? Buffer.from(x) : x);
    // (the records after the packets' segment `at` (-1: before them all), the connection's owner known to the helper or not)
    const flow = (at: number, conn: boolean): Flow[] => {
      const b = new CaptureBuilder();
      b.record({ t: 'capture', v: 1, mode: 'ebpf', requestedMode: 'auto', reason: 'auto', hostname: 'node-1' });
      if (conn) b.record({ t: 'conn', proto: 'tcp', local: client, remote: S(21), role: 'client', pid: 100, tid: 100, comm: 'curl', via: 'tracepoint' });
      const records = (): void => {
        b.tls(client, S(21), 'out', Buffer.from('USER lab\r\n'), { pid: 100, comm: 'curl', lib: 'openssl' });
        b.tls(S(21), client, 'in', Buffer.from('USER lab\r\n'), { pid: 200, comm: 'python3', lib: 'openssl' });
      };
      if (at < 0) records();
      tcpConversation(b, client, S(21), c2s.map(buf), s2c.map(buf), { afterSegment: (n) => { if (n === at) records(); } });
      return analyzeCapture(b.build(), { end: true }).flows();
    };
    const strip = (f: Flow) => ({ app: f.app, tls: f.tls, packets: f.packets, bytes: f.bytes, tcp: f.tcp, seenBy: f.seenBy });
    // (11 segments, 0 to 10: the handshake's 3, 6 of data, the 2 FINs)
    const last = flow(10, false);
    expect(last).toHaveLength(1);
    expect(last[0]).toMatchObject({ app: 'ftp', tls: { sni: plainTls.tls!.sni, ja4: plainTls.tls!.ja4, cipher: 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256' } });
    expect(last[0]!.tls!.client).toMatchObject({ library: 'openssl', via: 'hook', plaintext: true });
    for (const conn of [false, true]) {
      for (let at = -1; at <= 10; at++) expect(flow(at, conn).map(strip), `records after segment ${at}, conn record ${conn}`).toEqual(last.map(strip));
    }
  });

  it('IMAP (tagged STARTTLS), POP3 (STLS) and FTP (AUTH TLS)', () => {
    const flows = flowsOf([
      { port: 143, c2s: [null, 'a001 CAPABILITY\r\n', 'a002 STARTTLS\r\n', hello], s2c: ['* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\n', '* CAPABILITY IMAP4rev1 STARTTLS\r\na001 OK done\r\n', 'a002 OK Begin TLS now\r\n', serverHello()] },
      { port: 110, c2s: [null, 'CAPA\r\n', 'STLS\r\n', hello], s2c: ['+OK POP3 ready\r\n', '+OK\r\nSTLS\r\nUSER\r\n.\r\n', '+OK Begin TLS\r\n', serverHello()] },
      { port: 21, c2s: [null, 'AUTH TLS\r\n', hello], s2c: ['220 (vsFTPd 3.0.3)\r\n', '234 Proceed with negotiation.\r\n', serverHello()] },
    ]);
    expect(flows.map((f) => f.app)).toEqual(['imap', 'pop3', 'ftp']);
    for (const f of flows) expect(f.tls, f.app).toMatchObject({ sni: plainTls.tls!.sni, ja4: plainTls.tls!.ja4, version: 'TLS 1.2' });
  });

  it('plain sessions, a refused upgrade and an upgrade whose TLS was not seen are named and carry no TLS', () => {
    const flows = flowsOf([
      { port: 25, c2s: [null, 'HELO a\r\n', 'MAIL FROM:<a@b>\r\n'], s2c: ['220 mx ESMTP\r\n', '250 ok\r\n', '250 ok\r\n'] },
      // the server refuses: the client goes on in plain text after its STARTTLS
      { port: 25, c2s: [null, 'EHLO a\r\n', 'STARTTLS\r\n', 'QUIT\r\n'], s2c: ['220 mx ESMTP\r\n', '250 ok\r\n', '454 TLS not available\r\n', '221 bye\r\n'] },
      { port: 143, c2s: [null, 'a1 LOGIN u p\r\n'], s2c: ['* OK ready\r\n', 'a1 OK\r\n'] },
      { port: 110, c2s: [null, 'USER u\r\n'], s2c: ['+OK ready\r\n', '+OK\r\n'] },
      { port: 21, c2s: [null, 'USER anonymous\r\n'], s2c: ['220 ftp ready\r\n', '331 password please\r\n'] },
      // the capture ends after STARTTLS's answer, before any TLS
      { port: 587, c2s: [null, 'EHLO a\r\n', 'STARTTLS\r\n'], s2c: ['220 mx ESMTP\r\n', '250 STARTTLS\r\n', '220 Ready\r\n'], fin: false },
    ]);
    expect(flows.map((f) => [f.app, f.tls])).toEqual([['smtp', null], ['smtp', null], ['imap', null], ['pop3', null], ['ftp', null], ['smtp', null]]);
  });

  it('look-alikes stay what they are', () => {
    const flows = flowsOf([
      // a 220 greeting answered by something no SMTP or FTP client sends first; a greeting-like server line after binary from the client
      { port: 7100, c2s: [null, 'HELLO THERE\r\n'], s2c: ['220 hi\r\n', 'what\r\n'] },
      { port: 7101, c2s: [null, Buffer.from([1, 2, 3, 4, 5, 6, 7, 8])], s2c: ['220 hi\r\n', 'x'] },
      // "2200" is no 220 greeting; an HTTP request stays HTTP
      { port: 7102, c2s: [null, 'EHLO a\r\n'], s2c: ['2200 x\r\n', 'x'] },
      { port: 80, c2s: ['GET / HTTP/1.1\r\nHost: a\r\n\r\n'], s2c: ['HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'] },
    ]);
    expect(flows.map((f) => f.app)).toEqual(['unknown', 'unknown', 'unknown', 'http']);
  });

  it('textPrelude: undecided while lines are cut off, the upgrade pending until both sides\' TLS shows', () => {
    const p = (c: string | Buffer, s: string | Buffer | null) => textPrelude(Buffer.from(c), s === null ? null : Buffer.from(s));
    expect(p('EHLO a\r\n', '22')).toBe('incomplete');
    expect(p('EHL', '220 mx\r\n')).toBe('incomplete');
    expect(p('EHLO a\r\n', '220 mx\r\n')).toEqual({ app: 'smtp', tls: 'pending' });
    expect(p('EHLO a\r\nSTARTTLS\r\n', '220 mx\r\n250 ok\r\n220 go\r\n')).toEqual({ app: 'smtp', tls: 'pending' });
    expect(p(Buffer.concat([Buffer.from('EHLO a\r\nSTARTTLS\r\n'), hello]), '220 mx\r\n250 ok\r\n220 go\r\n')).toEqual({ app: 'smtp', tls: 'pending' });
    expect(p(Buffer.concat([Buffer.from('EHLO a\r\nSTARTTLS\r\n'), hello]), Buffer.concat([Buffer.from('220 mx\r\n250 ok\r\n220 go\r\n'), serverHello()])))
      .toEqual({ app: 'smtp', tls: { client: 18, server: 24 } });
    expect(p('anything', null)).toBeNull();
    expect(p('EHLO a\r\n', 'SSH-2.0-OpenSSH\r\n')).toBeNull();
  });

  it('the detail says how each one\'s TLS began; a flow that began with TLS, or a plain one, says nothing', () => {
    const flows = flowsOf([
      { port: 587, c2s: [null, 'EHLO a\r\n', 'STARTTLS\r\n', hello], s2c: ['220 mx\r\n', '250 STARTTLS\r\n', '220 go\r\n', serverHello()] },
      { port: 110, c2s: [null, 'STLS\r\n', hello], s2c: ['+OK ready\r\n', '+OK go\r\n', serverHello()] },
      { port: 3128, c2s: ['CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n', hello], s2c: ['HTTP/1.1 200 OK\r\n\r\n', serverHello()] },
      { port: 443, c2s: [hello], s2c: [serverHello()] },
      { port: 25, c2s: [null, 'HELO a\r\n'], s2c: ['220 mx\r\n', '250 ok\r\n'] },
    ]);
    expect(flows.map(tlsStartText)).toEqual(['after STARTTLS', 'after STLS', "through a proxy's CONNECT", null, null]);
  });

  it('the filter language sees them by their protocol', () => {
    const flows = flowsOf([
      { port: 587, c2s: [null, 'EHLO a\r\n', 'STARTTLS\r\n', hello], s2c: ['220 mx\r\n', '250 STARTTLS\r\n', '220 go\r\n', serverHello()] },
      { port: 25, c2s: [null, 'HELO a\r\n'], s2c: ['220 mx\r\n', '250 ok\r\n'] },
    ]);
    const pred = compileFilter('app == "smtp" && tls.sni != ""');
    expect(flows.filter(pred).map((f) => f.dst.port)).toEqual([587]);
  });
});

/** An LDAPMessage (messageID 1) around a protocol operation's tag and content; BER lengths in long form when `long`. */
function ldap(tag: number, content: Buffer, long = false): Buffer {
  const len = (n: number): Buffer => (long ? Buffer.from([0x82, n >> 8, n & 0xff]) : Buffer.from([n]));
  const op = Buffer.concat([Buffer.from([tag]), len(content.length), content]);
  const body = Buffer.concat([Buffer.from([0x02, 0x01, 0x01]), op]);
  return Buffer.concat([Buffer.from([0x30]), len(body.length), body]);
}
const START_TLS = ldap(0x77, Buffer.concat([Buffer.from([0x80, 22]), Buffer.from('1.3.6.1.4.1.1466.20037')]));
const extendedResponse = (code: number, long = false): Buffer => ldap(0x78, Buffer.from([0x0a, 0x01, code, 0x04, 0x00, 0x04, 0x00]), long);
const BIND = ldap(0x60, Buffer.from([0x02, 0x01, 0x03, 0x04, 0x00, 0x80, 0x00]));

describe('LDAP and its StartTLS', () => {
  it('the hellos after the StartTLS request and its success, in separate segments, together, or with long-form lengths', () => {
    const flows = flowsOf([
      { port: 389, c2s: [START_TLS, hello], s2c: [extendedResponse(0), serverHello()] },
      { port: 389, c2s: [Buffer.concat([START_TLS, hello.subarray(0, 50)]), hello.subarray(50)], s2c: [Buffer.concat([extendedResponse(0), serverHello()])] },
      { port: 3389, c2s: [START_TLS.subarray(0, 5), Buffer.concat([START_TLS.subarray(5), hello])], s2c: [null, extendedResponse(0, true), serverHello()] },
    ]);
    for (const f of flows) {
      expect(f.app).toBe('ldap');
      expect(f.tls).toMatchObject({ sni: plainTls.tls!.sni, ja4: plainTls.tls!.ja4, cipher: 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256' });
    }
  });

  it('plain LDAP, a refused StartTLS and one whose TLS was not seen carry no TLS; look-alikes stay unknown', () => {
    const flows = flowsOf([
      { port: 389, c2s: [BIND], s2c: [ldap(0x61, Buffer.from([0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00]))] },
      // refused (protocolError): the client binds in plain text
      { port: 389, c2s: [START_TLS, BIND], s2c: [extendedResponse(2), ldap(0x61, Buffer.from([0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00]))] },
      { port: 389, c2s: [START_TLS], s2c: [extendedResponse(0)], fin: false },
      // a SEQUENCE whose second element is no message id; an application tag no client sends first
      { port: 7200, c2s: [Buffer.from([0x30, 0x05, 0x04, 0x01, 0x01, 0x60, 0x00])], s2c: ['x'] },
      { port: 7201, c2s: [ldap(0x61, Buffer.from([0x0a, 0x01, 0x00]))], s2c: ['x'] },
    ]);
    expect(flows.map((f) => [f.app, f.tls])).toEqual([['ldap', null], ['ldap', null], ['ldap', null], ['unknown', null], ['unknown', null]]);
  });

  it('ldapPrelude: undecided while the request is cut off, pending until both sides\' TLS shows', () => {
    expect(ldapPrelude(START_TLS.subarray(0, 1), null)).toBe('incomplete');
    expect(ldapPrelude(START_TLS.subarray(0, 10), null)).toBe('incomplete');
    expect(ldapPrelude(START_TLS, null)).toEqual({ app: 'ldap', tls: 'pending' });
    expect(ldapPrelude(Buffer.concat([START_TLS, hello]), extendedResponse(0).subarray(0, 9))).toEqual({ app: 'ldap', tls: 'pending' });
    expect(ldapPrelude(Buffer.concat([START_TLS, hello]), Buffer.concat([extendedResponse(0), serverHello()])))
      .toEqual({ app: 'ldap', tls: { client: START_TLS.length, server: extendedResponse(0).length } });
    expect(ldapPrelude(Buffer.from('0 not ber'), null)).toBeNull();
  });
});

describe('HTTPS through a proxy (CONNECT)', () => {
  const connect = 'CONNECT api.example:443 HTTP/1.1\r\nHost: api.example:443\r\nUser-Agent: curl/7.88.1\r\n\r\n';
  const established = 'HTTP/1.1 200 Connection established\r\n\r\n';

  it('the hellos inside the tunnel, in separate segments or with the answer; the flow stays http with its CONNECT', () => {
    const flows = flowsOf([
      { port: 3128, c2s: [connect, hello], s2c: [established, serverHello()] },
      { port: 3128, c2s: [connect, hello.subarray(0, 30), hello.subarray(30)], s2c: [Buffer.concat([Buffer.from(established), serverHello()])] },
      // the client sends its hello with its CONNECT, before the answer
      { port: 8080, c2s: [Buffer.concat([Buffer.from(connect), hello])], s2c: [Buffer.concat([Buffer.from('HTTP/1.0 200 OK\r\nProxy-Agent: x\r\n\r\n'), serverHello()])] },
    ]);
    for (const f of flows) {
      expect(f.app).toBe('http');
      expect(f.http).toEqual([{ method: 'CONNECT', host: 'api.example:443', path: 'api.example:443', status: 200 }]);
      expect(f.tls).toMatchObject({ sni: plainTls.tls!.sni, ja4: plainTls.tls!.ja4, ja3Hash: plainTls.tls!.ja3Hash, cipher: 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256' });
      expect(f.tls!.client).toEqual(plainTls.tls!.client);
    }
  });

  it('a CONNECT refused, then asked again with credentials on the same connection: both exchanges, then the tunnel', () => {
    const again = connect.replace('\r\n\r\n', '\r\nProxy-Authorization: Basic bGFiOng=\r\n\r\n');
    const [f] = flowsOf([{
      port: 3128,
      // (the second CONNECT held while the first is unanswered)
      c2s: [Buffer.concat([Buffer.from(connect), Buffer.from(again)]), null, hello],
      s2c: ['HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\nContent-Length: 0\r\n\r\n', established, serverHello()],
    }]);
    expect(f!.http.map((h) => [h.method, h.status])).toEqual([['CONNECT', 407], ['CONNECT', 200]]);
    expect(f!.tls).toMatchObject({ sni: plainTls.tls!.sni, ja4: plainTls.tls!.ja4 });
  });

  it('a refused CONNECT, a tunnel that carries no TLS and an upgrade (101) carry no TLS', () => {
    const flows = flowsOf([
      { port: 3128, c2s: [connect], s2c: ['HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n'] },
      { port: 3128, c2s: ['CONNECT git.example:22 HTTP/1.1\r\nHost: git.example:22\r\n\r\n', 'SSH-2.0-OpenSSH_9.2\r\n'], s2c: [established, 'SSH-2.0-OpenSSH_9.2p1\r\n'] },
      { port: 80, c2s: ['GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n', hello], s2c: ['HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n', serverHello()] },
    ]);
    // (the upgraded connection a WebSocket: see core-flows-upgrade.test.ts)
    expect(flows.map((f) => [f.app, f.tls, f.http.map((h) => h.status)])).toEqual([['http', null, [407]], ['http', null, [200]], ['websocket', null, [101]]]);
  });

  it('plain HTTP through the tunnel is read as the proxy\'s client sent it (curl --proxytunnel to an http:// URL)', () => {
    const [f] = flowsOf([{
      port: 3128,
      c2s: ['CONNECT api.example:80 HTTP/1.1\r\nHost: api.example:80\r\n\r\n', 'GET /v1/secret HTTP/1.1\r\nHost: api.example\r\n\r\n'],
      s2c: [established, 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'],
    }]);
    expect([f!.app, f!.tls]).toEqual(['http', null]);
    expect(f!.http.map((h) => [h.method, h.path, h.status])).toEqual([['CONNECT', 'api.example:80', 200], ['GET', '/v1/secret', 200]]);
  });

  it('whatever the tunnel carries, the flow stays http with its CONNECT: a server that speaks first (SMTP), an h2c upgrade, a WebSocket', () => {
    const flows = flowsOf([
      { port: 3128, c2s: ['CONNECT mx.example:25 HTTP/1.1\r\nHost: mx.example:25\r\n\r\n', null, 'EHLO a\r\n'], s2c: [established, '220 mx.example ESMTP\r\n', '250 mx.example\r\n'] },
      { port: 3128, c2s: ['CONNECT db.example:5432 HTTP/1.1\r\n\r\n', Buffer.concat([Buffer.from([0, 0, 0, 17, 0, 3, 0, 0]), Buffer.from('user\0bob\0\0')])], s2c: [established, 'R'] },
      {
        port: 3128,
        c2s: ['CONNECT api.example:80 HTTP/1.1\r\n\r\n', 'GET / HTTP/1.1\r\nHost: api.example\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\nConnection: Upgrade, HTTP2-Settings\r\n\r\n'],
        s2c: [established, 'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n'],
      },
      {
        port: 3128,
        c2s: ['CONNECT ws.example:80 HTTP/1.1\r\n\r\n', 'GET /ws HTTP/1.1\r\nHost: ws.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'],
        s2c: [established, 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'],
      },
    ]);
    expect(flows.map((f) => [f.app, f.http[0]?.method])).toEqual([['http', 'CONNECT'], ['http', 'CONNECT'], ['http', 'CONNECT'], ['http', 'CONNECT']]);
    expect(compileFilter('app == http && http.method == CONNECT')(flows[0]!)).toBe(true);
    // (without a tunnel, each is what it carries)
    const [smtp] = flowsOf([{ port: 25, c2s: [null, 'EHLO a\r\n'], s2c: ['220 mx.example ESMTP\r\n', '250 mx.example\r\n'] }]);
    expect(smtp!.app).toBe('smtp');
  });

  it('an answer whose head runs past 64 KiB still opens the tunnel: its hellos are read, none of the head\'s bytes taken for them', () => {
    const big = `X-Big: ${'b'.repeat(70 * 1024)}\r\n`;
    // (in two segments each: a segment is at most 64 KiB)
    const answer = `HTTP/1.1 200 Connection established\r\n${big}\r\n`;
    const request = `CONNECT api.example:443 HTTP/1.1\r\n${big}\r\n`;
    const flows = flowsOf([
      { port: 3128, c2s: [connect, null, hello], s2c: [answer.slice(0, 40000), answer.slice(40000), serverHello()] },
      { port: 3128, c2s: [request.slice(0, 40000), request.slice(40000), hello], s2c: [null, established, serverHello()] },
    ]);
    for (const f of flows) {
      expect(f.app).toBe('http');
      expect(f.http.map((h) => [h.method, h.status, h.malformed?.includes('64 KiB')])).toEqual([['CONNECT', 200, true]]);
      expect(f.tls).toMatchObject({ sni: plainTls.tls!.sni, ja4: plainTls.tls!.ja4, cipher: 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256' });
    }
  });

  it('an interim answer (100 Continue) is not the request\'s status: the answer after it is', () => {
    const [f] = flowsOf([{
      port: 80,
      c2s: ['POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n', 'hello', 'GET /next HTTP/1.1\r\nHost: a\r\n\r\n'],
      s2c: ['HTTP/1.1 100 Continue\r\n\r\n', 'HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n', 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n'],
    }]);
    expect(f!.http.map((h) => [h.method, h.path, h.status])).toEqual([['POST', '/upload', 201], ['GET', '/next', 404]]);
  });
});
