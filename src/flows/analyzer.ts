// The flow table: pcapng blocks in (one or more node streams), Flow records out. Decodes packets, orients
// and counts flows, reassembles TCP for the dissectors (TLS hellos, HTTP/1, HTTP/2, DNS), matches the
// helper's decrypted plaintext records and metadata blocks to flows, and gives each TLS side its verdict.
import { createHash } from 'node:crypto';
import { parseClientHello, parseServerHello, ja3, ja4, tlsVersionName, cipherName, type ClientHello, type ServerHello } from '../dissect/tls.js';
import { Http1Parser, looksLikeHttp1, type HttpMessage } from '../dissect/http1.js';
import { Http2Parser, looksLikeHttp2 } from '../dissect/http2.js';
import { parseDns } from '../dissect/dns.js';
import { decideSide } from '../verdict/index.js';
import type { DnsSummary, Flow, HttpExchangeSummary } from '../model/flow.js';
import type { HttpExchangeDetail, FlowDetail } from '../api/contract.js';
import { LINKTYPE_WIRESHARK_UPPER_PDU, TAPSCOPE_PEN, type PacketBlock, type PcapngBlock } from '../pcapng/types.js';
import { parseExportedPdu, parseTlsComment } from '../pcapng/exported-pdu.js';
import { decodePacket, PROTO_TCP, PROTO_UDP, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, type DecodedPacket } from './decode.js';
import { TcpReassembler, DEFAULT_LIMITS, type ReassemblyLimits, type StreamSink } from './reassembly.js';
import { NodeMeta, normalizeIp } from './node-meta.js';

export interface AnalyzerOptions {
  /** Bytes per direction handed to non-HTTP dissectors before reassembly stops (default 64 KiB). */
  dissectLimit?: number;
  /** Exchanges kept per flow with headers and bodies (default 200); more are only summarised. */
  maxExchangesPerFlow?: number;
  reassembly?: ReassemblyLimits;
  /** Called for every packet (and decrypted record) with the id of the flow it was counted in. */
  onPacket?: ((block: PacketBlock, flowId: string | null) => void) | null;
}

export interface AnalyzerCounters {
  packets: number;
  bytes: number;
  nonIp: number;
  otherProto: number;
  fragments: number;
  tlsRecords: number;
  tlsRecordsUnmatched: number;
  retransmittedBytes: number;
  gaps: number;
}

type App = 'classify' | 'tls' | 'http' | 'http2' | 'grpc' | 'dns' | 'ssh' | 'unknown';

const FIRST_BYTES = 256;
const HEAD_CAP = 64 * 1024;
const BODY_TEXT_CAP = 16 * 1024;
const MAX_DNS_PER_FLOW = 50;

type Side = 'client' | 'server';

interface DirState {
  reasm: TcpReassembler | null;
  first: Buffer | null;
  head: Buffer | null;
  http1: Http1Parser | null;
  http2: Http2Parser | null;
  done: boolean;
  delivered: number;
}

interface DecryptedDir {
  feeder: Side;
  http1: Http1Parser | null;
  http2: Http2Parser | null;
}

interface FlowState {
  flow: Flow;
  key: string;
  node: string;
  transport: 'tcp' | 'udp';
  app: App;
  closed: boolean;
  c2s: DirState;
  s2c: DirState;
  ch: ClientHello | null;
  sh: ServerHello | null;
  chDone: boolean;
  shDone: boolean;
  plaintext: { client: { library: string; bytes: number } | null; server: { library: string; bytes: number } | null };
  tlsPid: { client: { pid: number; comm: string } | null; server: { pid: number; comm: string } | null };
  decrypted: { c2s: DecryptedDir | null; s2c: DecryptedDir | null };
  exchanges: HttpExchangeDetail[];
  exchangeStreams: (number | undefined)[];
  exchangesDropped: number;
  resolvedAt: number;
  version: number;
}

interface StreamState {
  fixedNode: string | null;
  node: string;
  namedByRecord: boolean;
  meta: NodeMeta | null;
}

