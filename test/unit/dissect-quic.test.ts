// QUIC Initial decryption and ClientHello assembly: the RFC 9001 Appendix A.2 client Initial (an
// independent vector: its ClientHello content is spelled out in the RFC), and Chromium's real HTTP/3
// Initials captured by scripts/gen-fingerprints.mjs (two datagrams; JA3/JA4 expected from tshark).
import { describe, it, expect } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { QuicInitialParser, looksLikeQuicInitial } from '../../src/dissect/quic.js';
import { ja3, ja4, parseClientHello, type ClientHello } from '../../src/dissect/tls.js';
import { cryptoFrame, initialKeysOf, initialPacket } from './quic-seal.js';
import { fixtureClientHello } from './core-packet-builder.js';

const FIX = path.join(import.meta.dirname, '../fixtures/dissect');
const rfc = Buffer.from(fs.readFileSync(path.join(FIX, 'rfc9001-a2-client-initial.hex'), 'utf8').trim(), 'hex');
const chromium = (JSON.parse(fs.readFileSync(path.join(FIX, 'clienthellos.json'), 'utf8')) as {
  hellos: { name: string; transport: string; datagramsHex?: string[]; sni: string; expected: { ja4: string; ja3: string; ja3Full: string } }[];
}).hellos.find((h) => h.transport === 'quic');

function must(x: ClientHello | null | 'incomplete'): ClientHello {
  if (x === null || x === 'incomplete') throw new Error(`expected a ClientHello, got ${String(x)}`);
  return x;
}

describe('RFC 9001 A.2 client Initial', () => {
  it('decrypts to the ClientHello the RFC lists', () => {
    expect(looksLikeQuicInitial(rfc)).toBe(true);
    const ch = must(new QuicInitialParser().push(rfc));
    expect(ch.sni).toBe('example.com');
    expect(ch.alpn).toEqual(['alpn']);
    expect(ch.ciphers).toEqual([0x1301, 0x1302]);
    expect(ch.extensions).toEqual([0x0000, 0xff01, 0x000a, 0x0010, 0x0005, 0x0033, 0x002b, 0x000d, 0x002d, 0x001c, 0x0039]);
    expect(ch.supportedVersions).toEqual([0x0304]);
    expect(ja4(ch, 'quic').slice(0, 10)).toBe('q13d0211an');
  });
  it('one flipped ciphertext bit fails authentication: no hello, never a wrong one', () => {
    const bad = Buffer.from(rfc);
    bad[600] = bad[600]! ^ 1;
    expect(new QuicInitialParser().push(bad)).toBe('incomplete');
  });
  it('not QUIC is null', () => {
    expect(looksLikeQuicInitial(Buffer.from('not quic at all'))).toBe(false);
    expect(new QuicInitialParser().push(Buffer.from('GET / HTTP/1.1\r\n\r\n'))).toBeNull();
    expect(new QuicInitialParser().push(Buffer.from([0x40, 1, 2, 3, 4, 5, 6, 7]))).toBeNull();
  });
});

describe.skipIf(!chromium)('Chromium HTTP/3 Initials (golden, expected from tshark)', () => {
  const datagrams = (chromium?.datagramsHex ?? []).map((h) => Buffer.from(h, 'hex'));
  it('the hello spans more than one datagram and completes with the last', () => {
    expect(datagrams.length).toBeGreaterThan(1);
    const p = new QuicInitialParser();
    for (const d of datagrams.slice(0, -1)) expect(p.push(d)).toBe('incomplete');
    const ch = must(p.push(datagrams.at(-1)!));
    expect(ch.sni).toBe(chromium!.sni);
    expect(ch.alpn).toContain('h3');
    expect(ja4(ch, 'quic')).toBe(chromium!.expected.ja4);
    expect(ja3(ch)).toEqual({ string: chromium!.expected.ja3Full, hash: chromium!.expected.ja3 });
  });
  it('datagram order does not matter', () => {
    const p = new QuicInitialParser();
    let got: ReturnType<QuicInitialParser['push']> = 'incomplete';
    for (const d of [...datagrams].reverse()) got = p.push(d);
    expect(ja4(must(got), 'quic')).toBe(chromium!.expected.ja4);
  });
});

describe('CRYPTO frames in any order', () => {
  // (curl's TLS 1.3 ClientHello from the loopback fixture, as the CRYPTO stream would carry it: the handshake message)
  const record = fixtureClientHello();
  const message = record.subarray(5);
  const dcid = Buffer.from('8394c8f03e515708', 'hex');
  const keys = initialKeysOf(dcid, 'client in');

  it('one-byte frames sent backwards over three Initials give the hello of the frames in order', () => {
    // why: a hostile client's (or a test's) thousands of one-byte frames once took time quadratic in their number
    // (a 6 MB capture of them: 36 s); the hello must still be read when they do come whole
    const third = Math.ceil(message.length / 3);
    const datagrams = [2, 1, 0].map((k, pn) => {
      const frames: Buffer[] = [];
      for (let at = Math.min(message.length, (k + 1) * third) - 1; at >= k * third; at--) frames.push(cryptoFrame(at, message.subarray(at, at + 1)));
      return initialPacket(keys, dcid, Buffer.alloc(0), Buffer.concat(frames), pn);
    });
    const p = new QuicInitialParser();
    expect(p.push(datagrams[0]!)).toBe('incomplete');
    expect(p.push(datagrams[1]!)).toBe('incomplete');
    const ch = must(p.push(datagrams[2]!));
    const expected = parseClientHello(record);
    if (expected === null || expected === 'incomplete') throw new Error('the fixture hello does not parse');
    expect(ch.sni).toBe(expected.sni);
    expect(ja4(ch, 'quic')).toBe(ja4(expected, 'quic'));
    expect(ja3(ch)).toEqual(ja3(expected));
  });
});
