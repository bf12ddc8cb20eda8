// Benchmark: `tapscope flows FILE --json` against `tshark -r FILE -q -z conv,tcp` on a large generated capture
// (default 1 GiB; BENCH_SIZE_MB shrinks it) with many TLS, HTTP and DNS flows, BENCH_ROUNDS (default 3) runs
// of each, interleaved; prints best and median wall time, CPU and peak RSS of both and their ratios; the same
// on a capture of the same flows with BENCH_INTERLEAVE (default 256; 0 skips) of them in progress at once, as
// on a real link (random ISNs, ephemeral ports); the RSS
// for the same flows carrying a quarter of the bytes (memory must follow flows, not bytes), and both tools on
// BENCH_MANY_FLOWS (default 1,000,000; 0 skips) flows of one packet each, and on BENCH_HOOKED_FLOWS
// (default 20,000; 0 skips) TLS flows with the decrypted records of their hooks, as ebpf mode captures
// them. Every tapscope run is a cold first run: tapscope keeps no index or cache between runs. Both tools
// read the file from the page cache (each capture is read through once before its first measured run).
// TAPSCOPE_THREADS is passed through (default: tapscope picks its threads by idle cores, one on a 2-core
// machine; TAPSCOPE_THREADS=2 measures the threaded path).
// Never gates on absolute times.
import { closeSync, existsSync, openSync, readFileSync, readSync, renameSync, statSync, writeSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { availableParallelism, loadavg } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import dnsPacket from 'dns-packet';
import { encodeEpb, encodeIdb, encodeShb, tsFromMs } from '../../src/pcapng/writer.js';
import { parseBuffer } from '../../src/pcapng/reader.js';
import { decodePacket } from '../../src/flows/decode.js';
import { CaptureBuilder, ethernet, ipPacket, tcpConversation } from '../unit/core-packet-builder.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * The ClientHello `ch` as the i-th client would send it: its 32 random bytes its own, as every real client draws them
 * per handshake (one hello copied into every flow would be one TLS session seen on every connection open at once).
 */
function helloOf(ch: Buffer, i: number): Buffer {
  const h = Buffer.from(ch);
  h.writeUInt32BE(i >>> 0, 11);
  h.writeUInt32BE(Math.imul(i, 0x9e3779b1) >>> 0, 15);
  return h;
}

function clientHello(): Buffer {
  for (const b of parseBuffer(readFileSync(join(ROOT, 'test/fixtures/pcapng/loopback-mix.pcapng')))) {
    if (b.type !== 'epb') continue;
    const d = decodePacket(b.iface.linkType, b.data);
    if (d && d.dstPort === 18443 && d.payload.length > 0) return Buffer.from(d.payload);
  }
  throw new Error('no ClientHello in the fixture');
}

class Out {
  private fd: number;
  private parts: Buffer[] = [];
  private queued = 0;
  bytes = 0;
  packets = 0;
  ts = 1_732_620_000_000;
  constructor(path: string) { this.fd = openSync(path, 'w'); }
  raw(b: Buffer): void {
    this.parts.push(b);
    this.queued += b.length;
    this.bytes += b.length;
    if (this.queued > 4 << 20) this.flush();
  }
  packet(frame: Buffer): void {
    this.ts += 0.01;
    this.packets++;
    this.raw(encodeEpb({ interfaceId: 0, ...tsFromMs(this.ts), data: frame }));
  }
  flush(): void {
    const b = Buffer.concat(this.parts, this.queued);
    let o = 0;
    while (o < b.length) o += writeSync(this.fd, b, o, b.length - o);
    this.parts = [];
    this.queued = 0;
  }
  close(): void { this.flush(); closeSync(this.fd); }
}

export interface GeneratedCapture { path: string; flows: number; tcpFlows: number; packets: number; bytes: number }

/** How flows lie in a generated capture. */
export interface CaptureShape {
  /**
   * Flows in progress at once, their packets mixed at random (1, the default: each flow's packets follow the
   * previous flow's). Above 1 the flows also look like a real client's: random initial sequence numbers,
   * ephemeral ports (32768-60999), addresses on both sides of 128.0.0.0.
   */
  interleave?: number;
  /** IPv6 addresses instead of IPv4 (with interleave above 1) */
  ipv6?: boolean;
}

/** A pcapng enhanced packet block's size for a frame of `len` bytes (no options). */
const epbSize = (len: number): number => 32 + ((len + 3) & ~3);

/**
 * Writes a capture of about `sizeMb` MiB. `flows` fixes the number of flows (default: what fills the size
 * with ~16 KiB per flow), so the same flows can be written with fewer bytes.
 */
export function generateCapture(path: string, sizeMb: number, flowsWanted?: number, shape: CaptureShape = {}): GeneratedCapture {
  const metaPath = `${path}.json`;
  if (existsSync(path) && existsSync(metaPath)) return JSON.parse(readFileSync(metaPath, 'utf8')) as GeneratedCapture;
  const target = sizeMb * 1024 * 1024;
  const flowCount = flowsWanted ?? Math.max(10, Math.floor(target / (16 * 1024)));
  const perFlow = target / flowCount;
  const mixed = (shape.interleave ?? 1) > 1;
  const v6 = mixed && shape.ipv6 === true;
  const ch = clientHello();
  const appData = Buffer.alloc(1400);
  for (let i = 0; i < appData.length; i++) appData[i] = (i * 7919) & 0xff;
  appData[0] = 0x17; appData[1] = 0x03; appData[2] = 0x03; appData.writeUInt16BE(1395, 3);
  const serverHello = Buffer.concat([Buffer.from([0x16, 0x03, 0x03, 0x00, 0x40, 0x02, 0x00, 0x00, 0x3c, 0x03, 0x03]), Buffer.alloc(0x3c)]);
  // a fixed seed: the same capture on every machine
  let seed = 0x7a95c0de;
  const rnd = (): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed >>> 8;
  };
  let tcpFlows = 0;
  // One flow's frames, in order; `own` counts the bytes its blocks take, which sizes its bulk transfer.
  function* flow(i: number): Generator<Buffer> {
    let own = 0;
    const frame = (f: Buffer): Buffer => { own += epbSize(f.length); return f; };
    const client = !mixed ? `10.${100 + ((i >> 16) & 63)}.${(i >> 8) & 255}.${i & 255}`
      : v6 ? `2001:db8:${(i >> 16).toString(16)}::${(i & 0xffff).toString(16)}`
        : i % 2 ? `192.168.${(i >> 8) & 255}.${i & 255}` : `172.${16 + ((i >> 16) & 15)}.${(i >> 8) & 255}.${i & 255}`;
    const server = !mixed ? `10.250.${(i >> 8) & 15}.${1 + (i % 200)}`
      : v6 ? `fd00:${i % 3 ? 'a' : 'b'}::${(1 + (i % 200)).toString(16)}`
        : i % 3 ? `10.${(i >> 12) & 255}.${(i >> 4) & 255}.${1 + (i % 200)}` : `203.0.113.${1 + (i % 250)}`;
    const sport = mixed ? 32768 + (rnd() % 28232) : 1024 + (i % 60000);
    const kind = i % 10;
    if (kind === 9) {
      const q = dnsPacket.encode({ type: 'query', id: i & 0xffff, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name: `host${i}.bench.test` }] });
      const r = dnsPacket.encode({ type: 'response', id: i & 0xffff, questions: [{ type: 'A', name: `host${i}.bench.test` }], answers: [{ type: 'A', name: `host${i}.bench.test`, data: '10.9.8.7' }] });
      yield frame(ethernet(ipPacket('udp', { src: client, dst: server, sport, dport: 53, payload: q })));
      yield frame(ethernet(ipPacket('udp', { src: server, dst: client, sport: 53, dport: sport, payload: r })));
      return;
    }
    tcpFlows++;
    const dport = kind < 6 ? 443 : 80;
    const C = { src: client, dst: server, sport, dport };
    const S = { src: server, dst: client, sport: dport, dport: sport };
    let cs = mixed ? rnd() * 256 + (i & 255) : 1000 + i;
    let ss = mixed ? rnd() * 256 + (i & 255) : 900000 + i;
    const seq = (n: number): number => n % 2 ** 32;
    yield frame(ethernet(ipPacket('tcp', { ...C, seq: seq(cs), flags: 0x02 })));
    yield frame(ethernet(ipPacket('tcp', { ...S, seq: seq(ss), ack: seq(cs + 1), flags: 0x12 })));
    cs++; ss++;
    yield frame(ethernet(ipPacket('tcp', { ...C, seq: seq(cs), ack: seq(ss), flags: 0x10 })));
    const first = dport === 443 ? helloOf(ch, i) : Buffer.from(`GET /item/${i}?q=${i % 97} HTTP/1.1\r\nHost: www${i % 50}.bench.test\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n`);
    yield frame(ethernet(ipPacket('tcp', { ...C, seq: seq(cs), ack: seq(ss), payload: first })));
    cs += first.length;
    // bulk data server → client until this flow has its share of the file (an HTTP body of exactly that size)
    const bulk = Math.max(1, Math.ceil((perFlow - own - 250) / (appData.length + 86)));
    const reply = dport === 443 ? serverHello : Buffer.from(`HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: ${bulk * appData.length}\r\n\r\n`);
    yield frame(ethernet(ipPacket('tcp', { ...S, seq: seq(ss), ack: seq(cs), payload: reply })));
    ss += reply.length;
    for (let k = 0; k < bulk; k++) {
      yield frame(ethernet(ipPacket('tcp', { ...S, seq: seq(ss), ack: seq(cs), payload: appData })));
      ss += appData.length;
    }
    yield frame(ethernet(ipPacket('tcp', { ...C, seq: seq(cs), ack: seq(ss), flags: 0x11 })));
    yield frame(ethernet(ipPacket('tcp', { ...S, seq: seq(ss), ack: seq(cs + 1), flags: 0x11 })));
  }
  const tmp = `${path}.partial`;
  const out = new Out(tmp);
  out.raw(encodeShb({ hardware: 'x86_64', os: 'Linux bench', userappl: 'tapscope flows-bench' }));
  out.raw(encodeIdb({ linkType: 1, snapLen: 262144, name: 'eth0', description: 'ifindex=2', tsresol: 9 }));
  const width = Math.max(1, shape.interleave ?? 1);
  const active: Generator<Buffer>[] = [];
  let next = 0;
  while (next < flowCount || active.length > 0) {
    while (active.length < width && next < flowCount) active.push(flow(next++));
    const j = width === 1 ? 0 : rnd() % active.length;
    const r = active[j]!.next();
    if (r.done) {
      active[j] = active[active.length - 1]!;
      active.pop();
    } else {
      out.packet(r.value);
    }
  }
  out.close();
  renameSync(tmp, path);
  const meta: GeneratedCapture = { path, flows: flowCount, tcpFlows, packets: out.packets, bytes: statSync(path).size };
  writeFileSyncJson(metaPath, meta);
  return meta;
}

