// DTLS hellos: a real capture (test/fixtures/pcapng/dtls-loopback.pcap: `openssl s_client -dtls -servername dtls.test
// -alpn foo` and `gnutls-cli --udp` against `openssl s_server -dtls` on loopback, recorded by tcpdump) read as tshark
// reads it; a ClientHello cut into fragments that come out of order and across datagrams; damaged datagrams.
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { parseBuffer } from '../../src/pcapng/index.js';
import { decodePacket } from '../../src/flows/decode.js';
import { Analyzer } from '../../src/flows/analyzer.js';
import { DtlsHandshake, looksLikeDtlsClientHello } from '../../src/dissect/dtls.js';
import { ja3, ja4 } from '../../src/dissect/tls.js';
import { lookupJa4 } from '../../src/verdict/index.js';

const FIXTURE = join(import.meta.dirname, '../fixtures/pcapng/dtls-loopback.pcap');
/** the DTLS clients' hellos scripts/gen-fingerprints.mjs captured, with the JA3 and JA4 made from tshark's fields */
const GOLDEN = (JSON.parse(readFileSync(join(import.meta.dirname, '../fixtures/dissect/clienthellos.json'), 'utf8')) as {
  hellos: { name: string; library: string; transport: string; datagramsHex?: string[]; expected: { ja4: string; ja3: string; ja3Full: string } }[];
}).hellos.filter((h) => h.transport === 'dtls');

/** The fixture's UDP payloads, in order, with their source ports. */
function datagrams(): { sport: number; payload: Buffer }[] {
  const out: { sport: number; payload: Buffer }[] = [];
  for (const b of parseBuffer(readFileSync(FIXTURE))) {
    if (b.type !== 'epb') continue;
    const d = decodePacket(b.iface.linkType, b.data);
    if (d && d.proto === 17) out.push({ sport: d.srcPort, payload: Buffer.from(d.payload) });
  }
  return out;
}

/** DTLS records of epoch 0 carrying one handshake fragment each: [type, message seq, offset, bytes of the body]. */
function records(type: number, length: number, frags: { seq: number; offset: number; bytes: Buffer }[]): Buffer {
  return Buffer.concat(frags.map(({ seq, offset, bytes }) => {
    const hs = Buffer.alloc(12);
    hs[0] = type;
    hs.writeUIntBE(length, 1, 3);
    hs.writeUInt16BE(seq, 4);
    hs.writeUIntBE(offset, 6, 3);
    hs.writeUIntBE(bytes.length, 9, 3);
    const rec = Buffer.alloc(13);
    rec[0] = 22;
    rec.writeUInt16BE(0xfefd, 1);
    rec.writeUInt16BE(12 + bytes.length, 11);
    return Buffer.concat([rec, hs, bytes]);
  }));
}

describe('DTLS hellos of the fingerprint generator\'s clients (golden)', () => {
  it('gives the JA3 and JA4 made from tshark\'s fields, and the fingerprint table names their library', () => {
    expect(GOLDEN.map((h) => h.name).sort()).toEqual(['gnutls-cli-dtls', 'openssl-s_client-dtls']);
    for (const h of GOLDEN) {
      const hs = new DtlsHandshake();
      for (const d of h.datagramsHex!) hs.push(Buffer.from(d, 'hex'));
      const ch = hs.clientHello()!;
      expect(ja4(ch, 'dtls'), h.name).toBe(h.expected.ja4);
      expect(ja3(ch), h.name).toEqual({ string: h.expected.ja3Full, hash: h.expected.ja3 });
      expect(lookupJa4(h.expected.ja4)?.library, h.name).toBe(h.library);
    }
  });
});

