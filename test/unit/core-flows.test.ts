// Flow table: decoding of every link type, orientation, counters, TCP reassembly (out of order, retransmit,
// gap, memory bound), dissector feeding, decrypted plaintext matching and process attribution.
import { describe, it, expect } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { parseBuffer, type PacketBlock } from '../../src/pcapng/index.js';
import { Analyzer } from '../../src/flows/analyzer.js';
import { compileFilter } from '../../src/filter/index.js';
import { decodePacket } from '../../src/flows/decode.js';
import { TcpReassembler } from '../../src/flows/reassembly.js';
import { readWithFlowIds } from '../../src/flows/load.js';
import { analyzeCapture, CaptureBuilder, fixtureClientHello, ethernet, ipPacket, nullLink, sll, sll2, tcpConversation } from './core-packet-builder.js';
import { H2_PREFACE } from '../../src/dissect/http2.js';
import { SETTINGS, addIdx, frame, indexed, litIdx } from './export-h2-frames.js';
import type { Flow } from '../../src/model/flow.js';
import dnsPacket from 'dns-packet';

const FIX = join(import.meta.dirname, '../fixtures/pcapng');
const mixFile = join(FIX, 'loopback-mix.pcapng');
const mix = readFileSync(mixFile);

function analyze(buf: Buffer, node?: string): { a: Analyzer; flows: Flow[] } {
  const a = analyzeCapture(buf, { node });
  return { a, flows: a.flows() };
}


describe('flows from a real loopback capture (curl, gnutls-cli, python http.server)', () => {
  const { flows } = analyze(mix);

  it('finds each connection once, oriented client → server, with counters matching tshark', () => {
    expect(flows.map((f) => `${f.app} ${f.dst.port}`).sort()).toEqual(['http 18080', 'http 18080', 'tls 18443', 'tls 18443']);
    const conv = spawnSync('tshark', ['-r', mixFile, '-q', '-z', 'conv,tcp'], { encoding: 'utf8' }).stdout;
    for (const f of flows) {
      expect(f.src.port).toBeGreaterThan(30000);
      const line = conv.split('\n').find((l) => l.includes(`:${f.src.port} `));
      expect(line, `conv line for ${f.src.port}`).toBeTruthy();
      const nums = line!.trim().split(/\s+/).filter((x) => /^\d+$/.test(x)).map(Number);
      // columns: frames<- bytes<- frames-> bytes-> frames bytes ...
      expect(f.packets).toBe(nums[4]);
      expect(f.bytes).toBe(nums[5]);
    }
  });

  it('computes JA3 exactly as tshark does, and SNI, version, cipher', () => {
    const r = spawnSync('tshark', ['-r', mixFile, '-Y', 'tls.handshake.type==1', '-T', 'fields', '-e', 'tcp.srcport', '-e', 'tls.handshake.ja3', '-e', 'tls.handshake.ja3_full', '-e', 'tls.handshake.extensions_server_name'], { encoding: 'utf8' });
    const rows = r.stdout.trim().split('\n').map((l) => l.split('\t'));
    expect(rows).toHaveLength(2);
    for (const [port, hash, full, sni] of rows) {
      const f = flows.find((x) => x.src.port === Number(port))!;
      expect(f.tls?.ja3Hash).toBe(hash);
      expect(f.tls?.ja3).toBe(full);
      expect(f.tls?.sni).toBe(sni);
      expect(f.tls?.version).toBe('TLS 1.3');
      expect(f.tls?.ja4).toMatch(/^t13d\d{4}(h2|00)_[0-9a-f]{12}_[0-9a-f]{12}$/);
      expect(f.tls?.client?.via).toBe('fingerprint');
      expect(f.tls?.server?.library).toBe('unknown');
    }
  });

  it('lists plain HTTP exchanges with status', () => {
    const http = flows.filter((f) => f.app === 'http').flatMap((f) => f.http).map((h) => `${h.method} ${h.path} ${h.status}`).sort();
    expect(http).toEqual(['GET / 200', 'GET /nonexist 404']);
  });
});

describe('packet decoding', () => {
  const seg = { src: '10.202.0.1', dst: '10.202.0.2', sport: 40000, dport: 443, seq: 7, flags: 0x18, payload: Buffer.from('hi') };
  const seg6 = { ...seg, src: 'fd00:202::1', dst: 'fd00:202::2' };

  it('decodes Ethernet, VLAN, SLL, SLL2, RAW and NULL framing for IPv4 and IPv6', () => {
    for (const s of [seg, seg6]) {
      const ip = ipPacket('tcp', s);
      const frames: [number, Buffer][] = [[1, ethernet(ip)], [1, ethernet(ip, 42)], [113, sll(ip)], [276, sll2(ip)], [101, ip], [0, nullLink(ip)], [s === seg ? 228 : 229, ip]];
      for (const [lt, frame] of frames) {
        const d = decodePacket(lt, frame);
        expect(d, `linktype ${lt}`).toMatchObject({ src: s.src, dst: s.dst, srcPort: 40000, dstPort: 443, seq: 7, proto: 6 });
        expect(d!.payload.toString()).toBe('hi');
      }
    }
  });

  it('trims Ethernet padding using the IP length and skips IPv6 extension headers', () => {
    const padded = Buffer.concat([ethernet(ipPacket('udp', { ...seg, payload: Buffer.from('x') })), Buffer.alloc(20)]);
    expect(decodePacket(1, padded)!.payload.toString()).toBe('x');
    const ip6 = ipPacket('udp', { ...seg6, payload: Buffer.from('yy') });
    // insert a hop-by-hop header (8 bytes) before UDP
    const hbh = Buffer.from([17, 0, 1, 4, 0, 0, 0, 0]);
    const withExt = Buffer.concat([ip6.subarray(0, 40), hbh, ip6.subarray(40)]);
    withExt[6] = 0;
    withExt.writeUInt16BE(ip6.readUInt16BE(4) + 8, 4);
    expect(decodePacket(101, withExt)).toMatchObject({ proto: 17, srcPort: 40000, dstPort: 443 });
    expect(decodePacket(101, withExt)!.payload.toString()).toBe('yy');
  });

  it('counts IPv4 fragments without reassembling them, and ignores non-IP frames', () => {
    const first = ipPacket('udp', { ...seg, payload: Buffer.alloc(100) });
    first.writeUInt16BE(0x2000, 6); // MF
    const second = ipPacket('udp', { ...seg, payload: Buffer.alloc(40) });
    second.writeUInt16BE(0x000d, 6); // offset 13*8
    const arp = Buffer.alloc(42);
    arp.writeUInt16BE(0x0806, 12);
    const b = new CaptureBuilder();
    b.packet(ethernet(first)).packet(ethernet(second)).packet(arp);
    const { a, flows } = analyze(b.build());
    expect(a.counters).toMatchObject({ packets: 3, fragments: 2, nonIp: 1 });
    expect(flows).toHaveLength(1);
  });
});

