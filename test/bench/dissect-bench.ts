// Benchmark of the dissectors against peers measured in the same run on the same bytes:
// 1. JA3/JA4 from 20,000 real ClientHellos (the golden fixtures, repeated) vs. tshark computing JA3
//    from a pcap of the same hellos (tshark's startup is measured separately and subtracted).
// 2. HTTP/1: a pipelined request stream parsed by Http1Parser vs. Node's own llhttp parser.
// Prints figures and ratios; never gates on absolute times. Run: npx tsx test/bench/dissect-bench.ts
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseClientHello, ja3, ja4 } from '../../src/dissect/tls.js';
import { Http1Parser } from '../../src/dissect/http1.js';

const HELLOS = Number(process.env.BENCH_HELLOS ?? 20_000);
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 200_000);
const FIX = path.join(import.meta.dirname, '../fixtures/dissect/clienthellos.json');

const hellos = (JSON.parse(fs.readFileSync(FIX, 'utf8')) as { hellos: { helloHex?: string }[] }).hellos
  .flatMap((h) => (h.helloHex ? [Buffer.from(h.helloHex, 'hex')] : []));

/** A classic pcap of one TCP segment per hello (Ethernet/IPv4/TCP, distinct source ports). */
function pcapOf(payloads: Buffer[]): Buffer {
  const head = Buffer.alloc(24);
  head.writeUInt32LE(0xa1b2c3d4, 0);
  head.writeUInt16LE(2, 4);
  head.writeUInt16LE(4, 6);
  head.writeUInt32LE(262144, 16);
  head.writeUInt32LE(1, 20);
  const out: Buffer[] = [head];
  payloads.forEach((p, i) => {
    const frame = Buffer.alloc(14 + 20 + 20 + p.length);
    frame.writeUInt16BE(0x0800, 12);
    frame[14] = 0x45;
    frame.writeUInt16BE(20 + 20 + p.length, 16);
    frame[22] = 64;
    frame[23] = 6;
    frame.writeUInt32BE(0x7f000001, 26);
    frame.writeUInt32BE(0x7f000001, 30);
    frame.writeUInt16BE(10000 + (i % 50000), 34);
    frame.writeUInt16BE(443, 36);
    frame.writeUInt32BE(1, 38);
    frame[46] = 0x50;
    frame[47] = 0x18;
    frame.writeUInt16BE(65535, 48);
    p.copy(frame, 54);
    const rec = Buffer.alloc(16);
    rec.writeUInt32LE(i, 0);
    rec.writeUInt32LE(frame.length, 8);
    rec.writeUInt32LE(frame.length, 12);
    out.push(rec, frame);
  });
  return Buffer.concat(out);
}

function timeMs(fn: () => void): number {
  const t0 = performance.now();
  fn();
  return performance.now() - t0;
}

// 1. fingerprints
const many = Array.from({ length: HELLOS }, (_, i) => hellos[i % hellos.length]!);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsd-bench-'));
try {
  const pcap = path.join(dir, 'hellos.pcap');
  fs.writeFileSync(pcap, pcapOf(many));
  const one = path.join(dir, 'one.pcap');
  fs.writeFileSync(one, pcapOf(many.slice(0, 1)));
  const tshark = (file: string): string => execFileSync('tshark', ['-r', file, '-Y', 'tls.handshake.type == 1', '-T', 'fields', '-e', 'tls.handshake.ja3'],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 256 << 20 });
  const startup = timeMs(() => tshark(one));
  let lines = 0;
  const theirs = timeMs(() => { lines = tshark(pcap).trim().split('\n').length; }) - startup;
  let same = 0;
  const theirHashes = tshark(pcap).trim().split('\n');
  const ours = timeMs(() => {
    many.forEach((h, i) => {
      const ch = parseClientHello(h);
      if (ch === null || ch === 'incomplete') return;
      ja4(ch, 'tcp');
      if (ja3(ch).hash === theirHashes[i]) same++;
    });
  });
  console.log(`fingerprints: ${HELLOS} ClientHellos: ours ${ours.toFixed(0)} ms (JA3+JA4), tshark ${theirs.toFixed(0)} ms (JA3, startup ${startup.toFixed(0)} ms excluded)` +
    ` -> ${(theirs / ours).toFixed(1)}x; JA3 agreement ${same}/${lines}`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}

// 2. HTTP/1 requests vs llhttp
const req = Buffer.from('POST /api/orders?id=42 HTTP/1.1\r\nHost: shop.test\r\nUser-Agent: bench\r\nAccept: */*\r\n' +
  'Content-Type: application/json\r\nContent-Length: 27\r\n\r\n{"item":"book","qty":12345}');
const stream = Buffer.concat(Array.from({ length: REQUESTS }, () => req));
const chunks: Buffer[] = [];
for (let o = 0; o < stream.length; o += 1460) chunks.push(stream.subarray(o, o + 1460));

let oursCount = 0;
const oursMs = timeMs(() => {
  const p = new Http1Parser();
  chunks.forEach((c, i) => { oursCount += p.push(c, i).length; });
});

const require = createRequire(import.meta.url);
interface LlhttpParser { initialize(type: number, resource: object): void; execute(b: Buffer): unknown; [k: number]: unknown }
interface LlhttpClass { new (): LlhttpParser; REQUEST: number; kOnHeadersComplete: number; kOnBody: number; kOnMessageComplete: number }
// why: Node's internal llhttp binding is the fairest peer: same runtime, a production HTTP parser
const { HTTPParser } = require('_http_common') as { HTTPParser: LlhttpClass };
let theirCount = 0;
const llhttpMs = timeMs(() => {
  const p = new HTTPParser();
  p.initialize(HTTPParser.REQUEST, {});
  p[HTTPParser.kOnHeadersComplete] = () => 0;
  p[HTTPParser.kOnBody] = () => {};
  p[HTTPParser.kOnMessageComplete] = () => { theirCount++; };
  for (const c of chunks) p.execute(c);
});
const mb = stream.length / 1e6;
console.log(`http1: ${REQUESTS} pipelined requests (${mb.toFixed(1)} MB in 1460-byte segments): ours ${oursMs.toFixed(0)} ms (${(mb / (oursMs / 1000)).toFixed(0)} MB/s),` +
  ` llhttp ${llhttpMs.toFixed(0)} ms (${(mb / (llhttpMs / 1000)).toFixed(0)} MB/s) -> ours/llhttp ${(oursMs / llhttpMs).toFixed(1)}x; messages ${oursCount}/${theirCount}`);