function newDir(): DirState {
  return { reasm: null, first: null, head: null, http1: null, http2: null, done: false, delivered: 0 };
}

function appendCapped(prev: Buffer | null, chunk: Buffer, cap: number): Buffer {
  if (prev && prev.length >= cap) return prev;
  const take = chunk.subarray(0, cap - (prev?.length ?? 0));
  return prev ? Buffer.concat([prev, take]) : Buffer.from(take);
}

function bodyText(b: Buffer): string | null {
  if (b.length === 0) return null;
  const slice = b.subarray(0, BODY_TEXT_CAP);
  let ctl = 0;
  for (const c of slice) if (c < 9 || (c > 13 && c < 32)) ctl++;
  if (ctl > slice.length / 20) return `[${b.length} bytes of binary data]`;
  const text = slice.toString('utf8');
  return b.length > BODY_TEXT_CAP ? `${text}…` : text;
}

function header(headers: [string, string][], name: string): string | null {
  const n = name.toLowerCase();
  for (const [k, v] of headers) if (k.toLowerCase() === n) return v;
  return null;
}

export class Analyzer {
  private readonly opts: Required<Omit<AnalyzerOptions, 'onPacket'>>;
  private readonly observe: ((block: PacketBlock, flowId: string | null) => void) | null;
  private readonly table = new Map<string, FlowState>();
  private readonly byId = new Map<string, FlowState>();
  private readonly states: FlowState[] = [];
  readonly nodes = new Map<string, NodeMeta>();
  private metaVersion = 0;
  private changes = 0;
  private snapshotVersion = -1;
  readonly counters: AnalyzerCounters = {
    packets: 0, bytes: 0, nonIp: 0, otherProto: 0, fragments: 0, tlsRecords: 0, tlsRecordsUnmatched: 0, retransmittedBytes: 0, gaps: 0,
  };
  firstTs: number | null = null;
  lastTs: number | null = null;

  constructor(options: AnalyzerOptions = {}) {
    this.opts = {
      dissectLimit: options.dissectLimit ?? 64 * 1024,
      maxExchangesPerFlow: options.maxExchangesPerFlow ?? 200,
      reassembly: options.reassembly ?? DEFAULT_LIMITS,
    };
    this.observe = options.onPacket ?? null;
  }

  /**
   * A consumer for one pcapng stream. `node` names the node the stream comes from; without it the node is
   * taken from the stream (the store's `node` record, else the helper's hostname), else "local".
   */
  stream(node?: string): (block: PcapngBlock) => void {
    const st: StreamState = { fixedNode: node ?? null, node: node ?? 'local', namedByRecord: false, meta: null };
    return (b) => this.onBlock(st, b);
  }

  get flowCount(): number {
    return this.states.length;
  }

  meta(node: string): NodeMeta {
    let m = this.nodes.get(node);
    if (!m) {
      m = new NodeMeta();
      this.nodes.set(node, m);
    }
    return m;
  }

  /** Changes whenever a block changed anything (queries cache on it). */
  get version(): number {
    return this.changes;
  }

  private onBlock(st: StreamState, b: PcapngBlock): void {
    this.changes++;
    switch (b.type) {
      case 'shb':
        st.node = st.fixedNode ?? 'local';
        st.namedByRecord = false;
        st.meta = null;
        break;
      case 'epb':
      case 'spb':
        if (b.iface.linkType === LINKTYPE_WIRESHARK_UPPER_PDU) {
          const id = this.onTlsRecord(st.node, b);
          if (this.observe) this.observe(b, id);
        } else {
          const m = st.meta ?? (st.meta = this.meta(st.node));
          m.packets++;
          m.bytes += b.origLen;
          const id = this.onPacket(st.node, b);
          if (this.observe) this.observe(b, id);
        }
        break;
      case 'custom':
        if (b.pen === TAPSCOPE_PEN && b.json) {
          if (!st.fixedNode && (b.json.t === 'node' || (b.json.t === 'capture' && !st.namedByRecord))) {
            const name = b.json.t === 'node' ? b.json.node : b.json.hostname;
            if (typeof name === 'string' && name && name !== st.node) { st.node = name; st.meta = null; }
            if (b.json.t === 'node') st.namedByRecord = true;
          }
          this.meta(st.node).apply(b.json);
          this.metaVersion++;
        }
        break;
      case 'isb':
        if (b.ifDrop !== null) this.meta(st.node).isbDrops.set(`${b.iface.section}:${b.iface.interfaceId}`, Number(b.ifDrop));
        break;
      default:
        break;
    }
  }