/**
 * Writes `flows` flows of one packet each (a TCP SYN, or a UDP datagram every fourth flow): the per-flow cost
 * with nothing to dissect, the worst case for loading a capture with many short connections.
 */
export function generateOnePacketFlows(path: string, flows: number): GeneratedCapture {
  const metaPath = `${path}.json`;
  if (existsSync(path) && existsSync(metaPath)) return JSON.parse(readFileSync(metaPath, 'utf8')) as GeneratedCapture;
  const tmp = `${path}.partial`;
  const out = new Out(tmp);
  out.raw(encodeShb({ hardware: 'x86_64', os: 'Linux bench', userappl: 'tapscope flows-bench' }));
  out.raw(encodeIdb({ linkType: 1, snapLen: 262144, name: 'eth0', description: 'ifindex=2', tsresol: 9 }));
  const payload = Buffer.from('ping');
  let tcpFlows = 0;
  for (let i = 0; i < flows; i++) {
    const seg = { src: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, dst: `10.200.${(i >> 10) & 63}.${1 + (i % 250)}`, sport: 1024 + (i % 60000), dport: 443, seq: i, flags: 0x02 };
    if (i % 4 === 3) out.packet(ethernet(ipPacket('udp', { ...seg, dport: 5353 + (i & 7), payload })));
    else { tcpFlows++; out.packet(ethernet(ipPacket('tcp', seg))); }
  }
  out.close();
  renameSync(tmp, path);
  const meta: GeneratedCapture = { path, flows, tcpFlows, packets: out.packets, bytes: statSync(path).size };
  writeFileSyncJson(metaPath, meta);
  return meta;
}

