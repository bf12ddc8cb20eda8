// Builds link/IP/TCP/UDP frames and whole pcapng captures for the core's unit tests and the benchmark.
import { ipToBytes } from '../../src/util/ip.js';
import { encodeEpb, encodeIdb, encodeShb, encodeTapscopeRecord, tsFromMs } from '../../src/pcapng/writer.js';
import { buildExportedPdu } from '../../src/pcapng/exported-pdu.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseBuffer } from '../../src/pcapng/index.js';
import { decodePacket } from '../../src/flows/decode.js';
import { Analyzer, type AnalyzerOptions } from '../../src/flows/analyzer.js';

/** Path of the real loopback capture fixture (curl, gnutls-cli, python http.server). */
export const LOOPBACK_MIX = join(import.meta.dirname, '../fixtures/pcapng/loopback-mix.pcapng');

/** The first client→server TCP payload to port 18443 in the loopback fixture: a real ClientHello from curl (OpenSSL). */
export function fixtureClientHello(): Buffer {
  for (const b of parseBuffer(readFileSync(LOOPBACK_MIX))) {
    if (b.type !== 'epb') continue;
    const d = decodePacket(b.iface.linkType, b.data);
    if (d && d.dstPort === 18443 && d.payload.length > 0) return Buffer.from(d.payload);
  }
  throw new Error('no ClientHello in fixture');
}

/** A TLS 1.2 ServerHello record (cipher 0xc02f, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256), as a server answers. */
export function tls12ServerHello(): Buffer {
  const body = Buffer.concat([Buffer.from('0303', 'hex'), Buffer.alloc(32, 7), Buffer.from([0]), Buffer.from('c02f00', 'hex'), Buffer.from('0000', 'hex')]);
  const hs = Buffer.concat([Buffer.from([2, 0, body.length >> 8, body.length & 0xff]), body]);
  return Buffer.concat([Buffer.from([0x16, 3, 3, hs.length >> 8, hs.length & 0xff]), hs]);
}

export interface Seg {
  src: string;
  dst: string;
  sport: number;
  dport: number;
  seq?: number;
  ack?: number;
  flags?: number;
  payload?: Buffer;
}

function checksumless(ipv6: boolean, src: Buffer, dst: Buffer, proto: number, l4: Buffer): Buffer {
  if (!ipv6) {
    const h = Buffer.alloc(20);
    h[0] = 0x45;
    h.writeUInt16BE(20 + l4.length, 2);
    h[8] = 64;
    h[9] = proto;
    src.copy(h, 12);
    dst.copy(h, 16);
    return Buffer.concat([h, l4]);
  }
  const h = Buffer.alloc(40);
  h[0] = 0x60;
  h.writeUInt16BE(l4.length, 4);
  h[6] = proto;
  h[7] = 64;
  src.copy(h, 8);
  dst.copy(h, 24);
  return Buffer.concat([h, l4]);
}

export function tcpSegment(s: Seg): Buffer {
  const payload = s.payload ?? Buffer.alloc(0);
  const t = Buffer.alloc(20);
  t.writeUInt16BE(s.sport, 0);
  t.writeUInt16BE(s.dport, 2);
  t.writeUInt32BE((s.seq ?? 1) >>> 0, 4);
  t.writeUInt32BE((s.ack ?? 0) >>> 0, 8);
  t[12] = 5 << 4;
  t[13] = s.flags ?? 0x18;
  t.writeUInt16BE(65535, 14);
  return Buffer.concat([t, payload]);
}

export function udpDatagram(s: Seg): Buffer {
  const payload = s.payload ?? Buffer.alloc(0);
  const u = Buffer.alloc(8);
  u.writeUInt16BE(s.sport, 0);
  u.writeUInt16BE(s.dport, 2);
  u.writeUInt16BE(8 + payload.length, 4);
  return Buffer.concat([u, payload]);
}

/** An IP packet (v4 or v6 from the address form) carrying TCP or UDP. */
export function ipPacket(proto: 'tcp' | 'udp', s: Seg): Buffer {
  const src = ipToBytes(s.src)!;
  const dst = ipToBytes(s.dst)!;
  const l4 = proto === 'tcp' ? tcpSegment(s) : udpDatagram(s);
  return checksumless(src.length === 16, src, dst, proto === 'tcp' ? 6 : 17, l4);
}

/** An IP packet (v4 or v6 from the address form) of protocol `proto` carrying `payload`: a tunnel's (IP in IP, GRE). */
export function ipCarrying(proto: number, src: string, dst: string, payload: Buffer): Buffer {
  const s = ipToBytes(src)!;
  return checksumless(s.length === 16, s, ipToBytes(dst)!, proto, payload);
}

