// News, Sieve, chat, messaging and SQL Server connections that switch to TLS in place: NNTP and ManageSieve
// (STARTTLS), XMPP (<starttls/>, <proceed/>), NATS (TLS after the server's INFO line) and TDS (the handshake inside
// PRELOGIN packets). Each gets its protocol's name and the hello fields and verdicts of a flow that began with TLS;
// plain sessions, refusals, upgrades whose TLS the capture did not see, and look-alikes stay what they are.
import { describe, it, expect } from 'vitest';
import type { Flow } from '../../src/model/flow.js';
import { conversationFlows } from './conversation-flows.js';
import { natsPrelude, tdsPrelude, textPrelude, tlsStartInPlace, xmppPrelude } from '../../src/dissect/starttls.js';
import { tlsStartText } from '../../src/model/flow-target.js';
import { tdsLogin } from '../../src/dissect/db-prelude.js';
import { compileFilter } from '../../src/filter/index.js';
import { server } from './conversation-flows.js';
import { CaptureBuilder, analyzeCapture, fixtureClientHello, prelogin, tds, tcpConversation, tls12ServerHello } from './core-packet-builder.js';

const hello = fixtureClientHello();
const serverHello = tls12ServerHello;
const plainTls = conversationFlows([{ port: 443, c2s: [hello], s2c: [serverHello()] }])[0]!;
const cat = (...parts: (Buffer | string)[]): Buffer => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : p)));

const PRELOGIN = 0x12;
const RESPONSE = 0x04;
const LOGIN7 = 0x10;

const XMPP_OPEN = "<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:client' to='chat.example' version='1.0'>";
const XMPP_FEATURES = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='4f2' from='chat.example' version='1.0'>" +
  "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>";
const STARTTLS = "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";
const PROCEED = "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";
const NATS_INFO = 'INFO {"server_id":"NABC","version":"2.9.10","tls_required":true,"max_payload":1048576}\r\n';
const SIEVE_GREETING = '"IMPLEMENTATION" "lab sieve"\r\n"SASL" "PLAIN"\r\n"STARTTLS"\r\n"VERSION" "1.0"\r\nOK "ready"\r\n';