/**
 * Writes `flows` TLS flows as the helper captures them in ebpf mode: each a handshake and encrypted data on
 * the wire, and `records` decrypted records from its TLS hooks (an HTTP/1 request, a response head, then
 * body records of 1200 bytes), each with its attribution comment.
 */
export function generateHookedFlows(path: string, flows: number, records: number): GeneratedCapture {
  const metaPath = `${path}.json`;
  if (existsSync(path) && existsSync(metaPath)) return JSON.parse(readFileSync(metaPath, 'utf8')) as GeneratedCapture;
  const tmp = `${path}.partial`;
  const fd = openSync(tmp, 'w');
  const write = (buf: Buffer): void => {
    for (let o = 0; o < buf.length;) o += writeSync(fd, buf, o, buf.length - o);
  };
  const ch = clientHello();
  const body = Buffer.alloc(1200, 0x61);
  const who = { comm: 'curl', lib: 'openssl' };
  const b = new CaptureBuilder();
  let packets = 0;
  for (let i = 0; i < flows; i++) {
    const client = { ip: `10.1.${(i >> 8) & 255}.${i & 255}`, port: 32768 + (i % 20000) };
    const server = { ip: '10.2.0.1', port: 443 };
    tcpConversation(b, client, server, [helloOf(ch, i)], [Buffer.alloc(1400, 0x17)], { fin: false });
    const pid = 100 + (i % 50);
    b.tls(client, server, 'out', Buffer.from(`GET /x/${i} HTTP/1.1\r\nHost: api.bench.test\r\n\r\n`), { pid, ...who });
    b.tls(server, client, 'in', Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${(records - 2) * body.length}\r\n\r\n`), { pid, ...who });
    for (let r = 2; r < records; r++) b.tls(server, client, 'in', body, { pid, ...who });
    packets += 5 + records;
    if (i % 1000 === 999) write(b.take());
  }
  write(b.take());
  closeSync(fd);
  renameSync(tmp, path);
  const meta: GeneratedCapture = { path, flows, tcpFlows: flows, packets, bytes: statSync(path).size };
  writeFileSyncJson(metaPath, meta);
  return meta;
}

function writeFileSyncJson(path: string, v: unknown): void {
  const fd = openSync(path, 'w');
  writeSync(fd, JSON.stringify(v));
  closeSync(fd);
}

export interface Measured { wallS: number; cpuS: number; rssMb: number; stdout: string; code: number | null }

/** Runs a command under /usr/bin/time -v: wall time and peak RSS. */
export function measure(cmd: string, args: string[]): Measured {
  const r = spawnSync('/usr/bin/time', ['-v', cmd, ...args], { encoding: 'utf8', maxBuffer: 1 << 30, cwd: ROOT });
  const wall = /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)/.exec(r.stderr);
  const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr);
  const user = /User time \(seconds\): ([\d.]+)/.exec(r.stderr);
  const sys = /System time \(seconds\): ([\d.]+)/.exec(r.stderr);
  const wallS = wall ? Number(wall[1] ?? 0) * 3600 + Number(wall[2]) * 60 + Number(wall[3]) : NaN;
  return { wallS, cpuS: Number(user?.[1] ?? NaN) + Number(sys?.[1] ?? NaN), rssMb: rss ? Number(rss[1]) / 1024 : NaN, stdout: r.stdout, code: r.status };
}

/** The tapscope CLI: the build when present (bench.sh builds), else the sources through tsx. */
export function tapscopeArgv(args: string[]): [string, string[]] {
  const built = join(ROOT, 'dist/src/cli/main.js');
  if (existsSync(built) && process.env.BENCH_FROM_SOURCE !== '1') return [process.execPath, [built, ...args]];
  return [process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args]];
}

export interface BenchResult {
  capture: GeneratedCapture;
  /** the best (lowest wall time) of the rounds */
  tapscope: Measured;
  tshark: Measured;
  tapscopeRuns: Measured[];
  tsharkRuns: Measured[];
  tapscopeTcpFlows: number;
  tsharkConversations: number;
  /** the same size of capture with flows interleaved (CaptureShape), measured the same way */
  interleaved: (Rounds & { capture: GeneratedCapture; width: number; tapscope: Measured; tshark: Measured }) | null;
  lighter: { capture: GeneratedCapture; tapscope: Measured } | null;
  manyFlows: { capture: GeneratedCapture; tapscope: Measured; tshark: Measured; tapscopeFlows: number } | null;
  /** TLS flows with their hooks' decrypted records (ebpf mode), one run of each tool */
  hooked: { capture: GeneratedCapture; records: number; tapscope: Measured; tshark: Measured; tapscopeFlows: number; tsharkConversations: number } | null;
}

/**
 * Reads the capture once, untimed, so that the first measured run of either tool finds it in the page cache
 * too (a capture generated by an earlier run may have been evicted since; the tool run first paid for it).
 */
function warm(path: string): void {
  const fd = openSync(path, 'r');
  const buf = Buffer.allocUnsafe(1 << 20);
  try {
    while (readSync(fd, buf, 0, buf.length, null) > 0) { /* read through */ }
  } finally {
    closeSync(fd);
  }
}

function tapscopeFlows(path: string): Measured {
  const [cmd, argv] = tapscopeArgv(['flows', path, '--json']);
  return measure(cmd, argv);
}

function tsharkConv(path: string): Measured {
  return measure('tshark', ['-r', path, '-q', '-z', 'conv,tcp']);
}

function best(runs: Measured[]): Measured {
  return runs.reduce((a, b) => (b.wallS < a.wallS ? b : a));
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

const lines = (text: string, pred: (l: string) => boolean): number => text.split('\n').filter(pred).length;

/** Both tools on one capture, `rounds` times, interleaved. */
interface Rounds { tapscopeRuns: Measured[]; tsharkRuns: Measured[]; tapscopeTcpFlows: number; tsharkConversations: number }

function rounds(path: string, count: number): Rounds {
  const r: Rounds = { tapscopeRuns: [], tsharkRuns: [], tapscopeTcpFlows: -1, tsharkConversations: -1 };
  warm(path);
  // why interleaved: a burst of load from other work on a shared machine hits both tools alike
  for (let i = 0; i < Math.max(1, count); i++) {
    const t = tapscopeFlows(path);
    const tcp = lines(t.stdout, (l) => l.includes('"transport":"tcp"'));
    if (r.tapscopeTcpFlows >= 0 && tcp !== r.tapscopeTcpFlows) throw new Error(`tapscope found ${tcp} TCP flows, ${r.tapscopeTcpFlows} in an earlier round`);
    r.tapscopeTcpFlows = tcp;
    t.stdout = '';
    r.tapscopeRuns.push(t);
    const w = tsharkConv(path);
    r.tsharkConversations = lines(w.stdout, (l) => l.includes('<->'));
    w.stdout = '';
    r.tsharkRuns.push(w);
  }
  return r;
}

export function runFlowsBench(
  sizeMb: number, opts: { lighter?: boolean; dir?: string; rounds?: number; manyFlows?: number; interleave?: number; hooked?: number } = {},
): BenchResult {
  const dir = opts.dir ?? '/tmp';
  // (-r2: every flow's hello has a random of its own; the files of the generator before are not reused)
  const capture = generateCapture(join(dir, `tapscope-flows-bench-${sizeMb}-r2.pcapng`), sizeMb);
  const main = rounds(capture.path, opts.rounds ?? 1);
  let interleaved: BenchResult['interleaved'] = null;
  if (opts.interleave && opts.interleave > 1) {
    const ic = generateCapture(join(dir, `tapscope-flows-bench-${sizeMb}-x${opts.interleave}-r2.pcapng`), sizeMb, undefined, { interleave: opts.interleave });
    const r = rounds(ic.path, opts.rounds ?? 1);
    interleaved = { capture: ic, width: opts.interleave, tapscope: best(r.tapscopeRuns), tshark: best(r.tsharkRuns), ...r };
  }
  let lighter: BenchResult['lighter'] = null;
  if (opts.lighter) {
    const lc = generateCapture(join(dir, `tapscope-flows-bench-${sizeMb}-quarter-r2.pcapng`), Math.max(1, Math.round(sizeMb / 4)), capture.flows);
    warm(lc.path);
    const m = tapscopeFlows(lc.path);
    m.stdout = '';
    lighter = { capture: lc, tapscope: m };
  }
  let manyFlows: BenchResult['manyFlows'] = null;
  if (opts.manyFlows) {
    const mc = generateOnePacketFlows(join(dir, `tapscope-flows-bench-${opts.manyFlows}-flows.pcapng`), opts.manyFlows);
    warm(mc.path);
    const t = tapscopeFlows(mc.path);
    const tapscopeFlowCount = lines(t.stdout, (l) => l.startsWith('{'));
    t.stdout = '';
    const w = tsharkConv(mc.path);
    w.stdout = '';
    manyFlows = { capture: mc, tapscope: t, tshark: w, tapscopeFlows: tapscopeFlowCount };
  }
  let hooked: BenchResult['hooked'] = null;
  if (opts.hooked) {
    const records = 22;
    const hc = generateHookedFlows(join(dir, `tapscope-flows-bench-hooked-${opts.hooked}-r2.pcapng`), opts.hooked, records);
    warm(hc.path);
    const t = tapscopeFlows(hc.path);
    const tapscopeFlowCount = lines(t.stdout, (l) => l.startsWith('{'));
    t.stdout = '';
    const w = tsharkConv(hc.path);
    const conversations = lines(w.stdout, (l) => l.includes('<->'));
    w.stdout = '';
    hooked = { capture: hc, records: records * opts.hooked, tapscope: t, tshark: w, tapscopeFlows: tapscopeFlowCount, tsharkConversations: conversations };
  }
  return { capture, tapscope: best(main.tapscopeRuns), tshark: best(main.tsharkRuns), ...main, interleaved, lighter, manyFlows, hooked };
}

function main(): void {
  const sizeMb = Number(process.env.BENCH_SIZE_MB ?? 1024);
  const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
  const manyFlows = Number(process.env.BENCH_MANY_FLOWS ?? 1_000_000);
  const t0 = Date.now();
  const interleave = Number(process.env.BENCH_INTERLEAVE ?? 256);
  const hooked = Number(process.env.BENCH_HOOKED_FLOWS ?? 20_000);
  const r = runFlowsBench(sizeMb, { lighter: true, rounds, manyFlows, interleave, hooked });
  const mb = (n: number) => (n / 1024 / 1024).toFixed(0);
  const s = (m: Measured) => `${m.wallS.toFixed(2)} s wall, ${m.cpuS.toFixed(2)} s CPU, peak RSS ${m.rssMb.toFixed(0)} MiB`;
  const med = (runs: Measured[], k: 'wallS' | 'cpuS' | 'rssMb') => median(runs.map((m) => m[k]));
  console.log(`flows-bench: ${mb(r.capture.bytes)} MiB, ${r.capture.flows} flows (${r.capture.tcpFlows} TCP), ${r.capture.packets} packets, ${rounds} interleaved rounds, ${availableParallelism()} CPUs, load ${loadavg()[0]!.toFixed(1)} (setup+runs ${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  console.log(`  tapscope flows --json: best ${s(r.tapscope)}; median ${med(r.tapscopeRuns, 'wallS').toFixed(2)} s wall; ${r.tapscopeTcpFlows} TCP flows (exit ${r.tapscope.code}; cold runs, no cache)`);
  console.log(`  tshark -z conv,tcp   : best ${s(r.tshark)}; median ${med(r.tsharkRuns, 'wallS').toFixed(2)} s wall; ${r.tsharkConversations} conversations (exit ${r.tshark.code})`);
  console.log(`  ratio                : tapscope ${(r.tshark.wallS / r.tapscope.wallS).toFixed(1)}x faster best vs best, ${(med(r.tsharkRuns, 'wallS') / med(r.tapscopeRuns, 'wallS')).toFixed(1)}x median vs median, ${(med(r.tsharkRuns, 'cpuS') / med(r.tapscopeRuns, 'cpuS')).toFixed(1)}x by median CPU time; ${(med(r.tapscopeRuns, 'rssMb') / med(r.tsharkRuns, 'rssMb')).toFixed(2)}x tshark's memory`);
  if (r.interleaved) {
    const x = r.interleaved;
    console.log(`  interleaved capture  : the same flows, ${x.width} in progress at once (random ISNs, ephemeral ports), ${x.capture.packets} packets: tapscope best ${s(x.tapscope)}, median ${med(x.tapscopeRuns, 'wallS').toFixed(2)} s; tshark best ${s(x.tshark)}, median ${med(x.tsharkRuns, 'wallS').toFixed(2)} s; ${x.tapscopeTcpFlows} TCP flows, ${x.tsharkConversations} conversations`);
    console.log(`  ratio (interleaved)  : tapscope ${(x.tshark.wallS / x.tapscope.wallS).toFixed(1)}x faster best vs best, ${(med(x.tsharkRuns, 'wallS') / med(x.tapscopeRuns, 'wallS')).toFixed(1)}x median vs median, ${(med(x.tsharkRuns, 'cpuS') / med(x.tapscopeRuns, 'cpuS')).toFixed(1)}x by median CPU time; ${(med(x.tapscopeRuns, 'rssMb') / med(x.tsharkRuns, 'rssMb')).toFixed(2)}x tshark's memory`);
  }
  if (r.lighter) {
    // the time of the same flows with a quarter of the bytes, against the full capture's median: what of a run is per
    // flow and per packet rather than per byte (read, walk), which is where the time to gain is
    console.log(`  same flows, 1/4 bytes: ${s(r.lighter.tapscope)} (RSS ratio full/quarter ${(r.tapscope.rssMb / r.lighter.tapscope.rssMb).toFixed(2)}; bytes ratio ${(r.capture.bytes / r.lighter.capture.bytes).toFixed(1)}; `
      + `time ${(r.lighter.tapscope.wallS / med(r.tapscopeRuns, 'wallS')).toFixed(2)} of the full capture's median, ${r.lighter.capture.packets} packets against ${r.capture.packets})`);
  }
  if (r.hooked) {
    const h = r.hooked;
    console.log(`  ${h.capture.flows} hooked TLS flows (${h.records} decrypted records, ${mb(h.capture.bytes)} MiB, as in ebpf mode): tapscope ${s(h.tapscope)}, ${h.tapscopeFlows} flows; tshark ${s(h.tshark)}, ${h.tsharkConversations} conversations; tapscope ${(h.tshark.wallS / h.tapscope.wallS).toFixed(1)}x faster, ${(h.tapscope.rssMb / h.tshark.rssMb).toFixed(2)}x tshark's memory`);
  }
  if (r.manyFlows) {
    const m = r.manyFlows;
    console.log(`  ${m.capture.flows} one-packet flows (${mb(m.capture.bytes)} MiB): tapscope ${s(m.tapscope)}, ${m.tapscopeFlows} flows; tshark ${s(m.tshark)}; tapscope ${(m.tshark.wallS / m.tapscope.wallS).toFixed(1)}x faster, ${(m.tapscope.rssMb / m.tshark.rssMb).toFixed(2)}x tshark's memory`);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main();
