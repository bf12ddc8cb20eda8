// Benchmark of the dissectors against peers measured in the same run on the same bytes:
// 1. JA3/JA4 from 20,000 real ClientHellos (the golden fixtures, repeated) vs. tshark computing JA3
//    from a pcap of the same hellos (tshark's startup is measured separately and subtracted).
// 2. HTTP/1: a pipelined request stream parsed by Http1Parser vs. Node's own llhttp parser.
// 3. Per flow, shaped like `tapscope flows`' benchmark capture (test/bench/flows-bench.ts), where nearly all
//    time is per flow: an HTTP/1 exchange (GET; 200 with a binary Content-Length body in 1400-byte segments)
//    in fresh parsers vs. llhttp (and parsers keeping no bodies and only Host, as the analyzer without details); a real
//    ClientHello + ServerHello and the hello's packed fields (the analyzer's fingerprint-cache key); a DNS
//    query + response.
// Prints figures and ratios; never gates on absolute times. Run: npx tsx test/bench/dissect-bench.ts
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import dnsPacket from 'dns-packet';
import { parseClientHello, parseServerHello, ja3, ja4, helloFields } from '../../src/dissect/tls.js';
import { Http1Parser, type Http1Options } from '../../src/dissect/http1.js';
import { parseDns } from '../../src/dissect/dns.js';
import { parseBuffer } from '../../src/pcapng/index.js';
import { decodePacket } from '../../src/flows/decode.js';
import { LOOPBACK_MIX } from '../unit/core-packet-builder.js';

const HELLOS = Number(process.env.BENCH_HELLOS ?? 20_000);
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 200_000);
const FLOWS = Number(process.env.BENCH_FLOWS ?? 100_000);
/** 1400-byte body segments per HTTP response: 11 as in the 1 GB flows bench file, 3 in its quarter. */
const BODY_SEGMENTS = Number(process.env.BENCH_BODY_SEGMENTS ?? 11);
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
interface LlhttpClass { new (): LlhttpParser; REQUEST: number; RESPONSE: number; kOnHeadersComplete: number; kOnBody: number; kOnMessageComplete: number }
// why: Node's internal llhttp binding is the fairest peer: same runtime, a production HTTP parser
const { HTTPParser } = require('_http_common') as { HTTPParser: LlhttpClass };
/** An llhttp parser that counts complete messages in `counter.n`. */
function llhttp(type: number, counter: { n: number }): LlhttpParser {
  const p = new HTTPParser();
  p.initialize(type, {});
  p[HTTPParser.kOnHeadersComplete] = () => 0;
  p[HTTPParser.kOnBody] = () => {};
  p[HTTPParser.kOnMessageComplete] = () => { counter.n++; };
  return p;
}
const theirs = { n: 0 };
const llhttpMs = timeMs(() => {
  const p = llhttp(HTTPParser.REQUEST, theirs);
  for (const c of chunks) p.execute(c);
});
const mb = stream.length / 1e6;
console.log(`http1: ${REQUESTS} pipelined requests (${mb.toFixed(1)} MB in 1460-byte segments): ours ${oursMs.toFixed(0)} ms (${(mb / (oursMs / 1000)).toFixed(0)} MB/s),` +
  ` llhttp ${llhttpMs.toFixed(0)} ms (${(mb / (llhttpMs / 1000)).toFixed(0)} MB/s) -> ours/llhttp ${(oursMs / llhttpMs).toFixed(1)}x; messages ${oursCount}/${theirs.n}`);

// 3. per flow
/** The first payload each way of the loopback fixture's TLS connection (curl/OpenSSL to port 18443). */
function fixtureHellos(): { ch: Buffer; sh: Buffer } {
  let ch: Buffer | null = null;
  for (const b of parseBuffer(fs.readFileSync(LOOPBACK_MIX))) {
    if (b.type !== 'epb') continue;
    const d = decodePacket(b.iface.linkType, b.data);
    if (!d || d.payload.length === 0) continue;
    if (d.dstPort === 18443 && !ch) ch = Buffer.from(d.payload);
    else if (d.srcPort === 18443 && ch) return { ch, sh: Buffer.from(d.payload) };
  }
  throw new Error('no TLS hellos in the loopback fixture');
}

