// QUIC connections that went through a Retry (RFC 9000 §17.2.5): after it the client's Initials, and the server's,
// are under keys from the connection ID the Retry gave (RFC 9001 §5.2), and the client sends its hello again from
// offset 0. Connections sealed here by a sender written from the RFCs with its own HKDF (quic-seal.ts), Retries with
// the integrity tag of RFC 9001 §5.8 (checked against the RFC's A.4 vector), the hello a real one (curl's, from the
// loopback fixture). Also the server's Initial read without a key log: the cipher suite and version its ServerHello chose.
import { describe, it, expect } from 'vitest';
import { createCipheriv, randomBytes } from 'node:crypto';
import { QuicInitialParser, looksLikeQuicInitial } from '../../src/dissect/quic.js';
import { ja4, parseClientHello, type ClientHello } from '../../src/dissect/tls.js';
import { KeyLog } from '../../src/dissect/tls-keylog.js';
import type { Flow } from '../../src/model/flow.js';
import { analyzeCapture, CaptureBuilder, fixtureClientHello } from './core-packet-builder.js';
import { cryptoFrame, initialKeysOf, initialPacket, keysOf, seal } from './quic-seal.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

// (curl's TLS 1.3 ClientHello from the loopback fixture, as QUIC's CRYPTO stream carries it: the handshake message)
const record = fixtureClientHello();
const hello = record.subarray(5);
const expected = parseClientHello(record) as ClientHello;
const random = hello.subarray(6, 38);

/** The Retry Integrity Tag (RFC 9001 §5.8, QUIC v1) of a Retry packet's bytes before it, for the original DCID `odcid`. */
function retryTag(odcid: Buffer, retry: Buffer): Buffer {
  const c = createCipheriv('aes-128-gcm', hex('be0c690b9f66575a1d766b54e368c84e'), hex('461599d35d632bf2239825bb'));
  c.setAAD(Buffer.concat([Buffer.from([odcid.length]), odcid, retry]));
  c.final();
  return c.getAuthTag();
}

/** A server's Retry (v1) to the client `dcid` (its Source Connection ID), giving `scid`; `tag`: a wrong one instead. */
function retryPacket(odcid: Buffer, dcid: Buffer, scid: Buffer, token: Buffer, tag?: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from([0xf0, 0, 0, 0, 1, dcid.length]), dcid, Buffer.from([scid.length]), scid, token]);
  return Buffer.concat([body, tag ?? retryTag(odcid, body)]);
}

/** A client Initial (v1) numbered `pn` carrying `frames` and `token`, under the keys of `dcid`, padded to 1200 bytes. */
function clientInitial(dcid: Buffer, scid: Buffer, token: Buffer, frames: Buffer, pn: number): Buffer {
  const head = Buffer.concat([Buffer.from([0xc0, 0, 0, 0, 1, dcid.length]), dcid, Buffer.from([scid.length]), scid, Buffer.from([token.length]), token]);
  const payload = Buffer.concat([frames, Buffer.alloc(Math.max(0, 1200 - head.length - 3 - frames.length - 16))]);
  const length = 1 + payload.length + 16;
  const header = Buffer.concat([head, Buffer.from([0x40 | (length >> 8), length & 0xff, pn])]);
  return seal(initialKeysOf(dcid, 'client in'), header, pn, payload, true);
}

const TLS13 = hex('002b 0002 0304');
/** A ServerHello (handshake message) choosing `cipher`, TLS 1.3 by supported_versions; `hrr`: a HelloRetryRequest's random. */
function serverHello(cipher: number, hrr = false): Buffer {
  const r = hrr ? hex('cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c') : randomBytes(32);
  const body = Buffer.concat([hex('0303'), r, Buffer.from([0, cipher >> 8, cipher & 0xff, 0, 0, TLS13.length]), TLS13]);
  return Buffer.concat([Buffer.from([0x02, 0, body.length >> 8, body.length & 0xff]), body]);
}

/** A 1-RTT packet numbered `pn` to `dcid` carrying the frames `frames` (padded for the header protection sample). */
function oneRtt(secret: Buffer, dcid: Buffer, pn: number, frames: Buffer): Buffer {
  return seal(keysOf(secret), Buffer.concat([Buffer.from([0x40]), dcid, Buffer.from([pn])]), pn, Buffer.concat([frames, Buffer.alloc(24)]), false);
}

