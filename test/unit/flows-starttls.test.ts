// Mail and file transfer connections: SMTP, IMAP, POP3 and FTP told from their first lines, and the TLS they switch
// to in place (STARTTLS, STLS, AUTH TLS) dissected after their text, so the flow gets its hello fields and a verdict
// like any TLS flow; segment boundaries anywhere, a refused upgrade, an upgrade whose TLS the capture did not see,
// and the look-alikes that must stay what they are.
import { describe, it, expect } from 'vitest';
import { Analyzer } from '../../src/flows/analyzer.js';
import { parseBuffer } from '../../src/pcapng/index.js';
import { textPrelude } from '../../src/dissect/starttls.js';
import { compileFilter } from '../../src/filter/index.js';
import { CaptureBuilder, fixtureClientHello, tcpConversation } from './core-packet-builder.js';
import type { Flow } from '../../src/model/flow.js';

const C = { ip: '10.9.0.1', port: 41000 };
const S = (port: number) => ({ ip: '10.9.0.2', port });

/** A TLS 1.2 ServerHello record (cipher 0xc02f), as a server answers. */
function serverHello(): Buffer {
  const body = Buffer.concat([Buffer.from('0303', 'hex'), Buffer.alloc(32, 7), Buffer.from([0]), Buffer.from('c02f00', 'hex'), Buffer.from('0000', 'hex')]);
  const hs = Buffer.concat([Buffer.from([2, 0, body.length >> 8, body.length & 0xff]), body]);
  return Buffer.concat([Buffer.from([0x16, 3, 3, hs.length >> 8, hs.length & 0xff]), hs]);
}

type Conversation = {
  port: number; c2s: (Buffer | string | null)[]; s2c: (Buffer | string | null)[]; fin?: boolean;
  /** blocks after a turn's segments */
  afterTurn?: (b: CaptureBuilder, client: { ip: string; port: number }, turn: number) => void;
};

function flowsOf(conversations: Conversation[]): Flow[] {
  const b = new CaptureBuilder();
  const buf = (x: Buffer | string | null): Buffer | null => (typeof x === 'string' ? Buffer.from(x) : x);
  conversations.forEach((c, i) => {
    const client = { ...C, port: C.port + i };
    tcpConversation(b, client, S(c.port), c.c2s.map(buf), c.s2c.map(buf), { fin: c.fin ?? true, afterTurn: (t) => c.afterTurn?.(b, client, t) });
  });
  const a = new Analyzer();
  const feed = a.stream('n1');
  for (const blk of parseBuffer(b.build())) feed(blk);
  return a.flows();
}

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

  it('the filter language sees them by their protocol', () => {
    const flows = flowsOf([
      { port: 587, c2s: [null, 'EHLO a\r\n', 'STARTTLS\r\n', hello], s2c: ['220 mx\r\n', '250 STARTTLS\r\n', '220 go\r\n', serverHello()] },
      { port: 25, c2s: [null, 'HELO a\r\n'], s2c: ['220 mx\r\n', '250 ok\r\n'] },
    ]);
    const pred = compileFilter('app == "smtp" && tls.sni != ""');
    expect(flows.filter(pred).map((f) => f.dst.port)).toEqual([587]);
  });
});
