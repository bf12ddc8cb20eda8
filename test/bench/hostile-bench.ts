// Captures made to be slow to read: garbage on the DNS port, zero-filled DNS over TCP, hellos and request heads sent a
// byte a segment, HTTP/2 frames of megabytes in 1448-byte segments, an unnamed protocol of short messages, HTTP/1.1
// requests pipelined by the 100,000, a SYN flood from one port at one timestamp, QUIC Initials of one-byte CRYPTO
// frames sent backwards, and DTLS fragments declaring lengths they do not bring. Each is
// read by `tapscope flows --json` and by `tshark -q -z conv,tcp` on the same file in the same run: the ratio says
// whether any of them costs us more than it costs tshark (each case was once much slower, see the README's
// benchmarks). Prints, never gates; the suite's smoke run (core-bench-smoke) checks that both tools read every case.
//
//   npx tsx test/bench/hostile-bench.ts          (BENCH_HOSTILE_SCALE=1: 10-60 MiB a case; 0.05 for a smoke run)
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CaptureBuilder, ethernet, ipPacket, tcpConversation } from '../unit/core-packet-builder.js';
import { frame } from '../unit/export-h2-frames.js';
import { cryptoFrame, initialKeysOf, initialPacket } from '../unit/quic-seal.js';
import { measure, tapscopeArgv, type Measured } from './flows-bench.js';

export interface HostileCase { name: string; what: string; build: (scale: number) => CaptureBuilder }

const C = (i: number): { ip: string; port: number } => ({ ip: `10.77.${Math.floor(i / 250) % 250}.${(i % 250) + 1}`, port: 30000 + (i % 30000) });
const S = (port: number): { ip: string; port: number } => ({ ip: '10.78.0.1', port });
const n = (base: number, scale: number): number => Math.max(1, Math.round(base * scale));

/** The bytes cut into segments of `size`. */
function cut(bytes: Buffer, size: number): Buffer[] {
  return Array.from({ length: Math.ceil(bytes.length / size) }, (_, i) => bytes.subarray(i * size, (i + 1) * size));
}