  // ---- packets ----

  private onPacket(node: string, b: PacketBlock): string | null {
    const c = this.counters;
    c.packets++;
    c.bytes += b.origLen;
    if (b.tsMs > 0) {
      if (this.firstTs === null || b.tsMs < this.firstTs) this.firstTs = b.tsMs;
      if (this.lastTs === null || b.tsMs > this.lastTs) this.lastTs = b.tsMs;
    }
    const d = decodePacket(b.iface.linkType, b.data);
    if (!d) { c.nonIp++; return null; }
    if (d.fragment) c.fragments++;
    if (d.proto !== PROTO_TCP && d.proto !== PROTO_UDP) { c.otherProto++; return null; }
    if (d.fragment && !d.firstFragment) return null;
    if (d.srcPort === 0 && d.dstPort === 0) { c.otherProto++; return null; }
    const transport = d.proto === PROTO_TCP ? 'tcp' : 'udp';
    const key = flowKey(node, transport, d.src, d.srcPort, d.dst, d.dstPort);
    let fs = this.table.get(key);
    const syn = transport === 'tcp' && (d.tcpFlags & TCP_SYN) !== 0 && (d.tcpFlags & TCP_ACK) === 0;
    if (fs && syn && fs.closed) fs = undefined; // port reused for a new connection
    if (!fs) fs = this.createFlow(node, transport, key, d, b.tsMs);
    const f = fs.flow;
    f.packets++;
    f.bytes += b.origLen;
    if (b.tsMs > f.lastSeen) f.lastSeen = b.tsMs;
    fs.version++;
    const fromClient = f.src.port === d.srcPort && f.src.ip === d.src;
    if (transport === 'tcp') this.onTcp(fs, d, fromClient, b.tsMs);
    else this.onUdp(fs, d, fromClient);
    return f.id;
  }

  private createFlow(node: string, transport: 'tcp' | 'udp', key: string, d: DecodedPacket, ts: number): FlowState {
    let srcIsClient: boolean;
    const flags = d.tcpFlags;
    if (transport === 'tcp' && flags & TCP_SYN) {
      srcIsClient = (flags & TCP_ACK) === 0;
    } else {
      const meta = this.nodes.get(node);
      const role = meta?.owner(transport, d.src, d.srcPort, d.dst, d.dstPort)?.role ?? meta?.owner(transport, d.dst, d.dstPort, d.src, d.srcPort)?.role;
      const srcRole = meta?.owner(transport, d.src, d.srcPort, d.dst, d.dstPort)?.role;
      if (srcRole === 'client' || srcRole === 'server') srcIsClient = srcRole === 'client';
      else if (role === 'client' || role === 'server') srcIsClient = role === 'server';
      else srcIsClient = d.srcPort > d.dstPort || (d.srcPort === d.dstPort && d.src > d.dst);
    }
    const client = srcIsClient ? { ip: d.src, port: d.srcPort } : { ip: d.dst, port: d.dstPort };
    const server = srcIsClient ? { ip: d.dst, port: d.dstPort } : { ip: d.src, port: d.srcPort };
    return this.addFlow(node, transport, key, client, server, ts);
  }