describe('flow table', () => {
  const C = { ip: '10.202.1.1', port: 51000 };
  const S = { ip: '10.202.1.2', port: 8080 };

  it('orients by SYN, else the lower port is the server; IPv6 and UDP too', () => {
    const b = new CaptureBuilder();
    // mid-stream capture: the first packet seen goes server → client
    b.tcp({ src: S.ip, dst: C.ip, sport: S.port, dport: C.port, seq: 1, payload: Buffer.from('data') });
    b.tcp({ src: C.ip, dst: S.ip, sport: C.port, dport: S.port, seq: 1, payload: Buffer.from('more') });
    // SYN from the higher port to a lower port: the SYN decides
    b.tcp({ src: 'fd00:202::5', dst: 'fd00:202::6', sport: 80, dport: 60000, seq: 9, flags: 0x02 });
    b.udp({ src: '10.202.1.3', dst: '10.202.1.4', sport: 5353, dport: 53, payload: Buffer.from('zz') });
    const { flows } = analyze(b.build(), 'node-a');
    expect(flows.map((f) => [f.transport, `${f.src.ip}:${f.src.port}`, `${f.dst.ip}:${f.dst.port}`, f.packets, f.node])).toEqual([
      ['tcp', '10.202.1.1:51000', '10.202.1.2:8080', 2, 'node-a'],
      ['tcp', 'fd00:202::5:80', 'fd00:202::6:60000', 1, 'node-a'],
      ['udp', '10.202.1.3:5353', '10.202.1.4:53', 1, 'node-a'],
    ]);
    expect(flows[0]!.bytes).toBe(2 * (14 + 20 + 20 + 4));
  });

  it('starts a new flow when a closed connection\'s port is reused', () => {
    const b = new CaptureBuilder();
    tcpConversation(b, C, S, [Buffer.from('GET /a HTTP/1.1\r\nHost: x\r\n\r\n')], [Buffer.from('HTTP/1.1 204 No Content\r\n\r\n')]);
    tcpConversation(b, C, S, [Buffer.from('GET /b HTTP/1.1\r\nHost: x\r\n\r\n')], [Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n')], { isnC: 90000 });
    const { flows } = analyze(b.build());
    expect(flows.map((f) => f.http.map((h) => `${h.path} ${h.status}`))).toEqual([['/a 204'], ['/b 200']]);
    expect(new Set(flows.map((f) => f.id)).size).toBe(2);
  });

  it('reassembles a ClientHello split across out-of-order and retransmitted segments', () => {
    const ch = fixtureClientHello();
    const parts = [ch.subarray(0, 100), ch.subarray(100, 250), ch.subarray(250)];
    const b = new CaptureBuilder();
    const base = { src: C.ip, dst: '10.202.1.9', sport: C.port, dport: 443 };
    b.tcp({ ...base, seq: 999, flags: 0x02 });
    b.tcp({ ...base, seq: 1000 + 250, payload: parts[2] }); // third first
    b.tcp({ ...base, seq: 1000, payload: parts[0] });
    b.tcp({ ...base, seq: 1000, payload: parts[0] }); // retransmit
    b.tcp({ ...base, seq: 1000 + 50, payload: ch.subarray(50, 250) }); // overlapping retransmit
    const { a, flows } = analyze(b.build());
    expect(flows[0]!.tls?.sni).toBe('localhost');
    expect(flows[0]!.app).toBe('tls');
    expect(a.counters.retransmittedBytes).toBe(100 + 50);
  });

  it('marks a gap after the buffer limit and keeps parsing HTTP after it', () => {
    const b = new CaptureBuilder();
    const base = { src: C.ip, dst: S.ip, sport: C.port, dport: S.port };
    const req1 = Buffer.from('GET /one HTTP/1.1\r\nHost: h\r\n\r\n');
    b.tcp({ ...base, seq: 0, flags: 0x02 });
    b.tcp({ ...base, seq: 1, payload: req1 });
    // a hole of 1000 bytes, then 300 KiB of later data in 10 KiB segments (more than the 256 KiB bound)
    let seq = 1 + req1.length + 1000;
    const filler = Buffer.alloc(10 * 1024, 0x61);
    for (let i = 0; i < 30; i++) { b.tcp({ ...base, seq, payload: filler }); seq += filler.length; }
    const req2 = Buffer.from('GET /two HTTP/1.1\r\nHost: h\r\n\r\n');
    b.tcp({ ...base, seq, payload: req2 });
    const { a, flows } = analyze(b.build());
    expect(a.counters.gaps).toBe(1);
    expect(flows[0]!.http.map((h) => h.path)).toEqual(['/one', '/two']);
    expect(a.bufferedBytes()).toBe(0);
  });

  it('bounds memory per flow: buffered out-of-order bytes never exceed the limit', () => {
    const gaps: number[] = [];
    let maxBuffered = 0;
    const r = new TcpReassembler({ data: () => undefined, gap: (n) => gaps.push(n) }, { maxBuffered: 64 * 1024, maxSegments: 1000 });
    r.syn(0);
    for (let i = 0; i < 500; i++) {
      // every segment leaves a 10-byte hole before it
      r.segment(1 + 10 + i * 1010, Buffer.alloc(1000), i);
      maxBuffered = Math.max(maxBuffered, r.buffered);
    }
    expect(maxBuffered).toBeLessThanOrEqual(64 * 1024 + 1000);
    expect(gaps.length).toBeGreaterThan(0);
    expect(r.gaps).toBe(gaps.length);
  });

  it('handles sequence number wrap-around', () => {
    const out: string[] = [];
    const r = new TcpReassembler({ data: (c) => out.push(c.toString()), gap: () => out.push('<gap>') });
    r.syn(0xfffffffd);
    r.segment(0x00000002, Buffer.from('CD'), 0);
    r.segment(0xfffffffe, Buffer.from('AB12'), 0);
    expect(out.join('')).toBe('AB12CD');
  });

  it('bounds what a long keep-alive HTTP connection keeps: 1000 summaries, 200 detailed exchanges, the rest counted', () => {
    const n = 1500;
    const reqs = Array.from({ length: n }, (_, i) => Buffer.from(`GET /r${i} HTTP/1.1\r\nHost: k\r\n\r\n`));
    const resps = Array.from({ length: n }, (_, i) => Buffer.from(`HTTP/1.1 ${i % 2 ? 204 : 200} OK\r\nContent-Length: 0\r\n\r\n`));
    const b = new CaptureBuilder();
    tcpConversation(b, C, S, reqs, resps);
    const { a, flows } = analyze(b.build());
    const f = flows[0]!;
    expect(f.http).toHaveLength(1000);
    expect(f.httpOmitted).toBe(500);
    expect(f.http.every((h, i) => h.path === `/r${i}` && h.status === (i % 2 ? 204 : 200))).toBe(true);
    expect(a.detail(f.id)!.exchanges).toHaveLength(200);
  });

  it('stops dissecting a non-HTTP stream early (memory independent of payload)', () => {
    const b = new CaptureBuilder();
    const big = Buffer.alloc(8192, 0x07);
    const chunks = Array.from({ length: 40 }, () => big);
    tcpConversation(b, C, { ip: S.ip, port: 9999 }, chunks, []);
    const { a, flows } = analyze(b.build());
    expect(flows[0]!.app).toBe('unknown');
    expect(flows[0]!.bytes).toBeGreaterThan(40 * 8192);
    expect(a.bufferedBytes()).toBe(0);
  });
});

describe('plain-text protocols from the wire', () => {
  it('follows a recorded h2c connection (HPACK, CONTINUATION, gRPC) split into segments', () => {
    const golden = JSON.parse(readFileSync(join(import.meta.dirname, '../fixtures/dissect/h2c.json'), 'utf8')) as { client: string; server: string };
    const seg = (hex: string): Buffer[] => {
      const b = Buffer.from(hex, 'hex');
      const out: Buffer[] = [];
      for (let i = 0; i < b.length; i += 1400) out.push(b.subarray(i, i + 1400));
      return out;
    };
    const b = new CaptureBuilder();
    tcpConversation(b, { ip: '10.202.3.1', port: 45000 }, { ip: '10.202.3.2', port: 8080 }, seg(golden.client), seg(golden.server));
    const { a, flows } = analyze(b.build());
    expect(flows).toHaveLength(1);
    expect(flows[0]!.app).toBe('grpc');
    expect(flows[0]!.http.map((h) => `${h.method} ${h.path} ${h.status}`)).toEqual([
      'GET /one 200', 'GET /two 200', 'GET /big 200', 'POST /echo 201', 'POST /helloworld.Greeter/SayHello 200',
    ]);
    const d = a.detail(flows[0]!.id)!;
    expect(d.exchanges.find((e) => e.path === '/echo')?.requestBody).toBe('posted body');
  });

  it('decodes DNS questions and answers over UDP', () => {
    const q = dnsPacket.encode({ type: 'query', id: 77, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name: 'api.tapscope.test' }] });
    const r = dnsPacket.encode({ type: 'response', id: 77, questions: [{ type: 'A', name: 'api.tapscope.test' }], answers: [{ type: 'A', name: 'api.tapscope.test', data: '10.202.3.9' }] });
    const b = new CaptureBuilder();
    b.udp({ src: '10.202.3.1', dst: '10.202.3.53', sport: 40404, dport: 53, payload: q });
    b.udp({ src: '10.202.3.53', dst: '10.202.3.1', sport: 53, dport: 40404, payload: r });
    const { flows } = analyze(b.build());
    expect(flows).toHaveLength(1);
    expect(flows[0]!.app).toBe('dns');
    expect(flows[0]!.dns).toEqual([{ id: 77, query: 'api.tapscope.test', type: 'A', rcode: 'NOERROR', answers: ['A 10.202.3.9'] }]);
  });
});