export const CASES: HostileCase[] = [
  {
    name: 'dns-udp-garbage',
    what: '1400-byte datagrams to port 53, each byte the same (header counts in the thousands)',
    build: (scale) => {
      const b = new CaptureBuilder();
      for (let i = 0; i < n(20_000, scale); i++) b.udp({ src: C(i % 50).ip, dst: S(53).ip, sport: C(i % 50).port, dport: 53, payload: Buffer.alloc(1400, i & 0xff) });
      return b;
    },
  },
  {
    name: 'dns-tcp-zeros',
    what: 'connections to TCP port 53 carrying zero-filled segments',
    build: (scale) => {
      const b = new CaptureBuilder();
      for (let c = 0; c < 10; c++) tcpConversation(b, C(c), S(53), Array.from({ length: n(2_000, scale) }, () => Buffer.alloc(1400)), []);
      return b;
    },
  },
  {
    name: 'byte-segments',
    what: 'a 16 KiB TLS hello or HTTP request head sent one byte a segment, to 443 and 80',
    build: (scale) => {
      const b = new CaptureBuilder();
      const size = Math.max(1024, n(16 * 1024, scale));
      const tls = Buffer.concat([Buffer.from('1603014000010000', 'hex'), Buffer.alloc(size, 0x61)]);
      const http = Buffer.concat([Buffer.from('GET / HTTP/1.1\r\nX-Long: '), Buffer.alloc(size, 0x61)]);
      // (four connections: tshark's reading of them is quadratic, 30 s)
      for (let c = 0; c < Math.max(2, n(4, scale)); c++) tcpConversation(b, C(c), S(c % 2 ? 80 : 443), cut(c % 2 ? http : tls, 1), []);
      return b;
    },
  },
  {
    name: 'h2-big-frames',
    what: 'HTTP/2 (h2c) answers in 4 MiB DATA frames, 1448-byte segments',
    build: (scale) => {
      const b = new CaptureBuilder();
      const preface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
      const settings = frame(4, 0, 0, Buffer.alloc(0));
      // (HEADERS: :method GET, :path /, :scheme http from the static table; the answer's :status 200)
      const req = (id: number): Buffer => frame(1, 0x5, id, Buffer.from([0x82, 0x84, 0x86]));
      const frames = Math.max(1, n(8, scale));
      const answer = (id: number): Buffer => Buffer.concat([frame(1, 0x4, id, Buffer.from([0x88])), frame(0, 0x1, id, Buffer.alloc(Math.max(64 * 1024, n(4 << 20, scale)), 0x62))]);
      const client = Buffer.concat([preface, settings, ...Array.from({ length: frames }, (_, i) => req(2 * i + 1))]);
      const server = Buffer.concat([settings, ...Array.from({ length: frames }, (_, i) => answer(2 * i + 1))]);
      tcpConversation(b, C(1), S(80), [client], cut(server, 1448));
      return b;
    },
  },
  {
    name: 'short-messages',
    what: 'an unnamed protocol of 100-byte messages both ways, port 9999',
    build: (scale) => {
      const b = new CaptureBuilder();
      const msgs = Array.from({ length: 60 }, (_, i) => Buffer.alloc(100, 0x30 + (i % 10)));
      for (let c = 0; c < n(2_000, scale); c++) tcpConversation(b, C(c), S(9999), msgs, msgs);
      return b;
    },
  },
  {
    name: 'h1-pipelined',
    what: '100,000 HTTP/1.1 requests pipelined on one connection before the first response',
    build: (scale) => {
      const b = new CaptureBuilder();
      const count = n(100_000, scale);
      const requests = cut(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(count)), 1448);
      const responses = cut(Buffer.from('HTTP/1.1 204 No Content\r\n\r\n'.repeat(count)), 1448);
      tcpConversation(b, C(1), S(80), requests, [...requests.map(() => null), ...responses]);
      return b;
    },
  },
  {
    name: 'same-tuple-time',
    what: '20,000 connections (a SYN, then a reset) from one port to one port, all at one timestamp, as a SYN flood',
    build: (scale) => {
      const b = new CaptureBuilder();
      const seg = { src: C(1).ip, dst: S(80).ip, sport: C(1).port, dport: 80 };
      for (let i = 0; i < n(20_000, scale); i++) {
        b.packet(ethernet(ipPacket('tcp', { ...seg, seq: i * 7, flags: 0x02 })), { stepMs: 0 });
        b.packet(ethernet(ipPacket('tcp', { ...seg, seq: i * 7 + 1, flags: 0x04 })), { stepMs: 0 });
      }
      return b;
    },
  },
  {
    name: 'quic-crypto-back',
    what: 'QUIC Initials (sealed with the keys any observer derives) of one-byte CRYPTO frames sent backwards, 8 a flow',
    build: (scale) => {
      const b = new CaptureBuilder();
      const per = 220;
      for (let i = 0; i < n(500, scale); i++) {
        const dcid = Buffer.from([0x51, 0x55, 0x49, 0x43, (i >> 24) & 255, (i >> 16) & 255, (i >> 8) & 255, i & 255]);
        const keys = initialKeysOf(dcid, 'client in');
        for (let d = 0; d < 8; d++) {
          // (a hello's header declaring 32 KiB first: the hello stays incomplete, and every datagram is read)
          const byte = (at: number): number => [1, 0, 0x7f, 0xff][at] ?? 0x61;
          const frames = Array.from({ length: per }, (_, j) => d * per + per - 1 - j).map((at) => cryptoFrame(at, Buffer.from([byte(at)])));
          b.udp({ src: C(i).ip, dst: S(443).ip, sport: C(i).port, dport: 443, payload: initialPacket(keys, dcid, Buffer.alloc(0), Buffer.concat(frames), d) });
        }
      }
      return b;
    },
  },
  {
    name: 'dtls-declared',
    what: 'DTLS datagrams of 8 empty ClientHello fragments, each declaring a 64 KiB hello',
    build: (scale) => {
      const b = new CaptureBuilder();
      const fragment = (seq: number): Buffer => {
        // (a record header: handshake, DTLS 1.2, epoch 0, sequence 0, 12 bytes; a ClientHello fragment of 0 bytes at 0)
        const f = Buffer.from([22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12, 1, 0, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0]);
        f.writeUInt16BE(seq, 17);
        return f;
      };
      const datagram = Buffer.concat(Array.from({ length: 8 }, (_, seq) => fragment(seq)));
      for (let i = 0; i < n(2_000, scale); i++) b.udp({ src: C(i).ip, dst: S(4433).ip, sport: C(i).port, dport: 4433, payload: datagram });
      return b;
    },
  },
];