  private addFlow(node: string, transport: 'tcp' | 'udp', key: string, client: { ip: string; port: number }, server: { ip: string; port: number }, ts: number): FlowState {
    let id = createHash('sha1').update(`${node}|${transport}|${client.ip}|${client.port}|${server.ip}|${server.port}|${ts}`).digest('hex').slice(0, 16);
    while (this.byId.has(id)) id = createHash('sha1').update(id).digest('hex').slice(0, 16);
    const flow: Flow = {
      id, transport, src: client, dst: server, firstSeen: ts, lastSeen: ts, packets: 0, bytes: 0, process: null, peerProcess: null,
      node, pod: null, app: 'unknown', tls: null, http: [],
    };
    const fs: FlowState = {
      flow, key, node, transport, app: 'classify', closed: false, c2s: newDir(), s2c: newDir(), ch: null, sh: null, chDone: false, shDone: false,
      plaintext: { client: null, server: null }, tlsPid: { client: null, server: null }, decrypted: { c2s: null, s2c: null },
      exchanges: [], exchangeStreams: [], exchangesDropped: 0, resolvedAt: -1, version: 0,
    };
    if (transport === 'tcp') {
      fs.c2s.reasm = new TcpReassembler(this.sink(fs, true), this.opts.reassembly);
      fs.s2c.reasm = new TcpReassembler(this.sink(fs, false), this.opts.reassembly);
    }
    this.table.set(key, fs);
    this.byId.set(id, fs);
    this.states.push(fs);
    return fs;
  }

  private sink(fs: FlowState, c2s: boolean): StreamSink {
    return {
      data: (chunk, ts) => this.onStreamData(fs, c2s, chunk, ts),
      gap: () => this.onStreamGap(fs, c2s),
    };
  }

  private onTcp(fs: FlowState, d: DecodedPacket, fromClient: boolean, ts: number): void {
    const dir = fromClient ? fs.c2s : fs.s2c;
    if (d.tcpFlags & TCP_SYN) dir.reasm?.syn(d.seq);
    if (d.tcpFlags & (TCP_FIN | TCP_RST)) {
      fs.closed = true;
      if (d.tcpFlags & TCP_FIN && dir.http1 && !dir.done) this.onMessages(fs, dir.http1.end(), 'plain', ts);
    }
    if (d.payload.length > 0 && dir.reasm && !dir.reasm.isStopped) {
      const before = dir.reasm.retransmittedBytes;
      dir.reasm.segment(d.seq, d.payload, ts);
      this.counters.retransmittedBytes += dir.reasm.retransmittedBytes - before;
    }
  }

  private onUdp(fs: FlowState, d: DecodedPacket, fromClient: boolean): void {
    const dir = fromClient ? fs.c2s : fs.s2c;
    if (dir.first === null && d.payload.length > 0) dir.first = Buffer.from(d.payload.subarray(0, FIRST_BYTES));
    if (fs.flow.src.port !== 53 && fs.flow.dst.port !== 53 && fs.flow.dst.port !== 5353) {
      if (fs.app === 'classify') { fs.app = 'unknown'; fs.flow.app = 'unknown'; }
      return;
    }
    const msg = parseDns(d.payload, false);
    if (!msg) return;
    fs.app = 'dns';
    fs.flow.app = 'dns';
    const list = fs.flow.dns ?? (fs.flow.dns = []);
    const q = msg.questions[0];
    let entry = list.find((e) => e.id === msg.id && (e.query === (q?.name ?? null)));
    if (!entry) {
      if (list.length >= MAX_DNS_PER_FLOW) return;
      entry = { id: msg.id, query: q?.name ?? null, type: q?.type ?? null, rcode: null, answers: [] };
      list.push(entry);
    }
    if (msg.qr) {
      entry.rcode = msg.rcode;
      entry.answers = msg.answers.map((a) => `${a.type} ${a.data}`);
    }
  }

  // ---- reassembled streams ----

  private stopDir(dir: DirState): void {
    dir.done = true;
    dir.head = null;
    dir.http1 = null;
    dir.http2 = null;
    dir.reasm?.stop();
  }

  private onStreamGap(fs: FlowState, c2s: boolean): void {
    this.counters.gaps++;
    const dir = c2s ? fs.c2s : fs.s2c;
    if (dir.http1) this.onMessages(fs, dir.http1.gap(), 'plain', fs.flow.lastSeen);
    else if (dir.http2) this.onMessages(fs, dir.http2.gap(), 'plain', fs.flow.lastSeen);
    else if (fs.app === 'tls') {
      if (c2s && !fs.chDone) fs.chDone = true;
      if (!c2s && !fs.shDone) fs.shDone = true;
      this.stopDir(dir);
    } else if (fs.app === 'classify') {
      this.setApp(fs, 'unknown');
    }
  }

