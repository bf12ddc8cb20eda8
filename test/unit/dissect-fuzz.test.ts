// Hostile input: mutated real ClientHellos (over TCP and DTLS), HTTP/1 and HTTP/2 streams and DNS messages must never make a
// dissector throw (a capture of arbitrary traffic feeds them anything). Seeded, so failures replay.
import { describe, it, expect } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { parseClientHello, parseServerHello, ja3, ja4 } from '../../src/dissect/tls.js';
import { Http1Parser } from '../../src/dissect/http1.js';
import { Http2Parser } from '../../src/dissect/http2.js';
import { parseDns } from '../../src/dissect/dns.js';
import { QuicInitialParser } from '../../src/dissect/quic.js';
import { DtlsHandshake } from '../../src/dissect/dtls.js';
import dnsPacket from 'dns-packet';

const FIX = path.join(import.meta.dirname, '../fixtures/dissect');
const hellos = (JSON.parse(fs.readFileSync(path.join(FIX, 'clienthellos.json'), 'utf8')) as { hellos: { helloHex?: string }[] })
  .hellos.flatMap((h) => (h.helloHex ? [Buffer.from(h.helloHex, 'hex')] : []));
/** the DTLS clients' hello datagrams (OpenSSL's, GnuTLS's) */
const dtlsHellos = (JSON.parse(fs.readFileSync(path.join(FIX, 'clienthellos.json'), 'utf8')) as { hellos: { transport: string; datagramsHex?: string[] }[] })
  .hellos.filter((h) => h.transport === 'dtls').map((h) => Buffer.from(h.datagramsHex![0]!, 'hex'));
const h2 = JSON.parse(fs.readFileSync(path.join(FIX, 'h2c.json'), 'utf8')) as { client: string; server: string };

/** xorshift32: small, seeded, good enough to scatter mutations */
function rng(seed: number): () => number {
  let x = seed || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x100000000;
  };
}

function mutate(buf: Buffer, r: () => number): Buffer {
  const out = Buffer.from(buf);
  const n = 1 + Math.floor(r() * 8);
  for (let i = 0; i < n; i++) {
    const at = Math.floor(r() * out.length);
    const kind = r();
    if (kind < 0.6) out[at] = Math.floor(r() * 256);
    else if (kind < 0.8) out[at] = out[at]! ^ 0x80;
    else return Buffer.concat([out.subarray(0, at), out.subarray(Math.min(out.length, at + 1 + Math.floor(r() * 40)))]);
  }
  return out;
}

describe('dissectors never throw on mutated input', () => {
  it('TLS hellos (5000 mutations)', () => {
    const r = rng(0x7a95c0de);
    let parsed = 0;
    for (let i = 0; i < 5000; i++) {
      const m = mutate(hellos[i % hellos.length]!, r);
      const ch = parseClientHello(m);
      if (ch !== null && ch !== 'incomplete') {
        parsed++;
        expect(ja4(ch, 'tcp')).toMatch(/^t(13|12|11|10|s3|s2|d[123]|00)[di]\d{4}[0-9a-zA-Z]{2}_[0-9a-f]{12}_[0-9a-f]{12}$/);
        ja3(ch);
      }
      parseServerHello(m);
    }
    // mutations inside extension bodies mostly still parse; the fuzz must reach the deep code
    expect(parsed).toBeGreaterThan(500);
  });
  it('DTLS hellos (3000 mutated datagrams, record and handshake headers included)', () => {
    expect(dtlsHellos).toHaveLength(2);
    const r = rng(0xd715);
    let parsed = 0;
    for (let i = 0; i < 3000; i++) {
      const base = dtlsHellos[i % dtlsHellos.length]!;
      // (mostly the first 40 bytes: record header, handshake header and fragment fields, version, random's start)
      const m = i % 2 === 0 ? Buffer.concat([mutate(base.subarray(0, 40), r), base.subarray(40)]) : mutate(base, r);
      const h = new DtlsHandshake();
      h.push(m);
      // (a second datagram, a fragment of the same message from elsewhere, over it)
      if (i % 3 === 0) h.push(mutate(base, r));
      const ch = h.clientHello();
      if (ch) {
        parsed++;
        expect(ja4(ch, 'dtls')).toMatch(/^d(13|12|11|10|s3|s2|d[123]|00)[di]\d{4}[0-9a-zA-Z]{2}_[0-9a-f]{12}_[0-9a-f]{12}$/);
        ja3(ch);
      }
      h.serverHello();
    }
    expect(parsed).toBeGreaterThan(300);
  });
  it('HTTP/1 (2000 mutated streams)', () => {
    const base = Buffer.from('GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody' +
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n');
    const r = rng(42);
    for (let i = 0; i < 2000; i++) {
      const p = new Http1Parser();
      const m = mutate(base, r);
      const cut = Math.floor(r() * m.length);
      p.push(m.subarray(0, cut), 0);
      if (i % 3 === 0) p.gap();
      p.push(m.subarray(cut), 1);
      p.end();
    }
  });
  it('HTTP/2 (1000 mutated streams per side)', () => {
    const r = rng(7);
    for (const [side, hex] of [['client', h2.client], ['server', h2.server]] as const) {
      const base = Buffer.from(hex, 'hex').subarray(0, 4000);
      for (let i = 0; i < 1000; i++) {
        const p = new Http2Parser(side);
        const m = mutate(base, r);
        p.push(m.subarray(0, 1000), 0);
        p.push(m.subarray(1000), 1);
      }
    }
  });
  it('QUIC Initials (1000 mutated datagrams, headers included)', () => {
    const rfc = Buffer.from(fs.readFileSync(path.join(FIX, 'rfc9001-a2-client-initial.hex'), 'utf8').trim(), 'hex');
    const r = rng(1234);
    for (let i = 0; i < 1000; i++) {
      // mutate mostly the header, where the parsing is (the payload is authenticated)
      const head = mutate(rfc.subarray(0, 64), r);
      const p = new QuicInitialParser();
      p.push(Buffer.concat([head, rfc.subarray(64)]));
      p.push(mutate(rfc, r));
    }
  });
  it('DNS (2000 mutated messages)', () => {
    const msg = dnsPacket.encode({
      id: 0x1234, type: 'response', questions: [{ type: 'A', name: 'www.example.test' }],
      answers: [{ type: 'CNAME', name: 'www.example.test', data: 'real.example.test' }, { type: 'A', name: 'real.example.test', data: '10.206.0.7' }],
    });
    expect(parseDns(msg, false)?.answers.length).toBe(2);
    const r = rng(99);
    for (let i = 0; i < 2000; i++) {
      const m = mutate(msg, r);
      parseDns(m, false);
      parseDns(Buffer.concat([Buffer.from([m.length >> 8, m.length & 0xff]), m]), true);
    }
  });
});