describe('connections that switch to TLS in place: NNTP, ManageSieve, XMPP, NATS, SQL Server', () => {
  it('each is its protocol\'s, with the hello fields and verdicts of a flow that began with TLS, in separate segments or together', () => {
    const flows = conversationFlows([
      { port: 119, c2s: [null, 'CAPABILITIES\r\n', 'STARTTLS\r\n', hello], s2c: ['200 news.example ready\r\n', '101 Capability list:\r\nVERSION 2\r\nSTARTTLS\r\n.\r\n', '382 Continue with TLS negotiation\r\n', serverHello()] },
      { port: 563, c2s: [null, cat('STARTTLS\r\n', hello)], s2c: ['201 no posting\r\n', cat('382 go\r\n', serverHello())] },
      { port: 4190, c2s: [null, 'STARTTLS\r\n', hello], s2c: [SIEVE_GREETING, 'OK "Begin TLS negotiation now"\r\n', serverHello()] },
      { port: 5222, c2s: [XMPP_OPEN, STARTTLS, hello], s2c: [XMPP_FEATURES, PROCEED, serverHello()] },
      // server to server, with whitespace between elements and the element closed by its end tag
      { port: 5269, c2s: [cat(XMPP_OPEN.replace('jabber:client', 'jabber:server'), '\n  '), cat("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'></starttls>", hello)], s2c: [XMPP_FEATURES, cat(PROCEED, serverHello())] },
      { port: 4222, c2s: [null, hello], s2c: [NATS_INFO, serverHello()] },
      { port: 1433, c2s: [tds(PRELOGIN, prelogin(0x01)), tds(PRELOGIN, hello)], s2c: [tds(RESPONSE, prelogin(0x01)), tds(PRELOGIN, serverHello())] },
      // the server answers its handshake in tabular-result packets, the client's PRELOGIN and hello in one segment
      { port: 1433, c2s: [cat(tds(PRELOGIN, prelogin(0x00)), tds(PRELOGIN, hello))], s2c: [tds(RESPONSE, prelogin(0x00)), tds(RESPONSE, serverHello())] },
    ]);
    expect(flows.map((f) => f.app)).toEqual(['nntp', 'nntp', 'sieve', 'xmpp', 'xmpp', 'nats', 'mssql', 'mssql']);
    for (const f of flows) {
      expect(f.tls, `${f.app} on ${f.dst.port}`).toMatchObject({ sni: plainTls.tls!.sni, ja4: plainTls.tls!.ja4, ja3Hash: plainTls.tls!.ja3Hash, cipher: 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256' });
      expect(f.tls!.client).toEqual(plainTls.tls!.client);
    }
    expect(flows.map(tlsStartText)).toEqual([...Array(5).fill('after STARTTLS'), "after the server's INFO", 'inside TDS PRELOGIN packets', 'inside TDS PRELOGIN packets']);
  });

  it("its hooks' records before its packets (the helper hands packets over up to 50 ms later): still its protocol's, with its hello", () => {
    const make = (recordsFirst: boolean, syn = true) => {
      const b = new CaptureBuilder();
      b.record({ t: 'capture', v: 1, mode: 'ebpf', requestedMode: 'auto', reason: 'auto', hostname: 'node-1' });
      const client = { ip: '10.9.4.1', port: 41500 };
      const srv = { ip: '10.9.4.2', port: 5222 };
      const records = (): void => {
        b.tls(client, srv, 'out', Buffer.from('<message to="a@chat.example"><body>hi</body></message>'), { pid: 100, comm: 'openssl', lib: 'openssl' });
        b.tls(srv, client, 'in', Buffer.from('<message to="a@chat.example"><body>hi</body></message>'), { pid: 200, comm: 'python3', lib: 'openssl' });
      };
      if (recordsFirst) records();
      const c2s = [XMPP_OPEN, STARTTLS, hello, Buffer.from('170303001a' + '00'.repeat(26), 'hex')];
      const s2c = [XMPP_FEATURES, PROCEED, serverHello(), null];
      if (syn) tcpConversation(b, client, srv, c2s.map((x) => (typeof x === 'string' ? Buffer.from(x) : x)), s2c.map((x) => (typeof x === 'string' ? Buffer.from(x) : x)));
      if (!recordsFirst) records();
      return analyzeCapture(b.build(), { end: true }).flows();
    };
    const after = make(false);
    const before = make(true);
    expect(after).toHaveLength(1);
    expect(after[0]).toMatchObject({ app: 'xmpp', tls: { sni: plainTls.tls!.sni, ja4: plainTls.tls!.ja4 } });
    expect(after[0]!.tls!.client).toMatchObject({ via: 'hook', plaintext: true });
    const strip = (f: Flow) => ({ app: f.app, tls: f.tls, packets: f.packets, bytes: f.bytes, tcp: f.tcp });
    expect(before.map(strip)).toEqual(after.map(strip));
    // (records of a connection whose packets never came: TLS by them, as before)
    const only = make(true, false);
    expect(only.map((f) => [f.app, f.seenBy])).toEqual([['tls', 'hook-only']]);
  });

  it('plain sessions, refusals and upgrades whose TLS was not seen are named and carry no TLS', () => {
    const flows = conversationFlows([
      { port: 119, c2s: [null, 'GROUP misc.test\r\n'], s2c: ['200 news ready\r\n', '211 3 1 3 misc.test\r\n'] },
      { port: 119, c2s: [null, 'STARTTLS\r\n', 'QUIT\r\n'], s2c: ['200 news ready\r\n', '580 Can not initiate TLS negotiation\r\n', '205 bye\r\n'] },
      { port: 4190, c2s: [null, 'AUTHENTICATE "PLAIN" "AGxhYgB4"\r\n'], s2c: [SIEVE_GREETING, 'OK\r\n'] },
      // XMPP: SASL without TLS; a <failure/> answer; the capture ends after <proceed/>
      { port: 5222, c2s: [XMPP_OPEN, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGxhYgB4</auth>"], s2c: [XMPP_FEATURES, "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"] },
      { port: 5222, c2s: [XMPP_OPEN, STARTTLS, hello], s2c: [XMPP_FEATURES, "<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:stream>", 'x'] },
      { port: 5222, c2s: [XMPP_OPEN, STARTTLS], s2c: [XMPP_FEATURES, PROCEED], fin: false },
      { port: 4222, c2s: [null, 'CONNECT {"verbose":false}\r\nPING\r\n'], s2c: [NATS_INFO, 'PONG\r\n'] },
      // TDS: the LOGIN7 in plain text after PRELOGIN (encryption not supported)
      { port: 1433, c2s: [tds(PRELOGIN, prelogin(0x02)), tds(LOGIN7, Buffer.alloc(94, 1))], s2c: [tds(RESPONSE, prelogin(0x02)), tds(RESPONSE, Buffer.alloc(20, 0xad))] },
    ]);
    expect(flows.map((f) => [f.app, f.tls])).toEqual([
      ['nntp', null], ['nntp', null], ['sieve', null], ['xmpp', null], ['xmpp', null], ['xmpp', null], ['nats', null], ['mssql', null],
    ]);
  });

  it('look-alikes stay what they are', () => {
    const flows = conversationFlows([
      // a 200 greeting that is no reply code; a quoted first line that is no capability
      { port: 7300, c2s: [null, 'STARTTLS\r\n'], s2c: ['2000 x\r\n', 'x'] },
      { port: 7301, c2s: [null, 'STARTTLS\r\n'], s2c: ['"not a name" here\r\n', 'x'] },
      // XML that is no XMPP stream; a TLS client whose server said something else first
      { port: 7302, c2s: [cat("<?xml version='1.0'?><methodCall><methodName>x</methodName></methodCall>", Buffer.alloc(1100, 0x20))], s2c: ['x'] },
      { port: 7303, c2s: [null, hello], s2c: ['INFORMATION\r\n', serverHello()] },
      // 0x12 first, but no PRELOGIN (an option token beyond NONCEOPT; an option pointing past its packet)
      { port: 7304, c2s: [tds(PRELOGIN, Buffer.from([0x09, 0, 6, 0, 0, 0xff]))], s2c: ['x'] },
      { port: 7305, c2s: [tds(PRELOGIN, Buffer.from([0x00, 0, 6, 0, 60, 0xff]))], s2c: ['x'] },
    ]);
    expect(flows.map((f) => f.app)).toEqual(['unknown', 'unknown', 'unknown', 'tls', 'unknown', 'unknown']);
    // (a TLS client whose server spoke first, not NATS: its ServerHello is not read from the server's line)
    expect(flows[3]!.tls).toMatchObject({ sni: plainTls.tls!.sni, cipher: null });
  });

  it('a hello larger than its TDS packet is not misread across the next packet\'s header', () => {
    const half = Math.floor(hello.length / 2);
    // (the record goes on in a second PRELOGIN packet: its header would sit inside the hello)
    const [f] = conversationFlows([{
      port: 1433, c2s: [tds(PRELOGIN, prelogin(0x01)), cat(tds(PRELOGIN, hello.subarray(0, half)), tds(PRELOGIN, hello.subarray(half)))],
      s2c: [tds(RESPONSE, prelogin(0x01)), tds(PRELOGIN, serverHello())],
    }]);
    expect([f!.app, f!.tls]).toEqual(['mssql', null]);
  });

  it('the preludes: undecided while cut off, pending until both sides\' TLS shows', () => {
    // a ManageSieve greeting cut after a quote, inside a name, or before its line ends; NNTP's cut before its code ends
    const g = (s: string) => textPrelude(Buffer.from('STARTTLS\r\n'), Buffer.from(s));
    for (const cut of ['"', '"IMPLEMENTATION', '"IMPLEMENTATION"', '"IMPLEMENTATION" "lab"', '20', '200 news']) expect(g(cut), cut).toBe('incomplete');
    expect(g('"IMPLEMENTATION" "lab"\r\n')).toEqual({ app: 'sieve', tls: 'pending' });
    expect(g('"" x\r\n')).toBeNull();
    const x = (c: string | Buffer, s: string | Buffer | null) => xmppPrelude(Buffer.from(c), s === null ? null : Buffer.from(s));
    expect(x('<?xm', null)).toBe('incomplete');
    expect(x('  \n', null)).toBe('incomplete');
    expect(x("<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jab", null)).toBe('incomplete');
    expect(x(XMPP_OPEN, null)).toEqual({ app: 'xmpp', tls: 'pending' });
    expect(x(XMPP_OPEN + '<star', null)).toEqual({ app: 'xmpp', tls: 'pending' });
    expect(x(cat(XMPP_OPEN, STARTTLS, hello), XMPP_FEATURES)).toEqual({ app: 'xmpp', tls: 'pending' });
    expect(x(cat(XMPP_OPEN, STARTTLS, hello), XMPP_FEATURES + PROCEED)).toEqual({ app: 'xmpp', tls: 'pending' });
    expect(x(cat(XMPP_OPEN, STARTTLS, hello), cat(XMPP_FEATURES, PROCEED, serverHello())))
      .toEqual({ app: 'xmpp', tls: { client: XMPP_OPEN.length + STARTTLS.length, server: XMPP_FEATURES.length + PROCEED.length } });
    // (refused: decided at once, not held to the dissection limit)
    expect(x(cat(XMPP_OPEN, STARTTLS, hello), XMPP_FEATURES + "<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")).toEqual({ app: 'xmpp', tls: null });
    expect(x('hello', null)).toBeNull();

    const n = (c: Buffer | string, s: string | Buffer | null) => natsPrelude(Buffer.from(c), s === null ? null : Buffer.from(s));
    expect(n(hello, null)).toBeNull();
    expect(n(hello, 'INF')).toBe('incomplete');
    expect(n(hello, 'INFO {"server_id":')).toBe('incomplete');
    expect(n(hello, NATS_INFO)).toEqual({ app: 'nats', tls: 'pending' });
    expect(n(hello, cat(NATS_INFO, serverHello()))).toEqual({ app: 'nats', tls: { client: 0, server: NATS_INFO.length } });
    expect(n('', NATS_INFO)).toEqual({ app: 'nats', tls: 'pending' });
    expect(n(hello, 'HTTP/1.1 400\r\n')).toBeNull();

    const t = (c: Buffer, s: Buffer | null) => tdsPrelude(c, s);
    const first = tds(PRELOGIN, prelogin(0x01));
    expect(t(first.subarray(0, 5), null)).toBe('incomplete');
    expect(t(first.subarray(0, 20), null)).toBe('incomplete');
    expect(t(first, null)).toEqual({ app: 'mssql', tls: 'pending' });
    expect(t(cat(first, tds(PRELOGIN, hello)), null)).toEqual({ app: 'mssql', tls: 'pending' });
    expect(t(cat(first, tds(PRELOGIN, hello)), tds(RESPONSE, prelogin(0x01)))).toEqual({ app: 'mssql', tls: 'pending' });
    expect(t(cat(first, tds(PRELOGIN, hello)), cat(tds(RESPONSE, prelogin(0x01)), tds(PRELOGIN, serverHello()))))
      .toEqual({ app: 'mssql', tls: { client: first.length + 8, server: tds(RESPONSE, prelogin(0x01)).length + 8 } });
  });

  it('Follow stream marks each one\'s plain prelude: where TLS began in each direction', () => {
    expect(tlsStartInPlace(cat(XMPP_OPEN, STARTTLS, hello), cat(XMPP_FEATURES, PROCEED, serverHello())))
      .toEqual({ client: XMPP_OPEN.length + STARTTLS.length, server: XMPP_FEATURES.length + PROCEED.length });
    expect(tlsStartInPlace(hello, cat(NATS_INFO, serverHello()))).toEqual({ client: 0, server: NATS_INFO.length });
    expect(tlsStartInPlace(cat('STARTTLS\r\n', hello), cat('200 news\r\n382 go\r\n', serverHello()))).toEqual({ client: 10, server: 18 });
    const first = tds(PRELOGIN, prelogin(0x01));
    const answer = tds(RESPONSE, prelogin(0x01));
    expect(tlsStartInPlace(cat(first, tds(PRELOGIN, hello)), cat(answer, tds(PRELOGIN, serverHello())))).toEqual({ client: first.length + 8, server: answer.length + 8 });
    // (an HTTP proxy's CONNECT and its answer, their lines ended by CRLF or, as RFC 9112 lets a recipient take them, LF)
    for (const eol of ['\r\n', '\n']) {
      const connect = `CONNECT db.test:443 HTTP/1.1${eol}Host: db.test:443${eol}${eol}`;
      const ok = `HTTP/1.1 200 Connection established${eol}${eol}`;
      expect(tlsStartInPlace(cat(connect, hello), cat(ok, serverHello())), JSON.stringify(eol)).toEqual({ client: connect.length, server: ok.length });
    }
  });

  it('SQL Server: who logs in (user, database, application) from LOGIN7, plain after PRELOGIN or from the hooks\' first decrypted write', () => {
    const login = login7({ host: 'web-1', user: 'orders_rw', password: 'secret', app: 'orders-api', server: 'db', database: 'orders' });
    const flows = conversationFlows([
      { port: 1433, c2s: [tds(PRELOGIN, prelogin(0x02)), login], s2c: [tds(RESPONSE, prelogin(0x02)), tds(RESPONSE, Buffer.alloc(20, 0xad))] },
      // (the login in two segments: the flow is told by the first, its names are in the second)
      { port: 1433, c2s: [tds(PRELOGIN, prelogin(0x02)), login.subarray(0, 60), login.subarray(60)], s2c: [tds(RESPONSE, prelogin(0x02)), null, tds(RESPONSE, Buffer.alloc(20, 0xad))] },
      {
        port: 1433, c2s: [tds(PRELOGIN, prelogin(0x01)), tds(PRELOGIN, hello)], s2c: [tds(RESPONSE, prelogin(0x01)), tds(PRELOGIN, serverHello())],
        afterTurn: (b, client, turn) => { if (turn === 1) b.tls(client, server(1433), 'out', login, { pid: 7, comm: 'tsql', lib: 'gnutls' }); },
      },
    ]);
    expect(flows.map((f) => [f.app, f.db])).toEqual(Array(3).fill(['mssql', { user: 'orders_rw', database: 'orders', application: 'orders-api' }]));
    expect(flows[2]!.tls!.client).toMatchObject({ library: 'gnutls', via: 'hook', plaintext: true });
    expect(flows.filter(compileFilter('db.user == "orders_rw" && app == "mssql"'))).toHaveLength(3);
    // cut anywhere: undecided until its strings are in; no names: nulls; the password is never read
    for (let n = 0; n < login.length; n++) expect(tdsLogin(login.subarray(0, n)), `${n} bytes`).toBe('incomplete');
    expect(tdsLogin(login7({ host: 'h', user: '', password: '', app: '', server: '', database: '' }))).toEqual({ user: null, database: null, application: null });
    expect(JSON.stringify(flows)).not.toContain('secret');
    // (a string said to lie past its packet; another packet type)
    const bad = Buffer.from(login);
    bad.writeUInt16LE(4000, 8 + 40);
    expect(tdsLogin(bad)).toEqual({ user: null, database: 'orders', application: 'orders-api' });
    expect(tdsLogin(tds(0x01, Buffer.alloc(100)))).toBeNull();
  });

  it('fuzz smoke: every opening with bytes flipped, cut or repeated is classified without an error', () => {
    const openings: [number, Buffer[], Buffer[]][] = [
      [5222, [Buffer.from(XMPP_OPEN), cat(STARTTLS, hello)], [Buffer.from(XMPP_FEATURES), cat(PROCEED, serverHello())]],
      [4222, [hello], [Buffer.from(NATS_INFO), serverHello()]],
      [1433, [tds(PRELOGIN, prelogin(1)), tds(PRELOGIN, hello)], [tds(RESPONSE, prelogin(1)), tds(PRELOGIN, serverHello())]],
      [4190, [cat('STARTTLS\r\n', hello)], [Buffer.from(SIEVE_GREETING), cat('OK "go"\r\n', serverHello())]],
      [1433, [tds(PRELOGIN, prelogin(2)), login7({ host: 'h', user: 'u', password: 'p', app: 'a', server: 's', database: 'd' })], [tds(RESPONSE, prelogin(2))]],
    ];
    let seed = 0x5eed;
    const rnd = (n: number): number => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return (seed >>> 8) % n; };
    const mutate = (b: Buffer): Buffer => {
      const m = Buffer.from(b);
      const kind = rnd(4);
      if (kind === 0) for (let k = 0; k < 1 + rnd(4); k++) m[rnd(m.length)] = rnd(256);
      if (kind === 1) return m.subarray(0, rnd(m.length + 1));
      if (kind === 2) return Buffer.concat([m.subarray(0, rnd(m.length)), m]);
      return m;
    };
    const apps = new Set<string>();
    for (let i = 0; i < 300; i++) {
      const [port, c2s, s2c] = openings[i % openings.length]!;
      // (the server's first segment first for the protocols whose server speaks first)
      const serverFirst = port === 4222 || port === 4190;
      const flows = conversationFlows([{ port, c2s: [...(serverFirst ? [null] : []), ...c2s.map(mutate)], s2c: s2c.map(mutate) }]);
      expect(flows.length).toBeGreaterThan(0);
      for (const f of flows) apps.add(f.app);
    }
    // (the mutations left some openings whole enough to be told, and spoiled others)
    expect(apps).toContain('unknown');
    for (const app of ['xmpp', 'nats', 'mssql', 'sieve']) expect(apps).toContain(app);
  });
});

/** A LOGIN7 packet (TDS 7.4) with these strings; the password in plain UTF-16 (real clients scramble it). */
function login7(v: { host: string; user: string; password: string; app: string; server: string; database: string }): Buffer {
  const fixed = Buffer.alloc(94);
  const strings: Buffer[] = [];
  let off = 94;
  // (offset, length) pairs at 36: host, user, password, app, server, unused, library, language, database
  const fields: [number, string][] = [[36, v.host], [40, v.user], [44, v.password], [48, v.app], [52, v.server], [60, 'DB-Library'], [64, ''], [68, v.database]];
  for (const [at, text] of fields) {
    const b = Buffer.from(text, 'utf16le');
    fixed.writeUInt16LE(off, at);
    fixed.writeUInt16LE(text.length, at + 2);
    strings.push(b);
    off += b.length;
  }
  const body = Buffer.concat([fixed, ...strings]);
  body.writeUInt32LE(body.length, 0);
  body.writeUInt32LE(0x74000004, 4);
  return tds(0x10, body);
}