  private onStreamData(fs: FlowState, c2s: boolean, chunk: Buffer, ts: number): void {
    const dir = c2s ? fs.c2s : fs.s2c;
    dir.delivered += chunk.length;
    if (dir.first === null || dir.first.length < FIRST_BYTES) dir.first = appendCapped(dir.first, chunk, FIRST_BYTES);
    if (dir.done) return;
    switch (fs.app) {
      case 'classify':
        dir.head = appendCapped(dir.head, chunk, HEAD_CAP);
        this.classify(fs, c2s);
        return;
      case 'tls':
        dir.head = appendCapped(dir.head, chunk, HEAD_CAP);
        this.tlsHello(fs, c2s);
        return;
      case 'http':
      case 'http2':
      case 'grpc':
        this.feedPlainHttp(fs, dir, chunk, ts);
        return;
      default:
        this.stopDir(dir);
    }
  }

  private classify(fs: FlowState, c2s: boolean): void {
    const ch = fs.c2s.head;
    const sh = fs.s2c.head;
    if (sh && sh.length >= 4 && sh.toString('latin1', 0, 4) === 'SSH-') return this.setApp(fs, 'ssh');
    if (!ch || ch.length === 0) {
      if (!c2s && sh && sh.length >= HEAD_CAP) this.setApp(fs, 'unknown');
      return;
    }
    if (ch.length >= 4 && ch.toString('latin1', 0, 4) === 'SSH-') return this.setApp(fs, 'ssh');
    if (ch[0] === 0x16 && (ch.length < 2 || ch[1] === 0x03)) {
      if (ch.length >= 2) this.setApp(fs, 'tls');
      return;
    }
    if (looksLikeHttp2(ch)) {
      if (ch.length >= 24) this.setApp(fs, 'http2');
      return;
    }
    if (looksLikeHttp1(ch)) {
      if (ch.length >= 16 || ch.includes(0x20)) this.setApp(fs, 'http');
      return;
    }
    if (fs.flow.src.port === 53 || fs.flow.dst.port === 53) return this.setApp(fs, 'dns');
    this.setApp(fs, 'unknown');
  }

  private setApp(fs: FlowState, app: App): void {
    fs.app = app;
    fs.flow.app = app === 'classify' ? 'unknown' : app;
    const heads: [DirState, boolean][] = [[fs.c2s, true], [fs.s2c, false]];
    switch (app) {
      case 'tls':
        this.tlsHello(fs, true);
        this.tlsHello(fs, false);
        break;
      case 'http':
      case 'http2':
        for (const [dir, c2s] of heads) {
          if (app === 'http') dir.http1 = new Http1Parser();
          else dir.http2 = new Http2Parser(c2s ? 'client' : 'server');
          const head = dir.head;
          dir.head = null;
          if (head) this.feedPlainHttp(fs, dir, head, fs.flow.lastSeen);
        }
        break;
      case 'dns': {
        const head = fs.c2s.head;
        const msg = head ? parseDns(head, true) : null;
        if (msg && msg.questions[0]) {
          fs.flow.dns = [{ id: msg.id, query: msg.questions[0].name, type: msg.questions[0].type, rcode: null, answers: [] }];
        }
        this.stopDir(fs.c2s);
        this.stopDir(fs.s2c);
        break;
      }
      default:
        this.stopDir(fs.c2s);
        this.stopDir(fs.s2c);
    }
  }