/** Best of three runs of `fn` over FLOWS flows, in flows per second. */
function flowsPerSec(fn: (i: number) => void): number {
  let best = Infinity;
  for (let run = 0; run < 3; run++) best = Math.min(best, timeMs(() => { for (let i = 0; i < FLOWS; i++) fn(i); }));
  return FLOWS / (best / 1000);
}

const requests = Array.from({ length: 1000 }, (_, i) =>
  Buffer.from(`GET /item/${i}?q=${i % 97} HTTP/1.1\r\nHost: www${i % 50}.bench.test\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n`));
const segment = Buffer.alloc(1400);
for (let i = 0; i < segment.length; i++) segment[i] = (i * 7919) & 0xff;
const responseHead = Buffer.from(`HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: ${BODY_SEGMENTS * segment.length}\r\n\r\n`);
let httpMessages = 0;
/** One HTTP/1 flow (GET, then the 200 response in segments) in fresh parsers. */
function httpFlow(i: number, opts: Http1Options): void {
  const req = new Http1Parser(opts);
  const res = new Http1Parser(opts);
  httpMessages += req.push(requests[i % requests.length]!, i).length;
  res.expectResponseTo('GET');
  httpMessages += res.push(responseHead, i).length;
  for (let k = 0; k < BODY_SEGMENTS; k++) httpMessages += res.push(segment, i).length;
}
const httpRate = flowsPerSec((i) => httpFlow(i, {}));
const summaryRate = flowsPerSec((i) => httpFlow(i, { bodies: false, headers: ['host'] }));
const llhttpMessages = { n: 0 };
const llhttpRate = flowsPerSec((i) => {
  llhttp(HTTPParser.REQUEST, llhttpMessages).execute(requests[i % requests.length]!);
  const res = llhttp(HTTPParser.RESPONSE, llhttpMessages);
  res.execute(responseHead);
  for (let k = 0; k < BODY_SEGMENTS; k++) res.execute(segment);
});
console.log(`per flow http1 (GET + 200, ${BODY_SEGMENTS} body segments): ours ${(httpRate / 1000).toFixed(0)}k flows/s, llhttp ${(llhttpRate / 1000).toFixed(0)}k flows/s` +
  ` -> ours at ${(httpRate / llhttpRate).toFixed(2)}x llhttp's rate; keeping no bodies and only Host` +
  ` ${(summaryRate / 1000).toFixed(0)}k flows/s (${(summaryRate / llhttpRate).toFixed(2)}x); messages ${httpMessages}/${llhttpMessages.n * 2}`);

const { ch, sh } = fixtureHellos();
let hellosOk = 0;
let fieldCount = 0;
const tlsRate = flowsPerSec(() => {
  const c = parseClientHello(ch);
  const s = parseServerHello(sh);
  if (c && c !== 'incomplete' && s && s !== 'incomplete') {
    hellosOk++;
    fieldCount += helloFields(c).length;
  }
});
console.log(`per flow tls (ClientHello ${ch.length} B + ServerHello ${sh.length} B, and the hello's packed fields): ${(tlsRate / 1000).toFixed(0)}k flows/s;` +
  ` parsed ${hellosOk} (${fieldCount / hellosOk} fields each)`);

const dnsPairs = Array.from({ length: 1000 }, (_, i) => [
  dnsPacket.encode({ type: 'query', id: i, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name: `host${i}.bench.test` }] }),
  dnsPacket.encode({ type: 'response', id: i, questions: [{ type: 'A', name: `host${i}.bench.test` }], answers: [{ type: 'A', name: `host${i}.bench.test`, data: '10.9.8.7' }] }),
] as const);
let dnsOk = 0;
const dnsRate = flowsPerSec((i) => {
  const [q, r] = dnsPairs[i % dnsPairs.length]!;
  if (parseDns(q, false) && parseDns(r, false)) dnsOk++;
});
console.log(`per flow dns (A query + response): ${(dnsRate / 1000).toFixed(0)}k flows/s; parsed ${dnsOk}`);