/** A STREAM frame with length and FIN on stream `id` (under 64). */
const streamFrame = (id: number, data: Buffer): Buffer => Buffer.concat([Buffer.from([0x0b, id, 0x40 | (data.length >> 8), data.length & 0xff]), data]);
// HTTP/3 HEADERS frames, QPACK with static references only (RFC 9204): GET https / with :authority example.com; 200
const h3Headers = (section: Buffer): Buffer => Buffer.concat([Buffer.from([0x01, section.length + 2, 0, 0]), section]);
const REQUEST = h3Headers(Buffer.concat([Buffer.from([0xc0 | 17, 0xc0 | 23, 0xc0 | 1, 0x50, 11]), Buffer.from('example.com')]));
const RESPONSE = h3Headers(Buffer.from([0xc0 | 25]));

const first = hex('8394c8f03e515708');
const clientCid = hex('c0ffee01');
const retryCid = hex('5e5e5e5e5e5e5e5e');
const serverCid = hex('5e7e5e7e5e7e5e7e');
const token = Buffer.from('retry-token-123');
const client0 = randomBytes(32);
const server0 = randomBytes(32);
const keyLog = (): KeyLog => {
  const log = new KeyLog();
  log.add(`CLIENT_TRAFFIC_SECRET_0 ${random.toString('hex')} ${client0.toString('hex')}\nSERVER_TRAFFIC_SECRET_0 ${random.toString('hex')} ${server0.toString('hex')}\n`, 'test.keys');
  return log;
};

/** The datagrams as one UDP flow (true: the client's), read with `log`: its flow. */
function flowOf(datagrams: [boolean, Buffer][], log?: KeyLog): Flow {
  const b = new CaptureBuilder();
  const c = { ip: '10.0.0.1', port: 50000 };
  const s = { ip: '10.0.0.2', port: 443 };
  for (const [fromClient, payload] of datagrams) {
    const [src, dst] = fromClient ? [c, s] : [s, c];
    b.udp({ src: src.ip, dst: dst.ip, sport: src.port, dport: dst.port, payload });
  }
  const flows = analyzeCapture(b.build(), { options: log ? { keyLog: log } : undefined, end: true }).flows();
  expect(flows).toHaveLength(1);
  return flows[0]!;
}

/** The server's Initial with its ServerHello (TLS_AES_128_GCM_SHA256) under the keys of `keyDcid`, then one HTTP/3 exchange. */
function handshakeAndExchange(keyDcid: Buffer): [boolean, Buffer][] {
  return [
    [false, initialPacket(initialKeysOf(keyDcid, 'server in'), clientCid, serverCid, cryptoFrame(0, serverHello(0x1301)))],
    [true, oneRtt(client0, serverCid, 0, streamFrame(0, REQUEST))],
    [false, oneRtt(server0, clientCid, 0, streamFrame(0, RESPONSE))],
  ];
}

const exchanges = (f: Flow): [string | null, string | null, number | null][] => f.http.map((h) => [h.method, h.path, h.status]);