  private tlsHello(fs: FlowState, c2s: boolean): void {
    const dir = c2s ? fs.c2s : fs.s2c;
    if (dir.done || !dir.head) return;
    if (c2s && !fs.chDone) {
      const r = parseClientHello(dir.head);
      if (r === 'incomplete' && dir.head.length < HEAD_CAP) return;
      fs.chDone = true;
      fs.ch = r === 'incomplete' ? null : r;
      if (fs.ch) this.applyClientHello(fs, fs.ch);
    } else if (!c2s && !fs.shDone) {
      const r = parseServerHello(dir.head);
      if (r === 'incomplete' && dir.head.length < HEAD_CAP) return;
      fs.shDone = true;
      fs.sh = r === 'incomplete' ? null : r;
      if (fs.sh) this.applyServerHello(fs, fs.sh);
    }
    this.stopDir(dir);
  }

  private ensureTls(fs: FlowState): NonNullable<Flow['tls']> {
    if (!fs.flow.tls) {
      fs.flow.tls = { sni: null, alpn: [], version: null, cipher: null, ja3: null, ja3Hash: null, ja4: null, client: null, server: null };
    }
    return fs.flow.tls;
  }

  private applyClientHello(fs: FlowState, ch: ClientHello): void {
    const tls = this.ensureTls(fs);
    tls.sni = ch.sni;
    tls.alpn = ch.alpn;
    const j3 = ja3(ch);
    tls.ja3 = j3.string;
    tls.ja3Hash = j3.hash;
    tls.ja4 = ja4(ch, 'tcp');
  }

  private applyServerHello(fs: FlowState, sh: ServerHello): void {
    const tls = this.ensureTls(fs);
    tls.version = tlsVersionName(sh.selectedVersion);
    tls.cipher = cipherName(sh.cipher);
    if (sh.alpn) tls.negotiatedAlpn = sh.alpn;
  }

  private feedPlainHttp(fs: FlowState, dir: DirState, chunk: Buffer, ts: number): void {
    // why: parsers keep views into what they are given; a copy keeps them from pinning the reader's 1 MiB chunks.
    const copy = Buffer.from(chunk);
    if (dir.http1) this.onMessages(fs, dir.http1.push(copy, ts), 'plain', ts);
    else if (dir.http2) {
      this.onMessages(fs, dir.http2.push(copy, ts), 'plain', ts);
      if (dir.http2.failed) this.stopDir(dir);
    }
  }

  // ---- exchanges ----

  private onMessages(fs: FlowState, msgs: HttpMessage[], source: 'plain' | 'decrypted', _ts: number): void {
    for (const m of msgs) {
      if (m.grpcMethod && (fs.app === 'http2' || fs.app === 'grpc')) { fs.app = 'grpc'; fs.flow.app = 'grpc'; }
      if (m.kind === 'request') {
        const host = header(m.headers, 'host') ?? header(m.headers, ':authority');
        const summary: HttpExchangeSummary = { method: m.method ?? null, host, path: m.path ?? null, status: null };
        fs.flow.http.push(summary);
        if (source === 'plain' && fs.s2c.http1 && m.method) fs.s2c.http1.expectResponseTo(m.method);
        if (fs.exchanges.length >= this.opts.maxExchangesPerFlow) { fs.exchangesDropped++; continue; }
        fs.exchanges.push({
          method: m.method ?? null, host, path: m.path ?? null, status: null, requestHeaders: m.headers, responseHeaders: [],
          requestBody: bodyText(m.body), responseBody: null, source, startedAt: m.ts,
        });
        fs.exchangeStreams.push(m.streamId);
      } else {
        let idx = -1;
        for (let i = 0; i < fs.exchanges.length; i++) {
          const e = fs.exchanges[i]!;
          if (e.source !== source || e.status !== null) continue;
          if (m.streamId !== undefined && fs.exchangeStreams[i] !== m.streamId) continue;
          idx = i;
          break;
        }
        if (idx < 0) {
          if (fs.exchanges.length >= this.opts.maxExchangesPerFlow) { fs.exchangesDropped++; continue; }
          fs.exchanges.push({
            method: null, host: null, path: null, status: null, requestHeaders: [], responseHeaders: [], requestBody: null, responseBody: null,
            source, startedAt: m.ts,
          });
          fs.exchangeStreams.push(m.streamId);
          fs.flow.http.push({ method: null, host: null, path: null, status: null });
          idx = fs.exchanges.length - 1;
        }
        const e = fs.exchanges[idx]!;
        e.status = m.status ?? 0;
        e.responseHeaders = m.headers;
        e.responseBody = bodyText(m.body);
        // why: summaries and exchanges are pushed together, so the same index names the same exchange
        // while nothing was dropped; after drops the summary list is longer and we match from its end.
        const offset = fs.flow.http.length - fs.exchanges.length;
        const s = fs.flow.http[idx + offset];
        if (s) s.status = e.status;
      }
    }
  }