describe('QUIC Initials in UDP flows', () => {
  const DFIX = join(import.meta.dirname, '../fixtures/dissect');
  const rfc = Buffer.from(readFileSync(join(DFIX, 'rfc9001-a2-client-initial.hex'), 'utf8').trim(), 'hex');
  const chromium = (JSON.parse(readFileSync(join(DFIX, 'clienthellos.json'), 'utf8')) as {
    hellos: { transport: string; datagramsHex?: string[]; sni: string; expected: { ja4: string; ja3: string } }[];
  }).hellos.find((h) => h.transport === 'quic')!;
  const c = '10.202.5.1';
  const s = '10.202.5.2';

  it('decrypts the client Initial (RFC 9001 A.2) into SNI, ALPN and a q-prefixed JA4, on port 443 and elsewhere', () => {
    const b = new CaptureBuilder();
    b.udp({ src: c, dst: s, sport: 50000, dport: 443, payload: rfc });
    b.udp({ src: s, dst: c, sport: 443, dport: 50000, payload: Buffer.from([0xc0, 0, 0, 0, 1, 0]) });
    b.udp({ src: c, dst: s, sport: 50001, dport: 4433, payload: rfc });
    b.udp({ src: c, dst: s, sport: 50002, dport: 443, payload: Buffer.from('not quic, just a datagram to 443') });
    b.udp({ src: c, dst: s, sport: 50003, dport: 9999, payload: Buffer.from('something else') });
    const { flows } = analyze(b.build());
    const by = (p: number) => flows.find((f) => f.src.port === p)!;
    for (const p of [50000, 50001]) {
      const f = by(p);
      expect(f.app, String(p)).toBe('quic');
      expect(f.tls).toMatchObject({ sni: 'example.com', alpn: ['alpn'] });
      expect(f.tls!.ja4!.slice(0, 10)).toBe('q13d0211an');
      expect(f.tls!.client).toMatchObject({ plaintext: false });
      expect(f.tls!.server).not.toBeNull();
    }
    expect(by(50000).packets).toBe(2);
    for (const p of [50002, 50003]) {
      expect(by(p).app).toBe('unknown');
      expect(by(p).tls).toBeNull();
    }
  });

  it('takes the sender of a client Initial, or of a DTLS ClientHello, as the client whatever the ports (as tshark reads them)', () => {
    const dtlsHello = (() => {
      for (const blk of parseBuffer(readFileSync(join(import.meta.dirname, '../fixtures/pcapng/dtls-loopback.pcap')))) {
        if (blk.type !== 'epb') continue;
        const d = decodePacket(blk.iface.linkType, blk.data);
        if (d && d.payload.length > 13 && d.payload[0] === 22 && d.payload[13] === 1) return Buffer.from(d.payload);
      }
      throw new Error('no DTLS ClientHello in the fixture');
    })();
    const b = new CaptureBuilder();
    // (servers on ports above their clients': 47300 against an ephemeral 34703, as a real capture had it)
    b.udp({ src: c, dst: s, sport: 34703, dport: 47300, payload: rfc });
    b.udp({ src: c, dst: s, sport: 34704, dport: 47301, payload: dtlsHello });
    const { flows } = analyze(b.build());
    expect(flows.map((f) => [f.src.port, f.dst.port, f.app, f.tls?.ja4?.slice(0, 1) ?? null])).toEqual([[34703, 47300, 'quic', 'q'], [34704, 47301, 'dtls', 'd']]);
  });

  it('assembles a ClientHello spread over two Initials (Chromium) with tshark\'s JA3 and JA4', () => {
    const b = new CaptureBuilder();
    for (const hex of chromium.datagramsHex!) b.udp({ src: c, dst: s, sport: 51000, dport: 443, payload: Buffer.from(hex, 'hex') });
    const { flows } = analyze(b.build());
    expect(flows).toHaveLength(1);
    expect(flows[0]!.app).toBe('quic');
    expect(flows[0]!.tls).toMatchObject({ sni: chromium.sni, ja4: chromium.expected.ja4, ja3Hash: chromium.expected.ja3 });
  });

  it('is found by the filter language as app == "quic"', () => {
    const b = new CaptureBuilder();
    b.udp({ src: c, dst: s, sport: 50000, dport: 443, payload: rfc });
    const { flows } = analyze(b.build());
    expect(flows.filter(compileFilter('app == "quic" && tls.sni == "example.com"'))).toHaveLength(1);
  });
});

