// Three kinds of handshake a reviewer compared with tshark 4.0: a ClientHello in SSL 2.0's format (RFC 5246 Appendix
// E.2, as old clients and scanners send it), a server name that is not ASCII, and a HelloRetryRequest (RFC 8446 §4.1.4)
// before the real ServerHello. Hellos are built by hand here, byte by byte. Where tshark is installed, each case is
// also checked against what it reads from the same capture.
import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CaptureBuilder, analyzeCapture, flightConversation } from './core-packet-builder.js';
import { cipherName, parseClientHello, type ClientHello } from '../../src/dissect/tls.js';
import type { Flow } from '../../src/model/flow.js';
import { compileFilter } from '../../src/filter/index.js';

const CLIENT = { ip: '10.62.0.1', port: 40001 };
const SERVER = { ip: '10.62.0.2', port: 443 };
const HRR_RANDOM = Buffer.from('cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c', 'hex');

const u8 = (n: number): Buffer => Buffer.from([n]);
const u16 = (n: number): Buffer => Buffer.from([n >> 8, n & 0xff]);
const u24 = (n: number): Buffer => Buffer.from([n >> 16, (n >> 8) & 0xff, n & 0xff]);
const vec8 = (b: Buffer): Buffer => Buffer.concat([u8(b.length), b]);
const vec16 = (b: Buffer): Buffer => Buffer.concat([u16(b.length), b]);
const u16s = (list: number[]): Buffer => Buffer.concat(list.map(u16));
const ext = (type: number, data: Buffer): Buffer => Buffer.concat([u16(type), vec16(data)]);
const record = (type: number, body: Buffer): Buffer => Buffer.concat([u8(type), u16(0x0303), vec16(body)]);
const handshake = (type: number, body: Buffer): Buffer => record(0x16, Buffer.concat([u8(type), u24(body.length), body]));
const CHANGE_CIPHER_SPEC = record(0x14, u8(1));

/** A client's SSL 2.0 CLIENT-HELLO: `version`, 3-byte cipher specs, no session id, a 16-byte challenge. */
function sslv2Hello(version: number, specs: number[]): Buffer {
  const body = Buffer.concat([u8(1), u16(version), u16(specs.length * 3), u16(0), u16(16), ...specs.map(u24), Buffer.alloc(16, 0xa5)]);
  return Buffer.concat([u16(0x8000 | body.length), body]);
}

const sniExt = (name: Buffer): Buffer => ext(0x0000, vec16(Buffer.concat([u8(0), vec16(name)])));

/** A TLS 1.3 ClientHello record (its random `fill`): SNI `name`, supported groups, TLS 1.3 and 1.2, a key share, `more` extensions. */
function clientHello(name: Buffer, fill: number, more: Buffer[] = []): Buffer {
  const exts = Buffer.concat([
    sniExt(name),
    ext(0x000a, vec16(u16s([0x001d, 0x0017]))),
    ext(0x000d, vec16(u16s([0x0403, 0x0804]))),
    ext(0x002b, vec8(u16s([0x0304, 0x0303]))),
    ext(0x0033, vec16(Buffer.concat([u16(0x001d), vec16(Buffer.alloc(32, 9))]))),
    ...more,
  ]);
  const body = Buffer.concat([u16(0x0303), Buffer.alloc(32, fill), vec8(Buffer.alloc(32, 3)), vec16(u16s([0x1301, 0x1302, 0xc02f])), vec8(u8(0)), vec16(exts)]);
  return handshake(1, body);
}

/**
 * A TLS 1.3 ServerHello record selecting `cipher`; a HelloRetryRequest with HRR_RANDOM (its key share names the group
 * it asks for; a ServerHello's holds the server's share).
 */
function serverHello(random: Buffer, cipher: number): Buffer {
  const share = random.equals(HRR_RANDOM) ? u16(0x0017) : Buffer.concat([u16(0x0017), vec16(Buffer.alloc(65, 4))]);
  const exts = Buffer.concat([ext(0x002b, u16(0x0304)), ext(0x0033, share)]);
  return handshake(2, Buffer.concat([u16(0x0303), random, vec8(Buffer.alloc(32, 3)), u16(cipher), u8(0), vec16(exts)]));
}

/** A TLS 1.2 ServerHello record selecting `cipher`. */
function tls12ServerHello(cipher: number): Buffer {
  return handshake(2, Buffer.concat([u16(0x0303), Buffer.alloc(32, 7), vec8(Buffer.alloc(0)), u16(cipher), u8(0), vec16(Buffer.alloc(0))]));
}