describe('DTLS hellos from a real capture (OpenSSL and GnuTLS clients)', () => {
  const a = new Analyzer();
  const feed = a.stream();
  for (const b of parseBuffer(readFileSync(FIXTURE))) feed(b);
  a.endCapture();
  const flows = a.flows();

  it('gives each connection its SNI, ALPN, version, cipher and the JA3 tshark computes', () => {
    expect(flows.map((f) => [f.transport, f.app, f.tls?.sni, f.tls?.alpn, f.tls?.version])).toEqual([
      ['udp', 'dtls', 'dtls.test', ['foo'], 'DTLS 1.2'],
      ['udp', 'dtls', null, [], 'DTLS 1.2'],
    ]);
    const r = spawnSync('tshark', ['-r', FIXTURE, '-Y', 'dtls.handshake.type == 1', '-T', 'fields', '-e', 'udp.srcport', '-e', 'dtls.handshake.ja3'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const byPort = new Map(r.stdout.trim().split('\n').map((l) => l.split('\t') as [string, string]).map(([p, h]) => [Number(p), h]));
    for (const f of flows) expect(f.tls!.ja3Hash).toBe(byPort.get(f.src.port));
    expect(flows[0]!.tls!.cipher).toBe('TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384');
    expect(flows.map((f) => f.tls!.ja4?.slice(0, 4))).toEqual(['dd2d', 'dd2i']);
  });

  it('reads a ClientHello cut into fragments that come out of order, over two datagrams, as the whole one', () => {
    const first = datagrams().find((d) => looksLikeDtlsClientHello(d.payload))!;
    const whole = new DtlsHandshake();
    whole.push(first.payload);
    const ch = whole.clientHello()!;
    expect(ch.sni).toBe('dtls.test');
    // (the body: after the 13-byte record header and the 12-byte handshake header)
    const body = first.payload.subarray(25, 25 + first.payload.readUIntBE(14, 3));
    const cut = [body.subarray(0, 50), body.subarray(50, 120), body.subarray(120)];
    const frags = new DtlsHandshake();
    frags.push(records(1, body.length, [{ seq: 0, offset: 120, bytes: cut[2]! }, { seq: 0, offset: 0, bytes: cut[0]! }]));
    expect(frags.clientHello()).toBeNull();
    // (the middle one twice: a retransmission changes nothing)
    frags.push(records(1, body.length, [{ seq: 0, offset: 50, bytes: cut[1]! }, { seq: 0, offset: 50, bytes: cut[1]! }]));
    const again = frags.clientHello()!;
    expect(ja3(again)).toEqual(ja3(ch));
    expect(ja4(again, 'dtls')).toBe(ja4(ch, 'dtls'));
  });

  it('keeps the bytes fragments bring, not the lengths they declare', () => {
    // why: each of 8 empty fragments declaring a 64 KiB hello once took 128 KiB: a megabyte a flow for a datagram of
    // 109 bytes (2,000 such flows, a 368 KB capture: 1.5 GB)
    const frags = Buffer.concat(Array.from({ length: 8 }, (_, seq) => records(1, 0xffff, [{ seq, offset: 0, bytes: Buffer.alloc(0) }])));
    const before = process.memoryUsage().arrayBuffers;
    const kept = Array.from({ length: 400 }, () => {
      const h = new DtlsHandshake();
      h.push(frags);
      h.push(records(1, 0xffff, [{ seq: 1, offset: 0xff00, bytes: Buffer.alloc(0xff, 0x41) }]));
      return h;
    });
    const grown = process.memoryUsage().arrayBuffers - before;
    expect(kept.every((h) => h.clientHello() === null)).toBe(true);
    // (the 400 handshakes received 400 x 255 bytes: 100 KB; as declared, they would be 400 MB)
    expect(grown).toBeLessThan(16 * 1024 * 1024);
  });

  it('takes damaged datagrams without throwing: cut anywhere, or with a byte changed anywhere', () => {
    for (const { payload } of datagrams().slice(0, 6)) {
      for (let n = 0; n < payload.length; n += 7) {
        const h = new DtlsHandshake();
        h.push(payload.subarray(0, n));
        expect(() => [h.clientHello(), h.serverHello()]).not.toThrow();
        const flipped = Buffer.from(payload);
        flipped[n] = flipped[n]! ^ 0xff;
        const g = new DtlsHandshake();
        expect(() => { g.push(flipped); return [g.clientHello(), g.serverHello()]; }).not.toThrow();
      }
    }
  });
});