  // ---- decrypted plaintext ----

  private onTlsRecord(node: string, b: PacketBlock): string | null {
    this.counters.tlsRecords++;
    const pdu = parseExportedPdu(b.data);
    const attrs = b.comments.map(parseTlsComment).find((x) => x !== null) ?? {};
    if (!pdu || !pdu.src || !pdu.dst) { this.counters.tlsRecordsUnmatched++; return null; }
    const src = { ip: normalizeIp(pdu.src.ip), port: pdu.src.port };
    const dst = { ip: normalizeIp(pdu.dst.ip), port: pdu.dst.port };
    const key = flowKey(node, 'tcp', src.ip, src.port, dst.ip, dst.port);
    let fs = this.table.get(key);
    const dirOut = attrs.dir ? attrs.dir === 'out' : (b.flags ?? 0) & 2 ? true : false;
    const mine = dirOut ? src : dst;
    const other = dirOut ? dst : src;
    if (!fs) {
      // why: a hook event can reach us before the first packet of its connection; orient by the owner's role.
      const meta = this.nodes.get(node);
      const role = meta?.owner('tcp', mine.ip, mine.port, other.ip, other.port)?.role;
      const mineIsClient = role === 'client' ? true : role === 'server' ? false : mine.port > other.port;
      fs = this.addFlow(node, 'tcp', key, mineIsClient ? mine : other, mineIsClient ? other : mine, b.tsMs);
      fs.app = 'tls';
      fs.flow.app = 'tls';
    }
    const f = fs.flow;
    fs.version++;
    const side: Side = f.src.ip === mine.ip && f.src.port === mine.port ? 'client' : 'server';
    const len = Number(attrs.len ?? pdu.payload.length) || pdu.payload.length;
    const lib = attrs.lib ?? 'unknown';
    const seen = fs.plaintext[side];
    if (seen) seen.bytes += len;
    else fs.plaintext[side] = { library: lib, bytes: len };
    const pid = Number(attrs.pid);
    if (Number.isFinite(pid) && pid > 0 && !fs.tlsPid[side]) fs.tlsPid[side] = { pid, comm: attrs.comm ?? '?' };
    this.ensureTls(fs);
    if (fs.app === 'classify') { fs.app = 'tls'; f.app = 'tls'; }
    const c2s = f.src.ip === src.ip && f.src.port === src.port;
    const dk = c2s ? 'c2s' : 's2c';
    let dd = fs.decrypted[dk];
    if (!dd) {
      dd = { feeder: side, http1: null, http2: null };
      fs.decrypted[dk] = dd;
    }
    // why: when both ends are hooked, the client's write and the server's read carry the same bytes; parse one.
    if (dd.feeder !== side) return f.id;
    const payload = Buffer.from(pdu.payload);
    if (!dd.http1 && !dd.http2) {
      const other2 = fs.decrypted[c2s ? 's2c' : 'c2s'];
      if (pdu.protoName === 'http2' || looksLikeHttp2(payload) || other2?.http2) dd.http2 = new Http2Parser(c2s ? 'client' : 'server');
      else if (pdu.protoName === 'http' || looksLikeHttp1(payload) || other2?.http1) dd.http1 = new Http1Parser();
      else return f.id;
    }
    if (dd.http1) {
      this.onMessages(fs, dd.http1.push(payload, b.tsMs), 'decrypted', b.tsMs);
      if (attrs.trunc === '1') this.onMessages(fs, dd.http1.gap(), 'decrypted', b.tsMs);
    } else if (dd.http2) {
      this.onMessages(fs, dd.http2.push(payload, b.tsMs), 'decrypted', b.tsMs);
      if (attrs.trunc === '1') this.onMessages(fs, dd.http2.gap(), 'decrypted', b.tsMs);
    }
    return f.id;
  }