/** One TCP connection carrying `flights` in `size`-byte segments, as a pcapng capture. */
function capture(flights: ['c' | 's', Buffer][], size?: number): Buffer {
  const b = new CaptureBuilder();
  flightConversation(b, CLIENT, SERVER, flights, { size });
  return b.build();
}

function flowOf(flights: ['c' | 's', Buffer][], size?: number): Flow {
  const flows = analyzeCapture(capture(flights, size), { end: true }).flows();
  expect(flows).toHaveLength(1);
  return flows[0]!;
}

const hasTshark = spawnSync('tshark', ['--version']).status === 0;

/** tshark's fields (`-T fields`, a row per frame with any of them) for the capture, frames filtered by `filter`. */
function tshark(cap: Buffer, filter: string, fields: string[]): string[][] {
  const dir = mkdtempSync(join(tmpdir(), 'tapscope-tls-'));
  try {
    const file = join(dir, 'c.pcapng');
    writeFileSync(file, cap);
    const out = execFileSync('tshark', ['-r', file, '-Y', filter, '-T', 'fields', ...fields.flatMap((f) => ['-e', f])],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return out.split('\n').filter((l) => l.length > 0).map((l) => l.split('\t'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** JA4 as FoxIO's JA4.md spells it, for a hello without extensions: t, version, i, counts, no ALPN, hashes. */
function ja4NoExtensions(version: string, ciphers: string[]): string {
  const b = ciphers.length === 0 ? '000000000000' : createHash('sha256').update([...ciphers].sort().join(',')).digest('hex').slice(0, 12);
  return `t${version}i${String(ciphers.length).padStart(2, '0')}0000_${b}_000000000000`;
}

function must(x: ClientHello | null | 'incomplete'): ClientHello {
  if (x === null || x === 'incomplete') throw new Error(`expected a ClientHello, got ${String(x)}`);
  return x;
}

// ---- B7: SSL 2.0's ClientHello ----

// offering TLS 1.0: two TLS suites (first byte 0) and SSL 2.0's RC4-128-MD5 (0x010080), which is no TLS suite
const V2_HELLO = sslv2Hello(0x0301, [0x00002f, 0x000035, 0x010080]);

describe('a ClientHello in SSL 2.0\'s format', () => {
  it('is read: the version it offers, its TLS suites, no extensions, SNI or ALPN', () => {
    const ch = must(parseClientHello(V2_HELLO));
    expect(ch.sslv2).toBe(true);
    expect(ch.version).toBe(0x0301);
    expect(ch.ciphers).toEqual([0x002f, 0x0035]);
    expect([ch.extensions, ch.supportedVersions, ch.groups, ch.ecPointFormats, ch.signatureAlgorithms]).toEqual([[], [], [], [], []]);
    expect(ch.sni).toBeNull();
    expect(ch.alpn).toEqual([]);
    // (a true SSL 2.0 hello offering only SSL 2.0's ciphers: none of them a TLS suite)
    const old = must(parseClientHello(sslv2Hello(0x0002, [0x010080, 0x0700c0])));
    expect([old.version, old.ciphers]).toEqual([0x0002, []]);
  });

  it('makes a TLS flow with JA4 and the server\'s answer, no JA3, and a client verdict that names the fingerprint it looked up', () => {
    const f = flowOf([['c', V2_HELLO], ['s', tls12ServerHello(0x002f)]]);
    expect(f.app).toBe('tls');
    const tls = f.tls!;
    expect([tls.sni, tls.alpn, tls.ja3, tls.ja3Hash]).toEqual([null, [], null, null]);
    expect(tls.ja4).toBe(ja4NoExtensions('10', ['002f', '0035']));
    // (version and cipher are what the server chose: a hello only offers)
    expect([tls.version, tls.cipher]).toEqual(['TLS 1.2', 'TLS_RSA_WITH_AES_128_CBC_SHA']);
    expect(tls.client).toMatchObject({ library: 'unknown', via: 'fingerprint', confidence: 0 });
    expect(tls.client!.reason).toContain(`its ClientHello fingerprint (${tls.ja4}) is not in the fingerprint table`);
    // SSL 2.0 itself: JA4's "s2", no cipher it could count; no answer, no version or cipher
    const old = flowOf([['c', sslv2Hello(0x0002, [0x010080])]]);
    expect([old.app, old.tls!.ja4, old.tls!.ja3, old.tls!.version, old.tls!.cipher]).toEqual(['tls', ja4NoExtensions('s2', []), null, null, null]);
  });

  it('a TLS hello with the same version and suites and no extensions keeps its JA3 in the same capture (their JA4 is one)', () => {
    const tlsHello = handshake(1, Buffer.concat([u16(0x0301), Buffer.alloc(32, 1), vec8(Buffer.alloc(0)), vec16(u16s([0x002f, 0x0035])), vec8(u8(0))]));
    for (const order of [[V2_HELLO, tlsHello], [tlsHello, V2_HELLO]]) {
      const b = new CaptureBuilder();
      order.forEach((hello, i) => flightConversation(b, { ...CLIENT, port: CLIENT.port + i }, SERVER, [['c', hello]]));
      const byJa3 = analyzeCapture(b.build(), { end: true }).flows().map((f) => [f.tls?.ja4, f.tls?.ja3]);
      const ja4 = ja4NoExtensions('10', ['002f', '0035']);
      const expected: [string, string | null][] = [[ja4, null], [ja4, '769,47-53,,,']];
      expect(byJa3).toEqual(order[0] === V2_HELLO ? expected : [expected[1], expected[0]]);
    }
  });

  it('is read the same in segments of every size', () => {
    const whole = flowOf([['c', V2_HELLO], ['s', tls12ServerHello(0x002f)]]);
    for (let size = 1; size < V2_HELLO.length; size++) {
      const f = flowOf([['c', V2_HELLO], ['s', tls12ServerHello(0x002f)]], size);
      expect([f.app, f.tls?.ja4, f.tls?.cipher], `segments of ${size}`).toEqual([whole.app, whole.tls!.ja4, whole.tls!.cipher]);
    }
  });

  it('cut short, it is waited for and nothing breaks; bytes whose lengths do not add up are not taken for one', () => {
    for (let n = 1; n < V2_HELLO.length; n++) {
      const part = V2_HELLO.subarray(0, n);
      expect(parseClientHello(part), `first ${n} bytes`).toBe('incomplete');
      const f = flowOf([['c', part]]);
      // (its 11 bytes of header tell a hello: the flow is TLS whose hello never came whole)
      expect([f.app, f.tls?.ja4 ?? null], `first ${n} bytes`).toEqual(n >= 11 ? ['tls', null] : ['unknown', null]);
    }
    const bad = (at: number, v: number): Buffer => { const b = Buffer.from(V2_HELLO); b[at] = v; return b; };
    // a record length one too long, cipher specs not of 3 bytes, a 15-byte challenge, message type 2, version 0x0200
    for (const b of [bad(1, V2_HELLO[1]! + 1), bad(6, 10), bad(10, 15), bad(2, 2), bad(3, 2)]) {
      expect(parseClientHello(b)).toBeNull();
      expect(flowOf([['c', b]]).app).toBe('unknown');
    }
    expect(flowOf([['c', V2_HELLO]]).app).toBe('tls');
  });

  it.skipIf(!hasTshark)('tshark reads the same hello: its version, its cipher specs, and no JA3', () => {
    const rows = tshark(capture([['c', V2_HELLO]]), 'tls.handshake.type == 1', ['tls.record.version', 'tls.handshake.version', 'tls.handshake.cipherspec', 'tls.handshake.ja3']);
    expect(rows).toEqual([['0x0002', '0x0301', '0x00002f,0x000035,0x010080', '']]);
    const ch = must(parseClientHello(V2_HELLO));
    const tlsSpecs = rows[0]![2]!.split(',').map((s) => parseInt(s, 16)).filter((s) => s >> 16 === 0);
    expect(ch.ciphers).toEqual(tlsSpecs);
    expect(ch.version).toBe(parseInt(rows[0]![1]!, 16));
  });
});

// ---- B4: a server name that is not ASCII ----

describe('a server name that is not ASCII', () => {
  const utf8 = Buffer.from('bücher.example', 'utf8');
  it('is UTF-8 text when its bytes are UTF-8', () => {
    expect(must(parseClientHello(clientHello(utf8, 1))).sni).toBe('bücher.example');
    expect(flowOf([['c', clientHello(utf8, 1)]]).tls!.sni).toBe('bücher.example');
    expect(must(parseClientHello(clientHello(Buffer.from('xn--bcher-kva.example'), 1))).sni).toBe('xn--bcher-kva.example');
  });

  it('otherwise shows its other bytes (and a backslash) as \\xHH, not as made-up latin1 letters', () => {
    expect(must(parseClientHello(clientHello(Buffer.from('b\xfccher.example', 'latin1'), 1))).sni).toBe('b\\xfccher.example');
    expect(must(parseClientHello(clientHello(Buffer.from('a\\b\xff', 'latin1'), 1))).sni).toBe('a\\x5cb\\xff');
  });

  it.skipIf(!hasTshark)('tshark reads the same bytes (it shows each byte past ASCII as U+FFFD)', () => {
    const [[name]] = tshark(capture([['c', clientHello(utf8, 1)]]), 'tls.handshake.type == 1', ['tls.handshake.extensions_server_name']) as [[string]];
    const ours = flowOf([['c', clientHello(utf8, 1)]]).tls!.sni!;
    expect(name).toBe([...Buffer.from(ours, 'utf8')].map((b) => (b < 0x80 ? String.fromCharCode(b) : '\ufffd')).join(''));
  });
});

// ---- B10: a HelloRetryRequest ----

describe('a HelloRetryRequest', () => {
  const first = clientHello(Buffer.from('example.test'), 1);
  // the second hello, as RFC 8446 §4.1.2 has it: the same but for the key share and the cookie the server sent
  const second = clientHello(Buffer.from('example.test'), 2, [ext(0x002c, vec16(Buffer.alloc(8, 4)))]);
  const hrr = serverHello(HRR_RANDOM, 0x1302);
  // (a server that changed its cipher after the retry, which RFC 8446 forbids, tells which of its hellos a value came from)
  const real = serverHello(Buffer.alloc(32, 5), 0x1301);

  it('is no ServerHello: with no real one after it, no version or cipher, and the flow says the server asked for a retry', () => {
    const alone = flowOf([['c', first], ['s', Buffer.concat([hrr, CHANGE_CIPHER_SPEC])], ['c', second]]);
    expect([alone.tls!.version, alone.tls!.cipher, alone.tls!.helloRetry]).toEqual([null, null, true]);
    const plain = flowOf([['c', first], ['s', real]]);
    expect([plain.tls!.version, plain.tls!.cipher, plain.tls!.helloRetry]).toEqual(['TLS 1.3', 'TLS_AES_128_GCM_SHA256', undefined]);
    // (the filter finds them: `tls.helloRetry`)
    expect([alone, plain].map(compileFilter('tls.helloRetry'))).toEqual([true, false]);
  });

  it('the real ServerHello after the second ClientHello gives version and cipher; SNI, JA3 and JA4 stay the first hello\'s', () => {
    const once = flowOf([['c', first]]).tls!;
    const secondOnly = flowOf([['c', second]]).tls!;
    expect(secondOnly.ja4).not.toBe(once.ja4);
    for (const server of [[hrr, CHANGE_CIPHER_SPEC], [hrr]]) {
      const f = flowOf([['c', first], ['s', Buffer.concat(server)], ['c', Buffer.concat([CHANGE_CIPHER_SPEC, second])], ['s', real]]);
      expect([f.tls!.version, f.tls!.cipher, f.tls!.helloRetry]).toEqual(['TLS 1.3', 'TLS_AES_128_GCM_SHA256', true]);
      expect([f.tls!.sni, f.tls!.ja3, f.tls!.ja4]).toEqual([once.sni, once.ja3, once.ja4]);
    }
    // (a second HelloRetryRequest, which a client must refuse: still no ServerHello)
    const twice = flowOf([['c', first], ['s', hrr], ['c', second], ['s', Buffer.concat([hrr, real])]]);
    expect([twice.tls!.version, twice.tls!.cipher, twice.tls!.helloRetry]).toEqual([null, null, true]);
  });

  it('is read the same in segments of every size', () => {
    const flights: ['c' | 's', Buffer][] = [['c', first], ['s', Buffer.concat([hrr, CHANGE_CIPHER_SPEC])], ['c', second], ['s', real]];
    for (let size = 1; size <= hrr.length + CHANGE_CIPHER_SPEC.length; size++) {
      const t = flowOf(flights, size).tls!;
      expect([t.version, t.cipher, t.helloRetry, t.ja4], `segments of ${size}`).toEqual(['TLS 1.3', 'TLS_AES_128_GCM_SHA256', true, flowOf([['c', first]]).tls!.ja4]);
    }
  });

  it.skipIf(!hasTshark)('tshark names it a Hello Retry Request and reads the cipher from the real ServerHello alone', () => {
    const flights: ['c' | 's', Buffer][] = [['c', first], ['s', Buffer.concat([hrr, CHANGE_CIPHER_SPEC])], ['c', second], ['s', real]];
    const rows = tshark(capture(flights), 'tls.handshake.type == 2', ['tls.handshake.ciphersuite', '_ws.col.Info']);
    expect(rows.map((r) => r[1])).toEqual(['Hello Retry Request, Change Cipher Spec', 'Server Hello']);
    expect(flowOf(flights).tls!.cipher).toBe(cipherName(parseInt(rows[1]![0]!, 16)));
    const alone = tshark(capture(flights.slice(0, 3)), 'tls.handshake.type == 2', ['_ws.col.Info']);
    expect(alone).toEqual([['Hello Retry Request, Change Cipher Spec']]);
  });
});