describe('a QUIC connection through a Retry', () => {
  it('with a key log, decrypts it: its Initials after the Retry opened with the keys of the connection ID the Retry gave', () => {
    // (the Retries here carry the tag a server's would: RFC 9001 A.4's, computed as this file does)
    const a4 = hex('ff000000010008f067a5502a4262b5746f6b656e04a265ba2eff4d829058fb3f0f2496ba');
    expect(retryTag(first, a4.subarray(0, -16))).toEqual(a4.subarray(-16));
    const f = flowOf([
      [true, clientInitial(first, clientCid, Buffer.alloc(0), cryptoFrame(0, hello), 0)],
      [false, retryPacket(first, clientCid, retryCid, token)],
      [true, clientInitial(retryCid, clientCid, token, cryptoFrame(0, hello), 1)],
      ...handshakeAndExchange(retryCid),
    ], keyLog());
    expect(exchanges(f)).toEqual([['GET', '/', 200]]);
    expect(f.tls).toMatchObject({ sni: expected.sni, version: 'TLS 1.3', cipher: 'TLS_AES_128_GCM_SHA256', keylog: { status: 'decrypted', reason: null } });
  });

  it('takes SNI, ALPN and JA4 from whichever flight carried the hello whole: the one after the Retry, or the first when its rest comes late', () => {
    const half = 120;
    const datagrams: [boolean, Buffer][] = [
      [true, clientInitial(first, clientCid, Buffer.alloc(0), cryptoFrame(0, hello.subarray(0, half)), 0)],
      [false, retryPacket(first, clientCid, retryCid, token)],
      [true, clientInitial(retryCid, clientCid, token, cryptoFrame(0, hello.subarray(0, half)), 1)],
      [true, clientInitial(retryCid, clientCid, token, cryptoFrame(half, hello.subarray(half)), 2)],
    ];
    const p = new QuicInitialParser();
    const got = datagrams.filter(([c]) => c).map(([, d]) => p.push(d));
    expect(got.slice(0, 2)).toEqual(['incomplete', 'incomplete']);
    expect(ja4(got[2] as ClientHello, 'quic')).toBe(ja4(expected, 'quic'));
    const f = flowOf(datagrams);
    expect(f.app).toBe('quic');
    expect(f.tls).toMatchObject({ sni: expected.sni, alpn: expected.alpn, ja4: ja4(expected, 'quic') });

    // (the first flight's second Initial reordered behind the first of the flight after the Retry)
    const late = new QuicInitialParser();
    expect(late.push(clientInitial(first, clientCid, Buffer.alloc(0), cryptoFrame(0, hello.subarray(0, half)), 0))).toBe('incomplete');
    expect(late.push(clientInitial(retryCid, clientCid, token, cryptoFrame(0, hello.subarray(0, half)), 2))).toBe('incomplete');
    expect(ja4(late.push(clientInitial(first, clientCid, Buffer.alloc(0), cryptoFrame(half, hello.subarray(half)), 1)) as ClientHello, 'quic')).toBe(ja4(expected, 'quic'));
  });

  it("does not mix the two flights' CRYPTO bytes: the hello after the Retry is read from its own flight whole", () => {
    const sni = Buffer.from(expected.sni!);
    const other = Buffer.from(hello);
    const at = other.indexOf(sni);
    other.write('x'.repeat(sni.length), at, 'latin1');
    // (the first flight has the hello up to past its SNI; the second's first part is lost at first)
    const cut = at + sni.length + 1;
    const p = new QuicInitialParser();
    expect(p.push(clientInitial(first, clientCid, Buffer.alloc(0), cryptoFrame(0, hello.subarray(0, cut)), 0))).toBe('incomplete');
    expect(p.push(clientInitial(retryCid, clientCid, token, cryptoFrame(cut, other.subarray(cut)), 1))).toBe('incomplete');
    const ch = p.push(clientInitial(retryCid, clientCid, token, cryptoFrame(0, other.subarray(0, cut)), 2)) as ClientHello;
    expect(ch.sni).toBe('x'.repeat(sni.length));
  });

  it("a Retry the client did not take (its integrity tag wrong) changes no keys, and its connection ID is not the server's", () => {
    // (the Retry's connection ID is longer than the server's: a reader taking it for the server's misreads every 1-RTT packet)
    const f = flowOf([
      [true, clientInitial(first, clientCid, Buffer.alloc(0), cryptoFrame(0, hello), 0)],
      [false, retryPacket(first, clientCid, Buffer.concat([retryCid, retryCid]), token, Buffer.alloc(16, 0x11))],
      ...handshakeAndExchange(first),
    ], keyLog());
    expect(exchanges(f)).toEqual([['GET', '/', 200]]);
    expect(f.tls!.keylog).toMatchObject({ status: 'decrypted' });
  });

  it("says the server's Initial was not read, not that the key log lacks the secrets, when the client's Initial after the Retry was not captured", () => {
    const f = flowOf([
      [true, clientInitial(first, clientCid, Buffer.alloc(0), cryptoFrame(0, hello), 0)],
      [false, retryPacket(first, clientCid, retryCid, token)],
      ...handshakeAndExchange(retryCid),
    ], keyLog());
    expect(f.http).toEqual([]);
    expect(f.tls!.keylog!.status).toBe('failed');
    expect(f.tls!.keylog!.reason).toBe(
      "its server's Initial (the ServerHello, which names the cipher suite) was not read: none of its 1 Initial packets opened with the Initial keys of its client's Destination Connection ID",
    );
  });
});