describe('HTTP/2 answers whose END_STREAM the close cut off', () => {
  const client = { ip: '10.202.3.1', port: 43211 };
  const server = { ip: '10.202.3.2', port: 443 };
  // (Node's server sends its answer's END_STREAM in a DATA frame of its own; a client that has the body it was told of
  // may close before it comes, as curl did in a real capture)
  const request = Buffer.concat([H2_PREFACE, SETTINGS, frame(1, 0x5, 1, Buffer.concat([indexed(2), indexed(4), indexed(7), addIdx(1, 'api.test')]))]);
  const answer = Buffer.concat([SETTINGS, frame(1, 0x4, 1, Buffer.concat([indexed(8), litIdx(28, '5')])), frame(0, 0, 1, Buffer.from('hello'))]);

  function capture(close: 'fin' | 'client-rst' | 'open'): Buffer {
    const b = new CaptureBuilder();
    tcpConversation(b, client, server, [fixtureClientHello()], [Buffer.from([0x16, 0x03, 0x03, 0x00, 0x01, 0x00])], {
      fin: close === 'fin',
      afterTurn: () => {
        b.tls(client, server, 'out', request, { pid: 100, comm: 'curl', lib: 'openssl', proto: 'http2' });
        b.tls(server, client, 'in', answer, { pid: 100, comm: 'curl', lib: 'openssl', proto: 'http2' });
      },
    });
    if (close === 'client-rst') b.tcp({ src: client.ip, dst: server.ip, sport: client.port, dport: server.port, seq: 2000, flags: 0x04 });
    return b.build();
  }

  it('has its status once the connection closed (FIN, or the client\'s reset), and waits while it is open', () => {
    for (const close of ['fin', 'client-rst'] as const) {
      const { a, flows } = analyze(capture(close));
      expect(flows[0]!.http, close).toEqual([{ method: 'GET', host: 'api.test', path: '/', status: 200 }]);
      expect(a.detail(flows[0]!.id)!.exchanges[0], close).toMatchObject({ source: 'decrypted', responseBody: 'hello' });
    }
    expect(analyze(capture('open')).flows[0]!.http).toEqual([{ method: 'GET', host: 'api.test', path: '/', status: null }]);
  });

  it('the same in plain text (h2c): the server\'s FIN ends its answer', () => {
    for (const fin of [true, false]) {
      const b = new CaptureBuilder();
      tcpConversation(b, client, { ...server, port: 80 }, [request], [answer], { fin });
      expect(analyze(b.build()).flows[0]!.http, `fin: ${fin}`).toEqual([{ method: 'GET', host: 'api.test', path: '/', status: fin ? 200 : null }]);
    }
  });

  it('the same in plain text (h2c): the client\'s reset ends the server\'s answer too', () => {
    const b = new CaptureBuilder();
    const h2c = { ...server, port: 80 };
    tcpConversation(b, client, h2c, [request], [answer], { fin: false });
    b.tcp({ src: client.ip, dst: h2c.ip, sport: client.port, dport: h2c.port, seq: 5000, flags: 0x04 });
    expect(analyze(b.build()).flows[0]!.http).toEqual([{ method: 'GET', host: 'api.test', path: '/', status: 200 }]);
  });
});