export interface HostileResult {
  name: string; what: string; bytes: number; tapscope: Measured; tshark: Measured;
  /** the flows tapscope listed, and its TCP flows */
  tapscopeFlows: number; tapscopeTcpFlows: number; tsharkConversations: number;
}

/** Each case built at `scale`, then read by both tools (the better of `rounds` runs each). */
export function runHostileBench(scale: number, rounds = 1, dir?: string): HostileResult[] {
  const where = dir ?? mkdtempSync(join(tmpdir(), 'tapscope-hostile-'));
  const out: HostileResult[] = [];
  try {
    for (const c of CASES) {
      const path = join(where, `${c.name}.pcapng`);
      const bytes = c.build(scale).build();
      writeFileSync(path, bytes);
      let tapscope: Measured | null = null;
      let tshark: Measured | null = null;
      for (let r = 0; r < rounds; r++) {
        const [cmd, argv] = tapscopeArgv(['flows', path, '--json']);
        const t = measure(cmd, argv);
        const w = measure('tshark', ['-r', path, '-q', '-z', 'conv,tcp']);
        if (!tapscope || t.wallS < tapscope.wallS) tapscope = t;
        if (!tshark || w.wallS < tshark.wallS) tshark = w;
      }
      out.push({
        name: c.name, what: c.what, bytes: bytes.length, tapscope: tapscope!, tshark: tshark!,
        tapscopeFlows: tapscope!.stdout.split('\n').filter((l) => l.startsWith('{')).length,
        tapscopeTcpFlows: tapscope!.stdout.split('\n').filter((l) => l.includes('"transport":"tcp"')).length,
        tsharkConversations: tshark!.stdout.split('\n').filter((l) => /<->/.test(l)).length,
      });
    }
  } finally {
    if (!dir) rmSync(where, { recursive: true, force: true });
  }
  return out;
}

function main(): void {
  const scale = Number(process.env.BENCH_HOSTILE_SCALE ?? 1);
  const rounds = Number(process.env.BENCH_ROUNDS ?? 2);
  const rows = runHostileBench(scale, rounds);
  console.log(`hostile-bench: scale ${scale}, best of ${rounds}, load ${loadavg()[0]!.toFixed(1)}`);
  console.log('  case              MiB   tapscope s  tshark s  tshark/tapscope  TCP flows/conversations');
  for (const r of rows) {
    console.log(`  ${r.name.padEnd(16)} ${(r.bytes / 1048576).toFixed(0).padStart(4)}   ${r.tapscope.wallS.toFixed(2).padStart(9)}  ${r.tshark.wallS.toFixed(2).padStart(8)}  ${(r.tshark.wallS / r.tapscope.wallS).toFixed(1).padStart(14)}x  ${r.tapscopeTcpFlows}/${r.tsharkConversations}${r.tapscope.code === 0 && r.tshark.code === 0 ? '' : `  (exit ${r.tapscope.code}/${r.tshark.code})`}`);
    console.log(`    (${r.what})`);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main();