export function ethernet(ip: Buffer, vlan?: number): Buffer {
  const v6 = (ip[0] ?? 0) >> 4 === 6;
  const head = Buffer.alloc(vlan === undefined ? 14 : 18);
  head.fill(0x02, 0, 12);
  if (vlan !== undefined) {
    head.writeUInt16BE(0x8100, 12);
    head.writeUInt16BE(vlan, 14);
    head.writeUInt16BE(v6 ? 0x86dd : 0x0800, 16);
  } else {
    head.writeUInt16BE(v6 ? 0x86dd : 0x0800, 12);
  }
  return Buffer.concat([head, ip]);
}

export function sll(ip: Buffer): Buffer {
  const h = Buffer.alloc(16);
  h.writeUInt16BE((ip[0] ?? 0) >> 4 === 6 ? 0x86dd : 0x0800, 14);
  return Buffer.concat([h, ip]);
}

export function sll2(ip: Buffer): Buffer {
  const h = Buffer.alloc(20);
  h.writeUInt16BE((ip[0] ?? 0) >> 4 === 6 ? 0x86dd : 0x0800, 0);
  return Buffer.concat([h, ip]);
}

export function nullLink(ip: Buffer): Buffer {
  const h = Buffer.alloc(4);
  h.writeUInt32LE((ip[0] ?? 0) >> 4 === 6 ? 30 : 2, 0);
  return Buffer.concat([h, ip]);
}

/** A little capture builder: one section, interfaces added on demand, packets with increasing time. */
export class CaptureBuilder {
  private parts: Buffer[] = [];
  private ifaces = new Map<string, number>();
  ts: number;

  constructor(startMs = 1_732_620_000_000, shbApp = 'tapscope-helper test') {
    this.ts = startMs;
    this.parts.push(encodeShb({ hardware: 'x86_64', os: 'Linux test', userappl: shbApp }));
  }

  record(json: { t: string } & Record<string, unknown>): this {
    this.parts.push(encodeTapscopeRecord(json));
    return this;
  }

  iface(name: string, linkType: number): number {
    const key = `${name}/${linkType}`;
    let id = this.ifaces.get(key);
    if (id === undefined) {
      id = this.ifaces.size;
      this.ifaces.set(key, id);
      this.parts.push(encodeIdb({ linkType, snapLen: 262144, name, description: name === 'tapscope-tls' ? 'decrypted TLS plaintext from uprobes' : `ifindex=${id + 1}`, tsresol: 9 }));
    }
    return id;
  }

  packet(frame: Buffer, opts: { linkType?: number; iface?: string; flags?: number; comments?: string[]; stepMs?: number } = {}): this {
    const id = this.iface(opts.iface ?? 'eth0', opts.linkType ?? 1);
    this.ts += opts.stepMs ?? 1;
    this.parts.push(encodeEpb({ interfaceId: id, ...tsFromMs(this.ts), data: frame, flags: opts.flags ?? null, comments: opts.comments ?? [] }));
    return this;
  }

  tcp(s: Seg, linkType = 1): this {
    return this.packet(ethernet(ipPacket('tcp', s)), { linkType });
  }

  udp(s: Seg): this {
    return this.packet(ethernet(ipPacket('udp', s)));
  }

  /**
   * A decrypted TLS record from a uprobe (native/FORMAT.md); with null ends, one the helper could not tie to a connection
   * (conn=unknown, no address tags); `udp`: a DTLS connection's record, its ports UDP's.
   */
  tls(src: { ip: string; port: number } | null, dst: { ip: string; port: number } | null, dir: 'in' | 'out', payload: Buffer, attrs: { pid: number; comm: string; lib: string; proto?: string; netns?: number; udp?: boolean }): this {
    const pdu = buildExportedPdu(attrs.proto ?? (/^(GET|POST|HTTP\/1)/.test(payload.toString('latin1', 0, 8)) ? 'http' : 'data'), src, dst, payload, attrs.udp);
    const ns = attrs.netns === undefined ? '' : ` netns=${attrs.netns}`;
    const conn = src && dst ? '' : ' conn=unknown';
    const comment = `tapscope-tls pid=${attrs.pid} tid=${attrs.pid} comm=${attrs.comm} lib=${attrs.lib} fn=${dir === 'out' ? 'SSL_write' : 'SSL_read'} dir=${dir} len=${payload.length} trunc=0${ns}${conn}`;
    return this.packet(pdu, { linkType: 252, iface: 'tapscope-tls', flags: dir === 'out' ? 2 : 1, comments: [comment] });
  }

  raw(block: Buffer): this {
    this.parts.push(block);
    return this;
  }

  build(): Buffer {
    return Buffer.concat(this.parts);
  }

  /** The blocks added since the last take(), for writing a large capture in parts; the builder goes on with the same interfaces and clock. */
  take(): Buffer {
    const out = Buffer.concat(this.parts);
    this.parts = [];
    return out;
  }
}