describe("the server's Initial read without a key log", () => {
  it("fills the flow's TLS version and cipher suite from it, also after a Retry", () => {
    const f = flowOf([
      [true, clientInitial(first, clientCid, Buffer.alloc(0), cryptoFrame(0, hello), 0)],
      [false, retryPacket(first, clientCid, retryCid, token)],
      [true, clientInitial(retryCid, clientCid, token, cryptoFrame(0, hello), 1)],
      ...handshakeAndExchange(retryCid),
    ]);
    expect(f.tls).toMatchObject({ sni: expected.sni, version: 'TLS 1.3', cipher: 'TLS_AES_128_GCM_SHA256' });
    expect(f.http).toEqual([]);
  });

  it('gives the cipher suite and the TLS version its ServerHello chose, also after a Retry', () => {
    const plain = new QuicInitialParser();
    expect(plain.push(clientInitial(first, clientCid, Buffer.alloc(0), cryptoFrame(0, hello), 0))).not.toBe('incomplete');
    expect(plain.pushServer(initialPacket(initialKeysOf(first, 'server in'), clientCid, serverCid, cryptoFrame(0, serverHello(0x1302))))).toMatchObject({ cipher: 0x1302, selectedVersion: 0x0304, retry: false });

    const retried = new QuicInitialParser();
    // (the hello came whole before the Retry: the client's Initial after it is still read, for the keys it begins)
    expect(retried.push(clientInitial(first, clientCid, Buffer.alloc(0), cryptoFrame(0, hello), 0))).toMatchObject({ sni: expected.sni });
    expect(retried.pushServer(retryPacket(first, clientCid, retryCid, token))).toBe('incomplete');
    retried.push(clientInitial(retryCid, clientCid, token, cryptoFrame(0, hello), 1));
    expect(retried.pushServer(initialPacket(initialKeysOf(retryCid, 'server in'), clientCid, serverCid, cryptoFrame(0, serverHello(0x1303))))).toMatchObject({ cipher: 0x1303, selectedVersion: 0x0304 });
  });

  it('past a HelloRetryRequest, the ServerHello after it, in two Initials', () => {
    const p = new QuicInitialParser();
    p.push(clientInitial(first, clientCid, Buffer.alloc(0), cryptoFrame(0, hello), 0));
    const hrr = serverHello(0x1301, true);
    const k = initialKeysOf(first, 'server in');
    expect(p.pushServer(initialPacket(k, clientCid, serverCid, cryptoFrame(0, hrr), 0))).toBe('incomplete');
    expect(p.pushServer(initialPacket(k, clientCid, serverCid, cryptoFrame(hrr.length, serverHello(0x1301)), 1))).toMatchObject({ cipher: 0x1301, retry: false });
  });
});

describe('QUIC versions tried before one the server speaks', () => {
  const dcid = Buffer.from('83941e8ee4e1f7a5', 'hex');
  const scid = Buffer.from('c1c2c3c4', 'hex');
  const c = '10.204.6.1';
  const s = '10.204.6.2';
  /** A Version Negotiation packet (RFC 9000 §17.2.1): version 0, the IDs swapped, the versions the server speaks. */
  const vn = Buffer.concat([Buffer.from([0xc7, 0, 0, 0, 0, scid.length]), scid, Buffer.from([dcid.length]), dcid, Buffer.from([0, 0, 0, 1])]);
  /** A client Initial of version `version` carrying the whole hello, padded to 1,200 bytes as a client pads it. */
  const initial = (version: number): Buffer => {
    const p = initialPacket(initialKeysOf(dcid, 'client in'), dcid, scid, cryptoFrame(0, hello), 0, version);
    return Buffer.concat([p, Buffer.alloc(Math.max(0, 1200 - p.length))]);
  };

  it('a greased version\'s Initial (0x?a?a?a?a, RFC 9000 §15) is read with v1\'s keys, as its sender protects it and tshark reads it', () => {
    const b = new CaptureBuilder();
    b.udp({ src: c, dst: s, sport: 51000, dport: 4433, payload: initial(0x1a2a3a4a) });
    b.udp({ src: s, dst: c, sport: 4433, dport: 51000, payload: vn });
    const [f] = analyzeCapture(b.build(), { end: true }).flows();
    expect([f!.app, f!.tls?.sni, f!.tls?.ja4]).toEqual(['quic', expected.sni, ja4(expected, 'quic')]);
    // (only a client's first Initial is taken for a greased version's: 1,200 bytes, a DCID of 20 at most; a datagram of
    // 0xca bytes, "version 0xcacacaca", is not QUIC)
    expect([initial(0x1a2a3a4a), Buffer.alloc(140, 0xca), Buffer.alloc(1200, 0xca)].map(looksLikeQuicInitial)).toEqual([true, false, false]);
  });

  it('a version it cannot read, the server\'s Version Negotiation, then a v1 Initial on the same ports: read from the v1 Initial', () => {
    const unreadable = initial(0x00000002);
    const b = new CaptureBuilder();
    b.udp({ src: c, dst: s, sport: 51001, dport: 4433, payload: unreadable });
    b.udp({ src: s, dst: c, sport: 4433, dport: 51001, payload: vn });
    b.udp({ src: c, dst: s, sport: 51001, dport: 4433, payload: initial(1) });
    const [f] = analyzeCapture(b.build(), { end: true }).flows();
    expect([f!.app, f!.packets, f!.tls?.sni]).toEqual(['quic', 3, expected.sni]);
    // (a datagram of no QUIC version after a few is not waited on for ever: the flow is unknown)
    const other = new CaptureBuilder();
    for (let i = 0; i < 8; i++) other.udp({ src: c, dst: s, sport: 51002, dport: 4433, payload: unreadable });
    other.udp({ src: c, dst: s, sport: 51002, dport: 4433, payload: initial(1) });
    expect(analyzeCapture(other.build(), { end: true }).flows()[0]!.app).toBe('unknown');
  });
});