describe('decrypted plaintext and process attribution', () => {
  const client = { ip: '10.202.2.1', port: 43210 };
  const server = { ip: '10.202.2.2', port: 443 };

  function capture(opts: { hookClient: boolean; mode: 'ebpf' | 'afpacket'; javaServer?: boolean }): Buffer {
    const ch = fixtureClientHello();
    const b = new CaptureBuilder();
    b.record({ t: 'capture', v: 1, mode: opts.mode, requestedMode: 'auto', reason: opts.mode === 'ebpf' ? 'auto: BTF, ringbuf and uprobes available' : 'uprobes unavailable', hostname: 'node-1' });
    b.record({ t: 'proc', pid: 100, ppid: 1, comm: 'curl', exe: '/usr/bin/curl', startedBeforeCapture: false,
      tls: { library: 'openssl', via: 'maps', evidence: '/usr/lib/x86_64-linux-gnu/libssl.so.3', version: '3.0' },
      hooks: [{ library: 'openssl', path: '/usr/lib/x86_64-linux-gnu/libssl.so.3', status: opts.mode === 'ebpf' ? 'attached' : 'failed', reason: null }] });
    b.record({ t: 'conn', proto: 'tcp', local: client, remote: server, role: 'client', pid: 100, tid: 100, comm: 'curl', via: 'tracepoint' });
    if (opts.javaServer) {
      b.record({ t: 'proc', pid: 200, comm: 'java', exe: '/usr/lib/jvm/bin/java', tls: { library: 'java-jsse', via: 'binary', evidence: 'libjava.so' }, hooks: [] });
      b.record({ t: 'conn', proto: 'tcp', local: server, remote: client, role: 'server', pid: 200, comm: 'java' });
    }
    const req = Buffer.from('GET /secret HTTP/1.1\r\nHost: api.tapscope.test\r\nAuthorization: Bearer abc\r\n\r\n');
    const res = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello');
    if (opts.hookClient) b.tls(client, server, 'out', req, { pid: 100, comm: 'curl', lib: 'openssl' });
    tcpConversation(b, client, server, [ch], [Buffer.from([0x16, 0x03, 0x03, 0x00, 0x01, 0x00])]);
    if (opts.hookClient) b.tls(server, client, 'in', res, { pid: 100, comm: 'curl', lib: 'openssl' });
    return b.build();
  }

  it('matches hook records to the flow, marks the client side plaintext and lists the decrypted requests', () => {
    const { a, flows } = analyze(capture({ hookClient: true, mode: 'ebpf' }));
    expect(flows).toHaveLength(1);
    const f = flows[0]!;
    expect(f.node).toBe('node-1');
    expect(f.process).toMatchObject({ pid: 100, comm: 'curl', exe: '/usr/bin/curl' });
    expect(f.tls?.client).toMatchObject({ library: 'openssl', via: 'hook', plaintext: true, reason: null });
    expect(f.tls?.server?.plaintext).toBe(false);
    expect(f.http).toEqual([{ method: 'GET', host: 'api.tapscope.test', path: '/secret', status: 200 }]);
    const d = a.detail(f.id)!;
    expect(d.exchanges[0]).toMatchObject({ source: 'decrypted', responseBody: 'hello' });
    expect(d.clientBytesHex.startsWith('1603')).toBe(true);
  });

  it('says a client process that exited before it was read was not looked at, instead of "no TLS library found"', () => {
    const ch = fixtureClientHello();
    const verdictOf = (alive: boolean | undefined): string | null => {
      const b = new CaptureBuilder();
      b.record({ t: 'capture', v: 1, mode: 'ebpf', requestedMode: 'auto', reason: 'auto: BTF, ringbuf and uprobes available', hostname: 'node-1' });
      // what the helper writes for a short-lived client it saw connect but could not read in /proc
      b.record({ t: 'proc', pid: 400, ppid: 1, comm: 'go-client', exe: null, cmdline: null, cgroup: null, startedBeforeCapture: false, ...(alive === undefined ? {} : { alive }), tls: null, hooks: [] });
      b.record({ t: 'conn', proto: 'tcp', local: client, remote: server, role: 'client', pid: 400, tid: 400, comm: 'go-client', via: 'tracepoint' });
      tcpConversation(b, client, server, [ch], [Buffer.from([0x16, 0x03, 0x03, 0x00, 0x01, 0x00])]);
      const { flows } = analyze(b.build());
      expect(flows[0]?.process).toMatchObject({ pid: 400, comm: 'go-client' });
      return flows[0]?.tls?.client?.reason ?? null;
    };
    expect(verdictOf(false)).toMatch(/^the client process had exited before its binary and libraries could be read/);
    // the helper read its executable, command line and cgroup at its exec (ebpf mode)
    const b = new CaptureBuilder();
    b.record({ t: 'capture', v: 1, mode: 'ebpf', requestedMode: 'auto', reason: 'auto: BTF, ringbuf and uprobes available', hostname: 'node-1' });
    b.record({ t: 'proc', pid: 401, ppid: 1, comm: 'python3', exe: '/usr/bin/python3.11', cmdline: 'python3 probe.py', cgroup: '/kubepods/pod1/cri-containerd-' + 'ab'.repeat(32),
      containerId: 'ab'.repeat(32), startedBeforeCapture: false, alive: false, readAt: 'exec', tls: null, hooks: [] });
    b.record({ t: 'conn', proto: 'tcp', local: client, remote: server, role: 'client', pid: 401, tid: 401, comm: 'python3', via: 'tracepoint' });
    tcpConversation(b, client, server, [ch], [Buffer.from([0x16, 0x03, 0x03, 0x00, 0x01, 0x00])]);
    const f = analyze(b.build()).flows[0];
    expect(f?.process).toMatchObject({ pid: 401, exe: '/usr/bin/python3.11', containerId: 'ab'.repeat(32) });
    expect(f?.tls?.client?.reason).toMatch(/^the client process had exited before its mapped libraries could be read, and its executable \(\/usr\/bin\/python3\.11\) has no TLS of its own/);
    // a process that was read (or a file written before the field existed) and has no TLS library
    expect(verdictOf(true)).toMatch(/^no TLS library found in the client process/);
    expect(verdictOf(undefined)).toMatch(/^no TLS library found in the client process/);
  });

  it('says a hook that attached after the ClientHello came too late, from the attach time the helper records', () => {
    const ch = fixtureClientHello();
    const reasonWith = (attachMs: number | null, mode: 'ebpf' | 'afpacket' = 'ebpf'): string | null => {
      const b = new CaptureBuilder();
      const t0 = b.ts;
      b.record({ t: 'capture', v: 1, mode, requestedMode: mode, reason: `${mode}: requested`, hostname: 'node-1' });
      // written when the process connected, before it loaded its TLS library
      b.record({ t: 'proc', pid: 500, ppid: 1, comm: 'python3', exe: '/usr/bin/python3', startedBeforeCapture: false, alive: true, tls: null, hooks: [] });
      b.record({ t: 'conn', proto: 'tcp', local: client, remote: server, role: 'client', pid: 500, tid: 500, comm: 'python3', via: 'tracepoint' });
      // written again when it opened a private libssl, which the helper then hooked (attach time in ns)
      b.record({ t: 'proc', pid: 500, ppid: 1, comm: 'python3', exe: '/usr/bin/python3', startedBeforeCapture: false, alive: true,
        tls: { library: 'openssl', via: 'open', evidence: '/opt/app/libssl.so.3', version: '3' },
        hooks: [{ library: 'openssl', path: '/opt/app/libssl.so.3', status: 'attached', reason: null, ...(attachMs === null ? {} : { tsNs: (t0 + attachMs) * 1e6 }) }] });
      // SYN at t0+1 ms, SYN-ACK +2, ACK +3, the ClientHello +4
      tcpConversation(b, client, server, [ch], [Buffer.from([0x16, 0x03, 0x03, 0x00, 0x01, 0x00])]);
      return analyze(b.build()).flows[0]?.tls?.client?.reason ?? null;
    };
    expect(reasonWith(60)).toMatch(/^the openssl hook \(\/opt\/app\/libssl\.so\.3\) attached 56 ms after this connection's TLS handshake began/);
    // after the SYN but before the hello: in time for every TLS call (the connection's start is not the measure)
    expect(reasonWith(3.5)).toMatch(/^openssl hook attached but saw no reads or writes/);
    expect(reasonWith(null)).toMatch(/^openssl hook attached but saw no reads or writes/);
    expect(reasonWith(60, 'afpacket')).toMatch(/^capture ran in afpacket mode/);
  });

  it('says when the process\'s hooks read plaintext they could not tie to a connection (memory BIO), in every partition', () => {
    const ch = fixtureClientHello();
    const other = { ip: '10.0.0.9', port: 40100 };
    const build = (unplaced: boolean): Buffer => {
      const b = new CaptureBuilder();
      b.record({ t: 'capture', v: 1, mode: 'ebpf', requestedMode: 'auto', reason: 'auto: BTF, ringbuf and uprobes available', hostname: 'node-1' });
      b.record({ t: 'proc', pid: 600, ppid: 1, comm: 'python3', exe: '/usr/bin/python3', startedBeforeCapture: true, alive: true,
        tls: { library: 'openssl', via: 'maps', evidence: '/usr/lib/x86_64-linux-gnu/libssl.so.3', version: '3' },
        hooks: [{ library: 'openssl', path: '/usr/lib/x86_64-linux-gnu/libssl.so.3', status: 'attached', reason: null }] });
      for (const c of [client, other]) b.record({ t: 'conn', proto: 'tcp', local: c, remote: server, role: 'client', pid: 600, tid: 600, comm: 'python3', via: 'tracepoint' });
      tcpConversation(b, client, server, [ch], [Buffer.from([0x16, 0x03, 0x03, 0x00, 0x01, 0x00])]);
      tcpConversation(b, other, server, [ch], [Buffer.from([0x16, 0x03, 0x03, 0x00, 0x01, 0x00])]);
      if (unplaced) b.tls(null, null, 'in', Buffer.from('HTTP/1.1 200 OK\r\n\r\n'), { pid: 600, comm: 'python3', lib: 'openssl' });
      return b.build();
    };
    const reasons = (buf: Buffer): (string | null | undefined)[] => analyze(buf).flows.map((f) => f.tls?.client?.reason);
    expect(reasons(build(false))).toEqual(Array(2).fill(expect.stringMatching(/^process started before capture and the hook saw no reads or writes/)));
    expect(reasons(build(true))).toEqual(Array(2).fill(expect.stringMatching(/^openssl hook read plaintext in this process that it could not tie to a connection \(a read or write through a memory BIO/)));
    // live: the flows read before the record are read again after it
    const live = new Analyzer();
    const feed = live.stream('node-1');
    const blocks = parseBuffer(build(true));
    for (const blk of blocks.slice(0, -1)) feed(blk);
    expect(live.flows()[0]!.tls?.client?.reason).toMatch(/^process started before capture/);
    feed(blocks.at(-1)!);
    expect(live.flows()[0]!.tls?.client?.reason).toMatch(/could not tie to a connection/);
    // each partition of a threaded analysis sees the record (it has no addresses to partition it by)
    for (let index = 0; index < 2; index++) {
      const a = new Analyzer({ partition: { index, count: 2 } });
      const feed = a.stream('node-1');
      for (const blk of parseBuffer(build(true))) feed(blk);
      for (const f of a.flows()) expect(f.tls?.client?.reason, `partition ${index}`).toMatch(/could not tie to a connection/);
    }
  });

  it("names the owning process's pod by its container id before the addresses (host-network pods share the node's IP)", () => {
    const b = new CaptureBuilder();
    b.record({ t: 'capture', v: 1, mode: 'ebpf', requestedMode: 'auto', reason: 'auto', hostname: 'node-1' });
    b.record({ t: 'proc', pid: 300, comm: 'agent', exe: '/agent', containerId: 'c0ffee'.repeat(10) + 'beef', hooks: [] });
    b.record({ t: 'conn', proto: 'tcp', local: client, remote: server, role: 'client', pid: 300, tid: 300, comm: 'agent', via: 'tracepoint' });
    tcpConversation(b, client, server, [Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')], [Buffer.from('HTTP/1.1 204 No Content\r\n\r\n')]);
    const pods: Record<string, { namespace: string; name: string }> = {
      [`container:${'c0ffee'.repeat(10)}beef`]: { namespace: 'monitoring', name: 'node-agent-x7' },
      [server.ip]: { namespace: 'shop', name: 'web-1' },
    };
    const flowWith = (lookup: (key: string) => { namespace: string; name: string } | null): Flow | undefined => {
      const a = new Analyzer();
      a.podLookup = lookup;
      const feed = a.stream();
      for (const blk of parseBuffer(b.build())) feed(blk);
      return a.flows()[0];
    };
    const f = flowWith((key) => pods[key] ?? null);
    expect(f?.process).toMatchObject({ pid: 300, containerId: `${'c0ffee'.repeat(10)}beef` });
    expect(f?.pod).toEqual({ namespace: 'monitoring', name: 'node-agent-x7' });
    expect(flowWith((key) => (key.startsWith('container:') ? null : pods[key] ?? null))?.pod).toEqual({ namespace: 'shop', name: 'web-1' });
  });

  it('gives process verdicts with reasons when no hook fired (afpacket mode, java server)', () => {
    const { flows } = analyze(capture({ hookClient: false, mode: 'afpacket', javaServer: true }));
    const f = flows[0]!;
    expect(f.process?.comm).toBe('curl');
    expect(f.peerProcess?.comm).toBe('java');
    expect(f.tls?.client).toMatchObject({ library: 'openssl', via: 'process', plaintext: false });
    expect(f.tls?.client?.reason).toContain('afpacket');
    expect(f.tls?.server).toMatchObject({ library: 'java-jsse', via: 'process', plaintext: false });
    expect(f.tls?.server?.reason).toMatch(/java-jsse has no hook/);
  });

  it("says whose process a flow's process is: the client's, else the server's (a client gone before it was polled)", () => {
    const flowOf = (owners: { client: boolean; server: boolean }): Flow => {
      const b = new CaptureBuilder();
      b.record({ t: 'capture', v: 1, mode: 'afpacket', requestedMode: 'afpacket', reason: 'requested', hostname: 'node-1' });
      if (owners.client) b.record({ t: 'conn', proto: 'tcp', local: client, remote: server, role: 'client', pid: 100, comm: 'curl' });
      if (owners.server) b.record({ t: 'conn', proto: 'tcp', local: server, remote: client, role: 'server', pid: 200, comm: 'python3' });
      tcpConversation(b, client, server, [Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')], [Buffer.from('HTTP/1.1 204 No Content\r\n\r\n')]);
      return analyze(b.build()).flows[0]!;
    };
    const both = flowOf({ client: true, server: true });
    expect([both.process?.comm, both.processSide, both.peerProcess?.comm]).toEqual(['curl', 'client', 'python3']);
    const clientOnly = flowOf({ client: true, server: false });
    expect([clientOnly.process?.comm, clientOnly.processSide, clientOnly.peerProcess]).toEqual(['curl', 'client', null]);
    // (the server in `process`, as before, but now told apart from a client)
    const serverOnly = flowOf({ client: false, server: true });
    expect([serverOnly.process?.comm, serverOnly.processSide, serverOnly.peerProcess]).toEqual(['python3', 'server', null]);
    const none = flowOf({ client: false, server: false });
    expect([none.process, none.processSide]).toEqual([null, null]);
    const side = compileFilter('process.side == "server"');
    expect([both, clientOnly, serverOnly, none].map((f) => side(f))).toEqual([false, false, true, false]);
    expect([both, clientOnly, serverOnly, none].map((f) => compileFilter('process.side == "client"')(f))).toEqual([true, true, false, false]);
  });

  it('tells the decrypted response parser each request method: a HEAD response with Content-Length has no body', () => {
    for (const pipelined of [false, true]) {
      const b = new CaptureBuilder();
      const head = Buffer.from('HEAD /a HTTP/1.1\r\nHost: h\r\n\r\n');
      const get = Buffer.from('GET /b HTTP/1.1\r\nHost: h\r\n\r\n');
      const r1 = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n');
      const r2 = Buffer.from('HTTP/1.1 404 Not Found\r\nContent-Length: 5\r\n\r\nnope!');
      const attrs = { pid: 7, comm: 'curl', lib: 'openssl' };
      if (pipelined) {
        b.tls(client, server, 'out', Buffer.concat([head, get]), attrs);
        b.tls(server, client, 'in', Buffer.concat([r1, r2]), attrs);
      } else {
        b.tls(client, server, 'out', head, attrs);
        b.tls(server, client, 'in', r1, attrs);
        b.tls(client, server, 'out', get, attrs);
        b.tls(server, client, 'in', r2, attrs);
      }
      const { a, flows } = analyze(b.build());
      expect(flows[0]!.http, `pipelined=${pipelined}`).toEqual([
        { method: 'HEAD', host: 'h', path: '/a', status: 200 },
        { method: 'GET', host: 'h', path: '/b', status: 404 },
      ]);
      expect(a.detail(flows[0]!.id)!.exchanges[1]).toMatchObject({ source: 'decrypted', responseBody: 'nope!' });
    }
  });

  it('completes a decrypted HTTP/1.0 response that runs to the connection\'s close (no length) at the server\'s FIN', () => {
    const b = new CaptureBuilder();
    const attrs = { pid: 7, comm: 'openssl', lib: 'openssl' };
    tcpConversation(b, client, server, [fixtureClientHello(), Buffer.alloc(64, 0x17)], [Buffer.from([0x16, 0x03, 0x03, 0x00, 0x01, 0x02]), Buffer.alloc(900, 0x17)], { fin: false });
    b.tls(client, server, 'out', Buffer.from('GET /page HTTP/1.0\r\nHost: old\r\n\r\n'), attrs);
    b.tls(server, client, 'in', Buffer.from('HTTP/1.0 200 ok\r\nContent-type: text/html\r\n\r\n<html>'), attrs);
    b.tls(server, client, 'in', Buffer.from('...</html>'), attrs);
    const before = analyze(b.build());
    // (no close yet: the body may go on)
    expect(before.flows[0]!.http).toEqual([{ method: 'GET', host: 'old', path: '/page', status: null }]);
    b.tcp({ src: server.ip, dst: client.ip, sport: server.port, dport: client.port, seq: 5001 + 6 + 900, ack: 1001 + fixtureClientHello().length + 64, flags: 0x11 });
    const { a, flows } = analyze(b.build());
    expect(flows[0]!.http).toEqual([{ method: 'GET', host: 'old', path: '/page', status: 200 }]);
    expect(a.detail(flows[0]!.id)!.exchanges[0]).toMatchObject({ source: 'decrypted', responseBody: '<html>...</html>' });
  });

  it('creates the flow from a hook record that arrives before any packet', () => {
    const b = new CaptureBuilder();
    b.tls(client, server, 'out', Buffer.from('GET / HTTP/1.1\r\nHost: early\r\n\r\n'), { pid: 7, comm: 'python3', lib: 'openssl' });
    const { flows } = analyze(b.build());
    expect(flows).toHaveLength(1);
    expect(flows[0]!.src).toEqual(client);
    expect(flows[0]!.tls?.client?.via).toBe('hook');
    expect(flows[0]!.http[0]?.host).toBe('early');
  });

  it('orients a flow whose hook records came before its packets by its SYN and ClientHello, not by its ports (a server on 50051)', async () => {
    const b = new CaptureBuilder();
    b.record({ t: 'capture', v: 1, mode: 'ebpf', requestedMode: 'auto', reason: 'auto', hostname: 'node-1', addrs: ['10.0.0.1'] });
    const me = { ip: '10.0.0.1', port: 40000 };
    const grpc = { ip: '10.0.0.2', port: 50051 };
    const curl = { pid: 100, comm: 'curl', lib: 'openssl' };
    // (no conn record names the client: its socket event was dropped)
    b.tls(me, grpc, 'out', Buffer.from('GET /x HTTP/1.1\r\nHost: api\r\n\r\n'), curl);
    b.tls(grpc, me, 'in', Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'), curl);
    tcpConversation(b, me, grpc, [fixtureClientHello()], [Buffer.from([0x16, 0x03, 0x03, 0x00, 0x01, 0x00])]);
    // (and one whose SYN was not captured: its ClientHello tells)
    const me2 = { ip: '10.0.0.1', port: 40001 };
    b.tls(me2, grpc, 'out', Buffer.from('GET /y HTTP/1.1\r\nHost: api\r\n\r\n'), curl);
    b.tcp({ src: me2.ip, dst: grpc.ip, sport: me2.port, dport: grpc.port, seq: 7001, ack: 9001, flags: 0x18, payload: fixtureClientHello() });
    // (a record whose packets never come, its server's port above its client's too: a flow of its own, its client told by
    // the ports, once the time its packets could take passed)
    const lone = { ip: '10.0.0.1', port: 40002 };
    b.tls(lone, grpc, 'out', Buffer.from('GET /z HTTP/1.1\r\nHost: api\r\n\r\n'), curl);
    b.packet(ethernet(ipPacket('tcp', { src: '10.0.0.7', dst: '10.0.0.8', sport: 41000, dport: 80, seq: 1, flags: 0x02 })), { stepMs: 400 });
    const buf = b.build();
    const { a, flows } = analyze(buf);
    expect(flows.map((f) => [f.src.port, f.dst.port, f.seenBy])).toEqual([[40000, 50051, 'packets'], [40001, 50051, 'packets'], [50051, 40002, 'hook-only'], [41000, 80, 'packets']]);
    const [f, g] = flows;
    expect(f!.tls).toMatchObject({ ja4: 't13d3112h2_e8f1e7e78f70_b26ce05bbdd6' });
    expect(f!.tls!.client).toMatchObject({ library: 'openssl', via: 'hook', plaintext: true });
    expect(f!.tls!.server).toMatchObject({ plaintext: false, reason: expect.stringMatching(/^server process not on a captured node/) });
    expect(f!.http).toEqual([{ method: 'GET', host: 'api', path: '/x', status: 200 }]);
    expect(f!.process?.comm).toBe('curl');
    expect([g!.tls?.ja4, g!.tls?.client?.plaintext, g!.http[0]?.path]).toEqual(['t13d3112h2_e8f1e7e78f70_b26ce05bbdd6', true, '/y']);
    expect(a.counters.tlsRecordsUnmatched).toBe(0);
    // each record block is handed on with its flow's id (the pcapng export and Follow stream read them so)
    const path = join(mkdtempSync(join(tmpdir(), 'tapscope-hook-first-')), 'hook-first.pcapng');
    writeFileSync(path, buf);
    const ids: (string | null)[] = [];
    await readWithFlowIds([{ path }], (blk, id) => { if (blk.type === 'epb' && blk.iface.linkType === 252) ids.push(id); });
    expect(ids).toEqual([f!.id, f!.id, g!.id, flows[2]!.id]);
    // (asked for before the capture's end, a record still held makes its flow)
    const c = new CaptureBuilder();
    c.tls(me, grpc, 'out', Buffer.from('GET /x HTTP/1.1\r\nHost: api\r\n\r\n'), curl);
    const live = new Analyzer();
    const feed = live.stream('node-1');
    for (const blk of parseBuffer(c.build())) feed(blk);
    expect(live.flows().map((x) => x.seenBy)).toEqual(['hook-only']);
  });

  it('says a TLS side at an address of the captured node was not attributed (and why, by mode), not that it is elsewhere', () => {
    for (const mode of ['afpacket', 'ebpf'] as const) {
      const b = new CaptureBuilder();
      b.record({ t: 'capture', v: 1, mode, requestedMode: mode, reason: `${mode}: requested`, hostname: 'node-1', addrs: ['127.0.0.1', '10.30.0.1', '::1'] });
      const here = { ip: '10.30.0.1', port: 40100 };
      const away = { ip: '10.30.0.9', port: 443 };
      tcpConversation(b, here, away, [fixtureClientHello()], [Buffer.from([0x16, 0x03, 0x03, 0x00, 0x01, 0x00])]);
      tcpConversation(b, { ip: '10.30.0.9', port: 40200 }, { ip: '10.30.0.1', port: 8443 }, [fixtureClientHello()], []);
      const { flows } = analyze(b.build());
      const out = flows.find((f) => f.src.ip === here.ip)!;
      const how = mode === 'afpacket' ? 'in afpacket mode a connection is matched to its process from /proc' : 'eBPF mode saw no socket event of this connection';
      expect(out.tls?.client?.reason, mode).toMatch(new RegExp(`^the client process is on the captured node but was not attributed: ${how.replace('/', '\\/')}`));
      expect(out.tls?.server?.reason, mode).toMatch(/^server process not on a captured node/);
      const inbound = flows.find((f) => f.dst.ip === here.ip)!;
      expect(inbound.tls?.client?.reason, mode).toMatch(/^client process not on a captured node/);
      expect(inbound.tls?.server?.reason, mode).toMatch(new RegExp(`^the server process is on the captured node but was not attributed: ${how.replace('/', '\\/')}.*; a server's library cannot be told from the ClientHello$`));
    }
  });

  it('says a TLS side that is a pod on the captured node was not attributed because afpacket mode does not read pods\' namespaces', () => {
    const b = new CaptureBuilder();
    b.record({ t: 'capture', v: 1, mode: 'afpacket', requestedMode: 'auto', reason: 'auto: no BTF', hostname: 'node-1', addrs: ['10.40.0.1'] });
    const here = { ip: '10.244.1.5', port: 40100 };
    const there = { ip: '10.244.2.9', port: 443 };
    tcpConversation(b, here, there, [fixtureClientHello()], [Buffer.from([0x16, 0x03, 0x03, 0x00, 0x01, 0x00])]);
    const a = new Analyzer();
    a.podLookup = (ip) => (ip === here.ip ? { namespace: 'shop', name: 'cart-1', workload: null, node: 'node-1' }
      : ip === there.ip ? { namespace: 'shop', name: 'db-0', workload: null, node: 'node-2' } : null);
    a.sinks(undefined);
    const feed = a.stream(undefined);
    for (const blk of parseBuffer(b.build())) feed(blk);
    const [f] = a.flows();
    expect(f!.node).toBe('node-1');
    expect(f!.tls?.client?.reason).toBe("the client is pod shop/cart-1 on the captured node, and its process was not attributed: afpacket mode attributes processes in the node's own network namespace only, not in pods' (eBPF mode attributes them)");
    // a pod on another node is elsewhere
    expect(f!.tls?.server?.reason).toMatch(/^server process not on a captured node/);
  });

  it('keeps records whose 5-tuple matched no captured packet as hook-only flows, with a note in their reasons', () => {
    const b = new CaptureBuilder();
    b.record({ t: 'capture', v: 1, mode: 'ebpf', requestedMode: 'auto', reason: 'auto', hostname: 'node-1' });
    const podC = { ip: '10.244.1.5', port: 40000 };
    const podS = { ip: '10.96.0.10', port: 443 };
    const early = { ip: '10.202.2.7', port: 41000 };
    const attrs = { pid: 9, comm: 'app', lib: 'openssl' };
    b.tls(podC, podS, 'out', Buffer.from('GET /in-pod HTTP/1.1\r\nHost: svc\r\n\r\n'), attrs);
    b.tls(early, server, 'out', Buffer.from('GET /early HTTP/1.1\r\nHost: e\r\n\r\n'), attrs);
    tcpConversation(b, client, server, [fixtureClientHello()], [Buffer.from([0x16, 0x03, 0x03, 0x00, 0x01, 0x00])]);
    tcpConversation(b, early, server, [Buffer.from([0x16, 0x03, 0x01, 0x00, 0x01, 0x01])], []);
    b.tls(podS, podC, 'in', Buffer.from('HTTP/1.1 204 No Content\r\n\r\n'), attrs);
    const { flows } = analyze(b.build());
    expect(flows).toHaveLength(3);
    const pod = flows.find((f) => f.src.ip === podC.ip)!;
    expect(pod).toMatchObject({ seenBy: 'hook-only', packets: 0, bytes: 0, app: 'tls', src: podC, dst: podS });
    expect(pod.lastSeen).toBeGreaterThan(pod.firstSeen);
    expect(pod.http).toEqual([{ method: 'GET', host: 'svc', path: '/in-pod', status: 204 }]);
    expect(pod.tls?.client).toMatchObject({ via: 'hook', plaintext: true, reason: null });
    expect(pod.tls?.server?.plaintext).toBe(false);
    expect(pod.tls?.server?.reason).toMatch(/; note: this connection was seen only through TLS hooks, no packet of it was captured/);
    for (const f of flows.filter((x) => x !== pod)) {
      expect(f.seenBy, `${f.src.ip}:${f.src.port}`).toBe('packets');
      expect(f.packets).toBeGreaterThan(0);
      for (const v of [f.tls?.client, f.tls?.server]) expect(v?.reason ?? '').not.toMatch(/seen only through TLS hooks/);
    }
    expect(flows.find((f) => f.src.port === early.port)!.http[0]?.path).toBe('/early');
    expect(flows.filter(compileFilter('seenBy == "hook-only"')).map((f) => f.id)).toEqual([pod.id]);
    expect(flows.filter(compileFilter('seenBy == "packets"'))).toHaveLength(2);
  });

  it('keeps packets and records in their own flows per node of a multi-section file', () => {
    const one = capture({ hookClient: true, mode: 'ebpf' });
    const two = Buffer.from(one.toString('latin1').replace('node-1', 'node-2'), 'latin1');
    const blocks = parseBuffer(Buffer.concat([one, two]));
    expect(blocks.filter((x): x is PacketBlock => x.type === 'epb').length).toBeGreaterThan(4);
    const { flows } = analyze(Buffer.concat([one, two]));
    expect(flows.map((f) => f.node).sort()).toEqual(['node-1', 'node-2']);
  });
});