/** A handshake + request/response TCP conversation between client and server, with correct sequence numbers. */
/** Segments in turns: client's i-th, then server's i-th (null: no segment that turn, as when the server speaks first). */
/** `afterTurn`: called after each turn's segments (to put other blocks, such as decrypted records, between them). */
/** `afterSegment`: called after each segment, the handshake's and the FINs' too, numbered from 0 (the SYN). */
export function tcpConversation(b: CaptureBuilder, client: { ip: string; port: number }, server: { ip: string; port: number }, c2s: (Buffer | null)[], s2c: (Buffer | null)[],
  opts: { isnC?: number; isnS?: number; fin?: boolean; afterTurn?: (turn: number) => void; afterSegment?: (segment: number) => void } = {}): void {
  let cseq = opts.isnC ?? 1000;
  let sseq = opts.isnS ?? 5000;
  const C = { src: client.ip, dst: server.ip, sport: client.port, dport: server.port };
  const S = { src: server.ip, dst: client.ip, sport: server.port, dport: client.port };
  let segments = 0;
  const tcp = (s: Seg): void => {
    b.tcp(s);
    opts.afterSegment?.(segments++);
  };
  tcp({ ...C, seq: cseq, flags: 0x02 });
  tcp({ ...S, seq: sseq, ack: cseq + 1, flags: 0x12 });
  cseq++; sseq++;
  tcp({ ...C, seq: cseq, ack: sseq, flags: 0x10 });
  const n = Math.max(c2s.length, s2c.length);
  for (let i = 0; i < n; i++) {
    const c = c2s[i];
    if (c) { tcp({ ...C, seq: cseq, ack: sseq, flags: 0x18, payload: c }); cseq += c.length; }
    const s = s2c[i];
    if (s) { tcp({ ...S, seq: sseq, ack: cseq, flags: 0x18, payload: s }); sseq += s.length; }
    opts.afterTurn?.(i);
  }
  if (opts.fin !== false) {
    tcp({ ...C, seq: cseq, ack: sseq, flags: 0x11 });
    tcp({ ...S, seq: sseq, ack: cseq + 1, flags: 0x11 });
  }
}

/**
 * A TCP connection carrying `flights` in the order they crossed ('c': the client's bytes, 's': the server's), cut into
 * `size`-byte segments (default 1400), closed by both FINs. `drop`: the index of a server data segment left out (a
 * gap); `midstream`: no SYNs and the first two flights left out (a connection taken up in the middle).
 */
export function flightConversation(b: CaptureBuilder, client: { ip: string; port: number }, server: { ip: string; port: number }, flights: ['c' | 's', Buffer][],
  opts: { size?: number; drop?: number; midstream?: boolean } = {}): void {
  const C = { src: client.ip, dst: server.ip, sport: client.port, dport: server.port };
  const S = { src: server.ip, dst: client.ip, sport: server.port, dport: client.port };
  let cseq = 1000;
  let sseq = 5000;
  if (!opts.midstream) {
    b.tcp({ ...C, seq: cseq, flags: 0x02 });
    b.tcp({ ...S, seq: sseq, ack: cseq + 1, flags: 0x12 });
    b.tcp({ ...C, seq: ++cseq, ack: ++sseq, flags: 0x10 });
  }
  const size = opts.size ?? 1400;
  let serverSegs = 0;
  for (const [who, bytes] of opts.midstream ? flights.slice(2) : flights) {
    for (let at = 0; at < bytes.length; at += size) {
      const seg = bytes.subarray(at, at + size);
      if (who === 'c') {
        b.tcp({ ...C, seq: cseq, ack: sseq, flags: 0x18, payload: seg });
        cseq += seg.length;
      } else {
        if (serverSegs++ !== opts.drop) b.tcp({ ...S, seq: sseq, ack: cseq, flags: 0x18, payload: seg });
        sseq += seg.length;
      }
    }
  }
  b.tcp({ ...C, seq: cseq, ack: sseq, flags: 0x11 });
  b.tcp({ ...S, seq: sseq, ack: cseq + 1, flags: 0x11 });
}

/** A TDS packet: type, status end-of-message, length, packet id 1. */
export function tds(type: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h[0] = type;
  h[1] = 0x01;
  h.writeUInt16BE(8 + payload.length, 2);
  h[6] = 1;
  return Buffer.concat([h, payload]);
}
/** A PRELOGIN message: VERSION (6 bytes) and ENCRYPTION options, then the terminator. */
export function prelogin(encryption: number): Buffer {
  return Buffer.from([0x00, 0, 11, 0, 6, 0x01, 0, 17, 0, 1, 0xff, 16, 0, 0x07, 0xd0, 0, 0, encryption]);
}

/** An Analyzer fed the capture `buf` as one stream (of node `node`), with `options`; `end`: its end marked (endCapture). */
export function analyzeCapture(buf: Buffer, opts: { node?: string; options?: AnalyzerOptions; end?: boolean } = {}): Analyzer {
  const a = new Analyzer(opts.options);
  const feed = a.stream(opts.node);
  for (const b of parseBuffer(buf)) feed(b);
  if (opts.end) a.endCapture();
  return a;
}