  // ---- results ----

  private resolve(fs: FlowState): void {
    const f = fs.flow;
    const meta = this.nodes.get(fs.node);
    const t = fs.transport;
    const clientOwner = meta?.owner(t, f.src.ip, f.src.port, f.dst.ip, f.dst.port) ?? fs.tlsPid.client;
    const serverOwner = meta?.owner(t, f.dst.ip, f.dst.port, f.src.ip, f.src.port) ?? fs.tlsPid.server;
    const ref = (o: { pid: number; comm: string } | null): Flow['process'] => (o ? (meta ? meta.processRef(o.pid, o.comm) : { pid: o.pid, comm: o.comm, exe: null }) : null);
    f.process = clientOwner ? ref(clientOwner) : ref(serverOwner);
    f.peerProcess = clientOwner && serverOwner ? ref(serverOwner) : null;
    if (f.tls) {
      const ctx = { mode: meta?.mode ?? null, modeReason: meta?.modeReason ?? null };
      const ev = (o: { pid: number } | null) => (o && meta ? meta.evidence(o.pid) : null);
      f.tls.client = decideSide('client', { process: ev(clientOwner), plaintextSeen: fs.plaintext.client, ja4: f.tls.ja4 }, ctx);
      f.tls.server = decideSide('server', { process: ev(serverOwner), plaintextSeen: fs.plaintext.server, ja4: null }, ctx);
    }
  }

  /** Every flow, with process attribution and verdicts brought up to date. Returned objects are live: do not mutate. */
  flows(): Flow[] {
    const out: Flow[] = new Array<Flow>(this.states.length);
    const metaChanged = this.snapshotVersion !== this.metaVersion;
    for (let i = 0; i < this.states.length; i++) {
      const fs = this.states[i]!;
      if (metaChanged || fs.resolvedAt !== fs.version) {
        this.resolve(fs);
        fs.resolvedAt = fs.version;
      }
      out[i] = fs.flow;
    }
    this.snapshotVersion = this.metaVersion;
    return out;
  }

  flowById(id: string): Flow | null {
    const fs = this.byId.get(id);
    if (!fs) return null;
    this.resolve(fs);
    return fs.flow;
  }

  detail(id: string): FlowDetail | null {
    const fs = this.byId.get(id);
    if (!fs) return null;
    this.resolve(fs);
    return {
      flow: fs.flow,
      exchanges: fs.exchanges,
      clientBytesHex: fs.c2s.first?.toString('hex') ?? '',
      serverBytesHex: fs.s2c.first?.toString('hex') ?? '',
    };
  }

  /** Exchanges with headers and bodies, for HAR export. */
  exchangesOf(id: string): HttpExchangeDetail[] {
    return this.byId.get(id)?.exchanges ?? [];
  }

  /** The flow a packet belongs to (by node and 5-tuple), for filtered export. */
  flowIdForTuple(node: string, transport: 'tcp' | 'udp', a: string, ap: number, b: string, bp: number): string | null {
    return this.table.get(flowKey(node, transport, normalizeIp(a), ap, normalizeIp(b), bp))?.flow.id ?? null;
  }

  /** Bytes held by reassembly buffers right now (for the memory-bound test). */
  bufferedBytes(): number {
    let n = 0;
    for (const fs of this.states) n += (fs.c2s.reasm?.buffered ?? 0) + (fs.s2c.reasm?.buffered ?? 0);
    return n;
  }
}

export function flowKey(node: string, transport: string, a: string, ap: number, b: string, bp: number): string {
  const aFirst = a < b || (a === b && ap <= bp);
  return aFirst ? `${node}|${transport}|${a}|${ap}|${b}|${bp}` : `${node}|${transport}|${b}|${bp}|${a}|${ap}`;
}

export type { DnsSummary };
