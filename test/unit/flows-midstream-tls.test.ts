// TLS taken up in the middle: a connection open before the capture began (a database pool's, a gRPC channel's, a
// sidecar's mTLS) shows no handshake, only TLS records. It is a TLS flow (`tls.midstream`) with its sides judged by
// their processes and hooks, not "unknown" with no verdict; taken up inside a record, in any segment sizes, from the
// server's records alone; and what is not TLS, or began with a SYN, stays what it is.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, it, expect } from 'vitest';
import { Analyzer } from '../../src/flows/analyzer.js';
import { parseBuffer } from '../../src/pcapng/index.js';
import { midstreamRecords } from '../../src/dissect/tls.js';
import { compileFilter } from '../../src/filter/index.js';
import { FlowJsonLines } from '../../src/model/flow-json.js';
import { decideSide } from '../../src/verdict/index.js';
import { libraryBreakdown } from '../../src/flows/libraries.js';
import { CaptureBuilder } from './core-packet-builder.js';
import { makePairCert, tlsPair, type TlsPair } from '../lib/tls-memory-pair.js';
import type { Flow } from '../../src/model/flow.js';

const client = { ip: '10.0.0.1', port: 40000 };
const server = { ip: '10.0.0.2', port: 5432 };
const C = { src: client.ip, dst: server.ip, sport: client.port, dport: server.port };
const S = { src: server.ip, dst: client.ip, sport: server.port, dport: client.port };

/** A TLS record of `len` bytes of (pretend) ciphertext. */
function record(len: number, type = 0x17, minor = 3): Buffer {
  const body = Buffer.alloc(len);
  for (let i = 0; i < len; i++) body[i] = (i * 131 + 7) & 0xff;
  return Buffer.concat([Buffer.from([type, 0x03, minor, len >> 8, len & 0xff]), body]);
}

/**
 * A connection taken up in the middle: the client's bytes then the server's, each cut into `size`-byte segments
 * (no SYN), with blocks (process and hook records) first when given.
 */
function midstream(c2s: Buffer, s2c: Buffer, opts: { size?: number; before?: (b: CaptureBuilder) => void; syn?: boolean; after?: (b: CaptureBuilder) => void } = {}): Flow {
  const b = new CaptureBuilder();
  opts.before?.(b);
  let cseq = 100_000;
  let sseq = 900_000;
  if (opts.syn) {
    b.tcp({ ...C, seq: cseq - 1, flags: 0x02 });
    b.tcp({ ...S, seq: sseq - 1, ack: cseq, flags: 0x12 });
    b.tcp({ ...C, seq: cseq, ack: sseq, flags: 0x10 });
  }
  const size = opts.size ?? 1400;
  for (let at = 0; at < c2s.length; at += size) {
    const seg = c2s.subarray(at, at + size);
    b.tcp({ ...C, seq: cseq, ack: sseq, flags: 0x18, payload: seg });
    cseq += seg.length;
  }
  for (let at = 0; at < s2c.length; at += size) {
    const seg = s2c.subarray(at, at + size);
    b.tcp({ ...S, seq: sseq, ack: cseq, flags: 0x18, payload: seg });
    sseq += seg.length;
  }
  opts.after?.(b);
  const a = new Analyzer();
  const feed = a.stream('node-1');
  for (const blk of parseBuffer(b.build())) feed(blk);
  return a.flows()[0]!;
}

const requests = Buffer.concat([record(60), record(33), record(1200), record(80), record(80)]);
const answers = Buffer.concat([record(900), record(16401), record(500), record(24, 0x15)]);

describe('TLS taken up in the middle (the connection was open before the capture)', () => {
  it('is a TLS flow without hello fields, its client side saying why it has no fingerprint', () => {
    const f = midstream(requests, answers);
    expect(f.app).toBe('tls');
    expect(f.tcp?.state).toBe('midstream');
    expect(f.tls).toMatchObject({ midstream: true, sni: null, ja3: null, ja4: null, version: null, cipher: null });
    expect(f.tls!.client).toMatchObject({ library: 'unknown', plaintext: false });
    expect(f.tls!.client!.reason).toMatch(/its TLS handshake came before the capture began: no ClientHello to fingerprint$/);
    expect(f.tls!.server).toMatchObject({ library: 'unknown', plaintext: false });
    expect([compileFilter('tls.midstream')(f), compileFilter('!tls.midstream')(f)]).toEqual([true, false]);
    // taken up just after a TLS 1.2 handshake: an encrypted handshake record (Finished) first, no ClientHello
    const late = midstream(Buffer.concat([record(40, 0x16), requests]), answers);
    expect([late.app, late.tls?.midstream, late.tls?.client?.reason]).toEqual(['tls', true, f.tls!.client!.reason]);
  });

  it('its sides are judged by their processes and hooks: a Java client has no hook, a hooked server gives its plaintext', () => {
    const f = midstream(requests, answers, {
      before: (b) => {
        b.record({ t: 'capture', v: 1, mode: 'ebpf', requestedMode: 'auto', reason: 'auto: BTF, ringbuf and uprobes available', hostname: 'node-1' });
        b.record({ t: 'proc', pid: 70, ppid: 1, comm: 'java', exe: '/usr/lib/jvm/java-17/bin/java', startedBeforeCapture: true, alive: true,
          tls: { library: 'java-jsse', via: 'binary', evidence: '/usr/lib/jvm/java-17/lib/libjava.so', version: '17' }, hooks: [] });
        b.record({ t: 'conn', proto: 'tcp', local: client, remote: server, role: 'client', pid: 70, tid: 70, comm: 'java', via: 'proc' });
      },
      after: (b) => { b.tls(server, client, 'out', Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'), { pid: 80, comm: 'envoy', lib: 'boringssl' }); },
    });
    expect(f.app).toBe('tls');
    expect(f.tls!.midstream).toBe(true);
    expect(f.tls!.client).toMatchObject({ library: 'java-jsse', via: 'process', plaintext: false, reason: expect.stringMatching(/^java-jsse has no hook/) });
    expect(f.tls!.server).toMatchObject({ library: 'boringssl', via: 'hook', plaintext: true });
    expect(f.http.map((h) => h.status)).toEqual([200]);
  });

  it('taken up inside a record, in segments of any size, or from the server\'s records alone', () => {
    const whole = midstream(requests, answers);
    // (the capture began 700 bytes into the client's third record, and 5000 into the server's second)
    const inside = midstream(requests.subarray(65 + 38 + 700), answers.subarray(905 + 5000));
    expect(inside.tls).toMatchObject({ midstream: true, client: whole.tls!.client, server: whole.tls!.server });
    for (const size of [1, 3, 5, 7, 64, 536]) {
      const f = midstream(requests, answers, { size });
      expect([f.app, f.tls?.midstream], `${size}-byte segments`).toEqual(['tls', true]);
    }
    expect(midstream(Buffer.alloc(0), answers).tls?.midstream).toBe(true);
  });

  it('a client\'s bytes that could begin a request line ("Ab cd", its line not ended) do not hold back the server\'s records', () => {
    // (a record's tail that reads so; HTTP/1 waited for such a line's end, whatever came from the server meanwhile)
    for (const first of ['Ab cd', 'NOTIFY /a HT']) {
      const f = midstream(Buffer.from(first), answers);
      expect([first, f.app, f.tls?.midstream]).toEqual([first, 'tls', true]);
    }
    // (the server's answer to a request before the capture, a request line's end still to come: HTTP, waited for)
    const http = midstream(Buffer.from('NOTIFY /a HT'), Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'), {
      after: (b) => b.tcp({ ...C, seq: 100_012, ack: 900_038, flags: 0x18, payload: Buffer.from('TP/1.1\r\nHost: a\r\n\r\n') }),
    });
    expect([http.app, http.http.map((h) => [h.path, h.status])]).toEqual(['http', [[null, 200], ['/a', null]]]);
  });

  it('stays what it is when it is not TLS, or began with a SYN', () => {
    const noise = Buffer.alloc(3000);
    for (let i = 0; i < noise.length; i++) noise[i] = (i * 197 + (i >> 3)) & 0xff;
    expect([midstream(noise, noise).app, midstream(noise, noise).tls]).toEqual(['unknown', null]);
    // (a plain protocol taken up in the middle is told as ever)
    expect(midstream(Buffer.from('GET /health HTTP/1.1\r\nHost: a\r\n\r\n'), Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n')).app).toBe('http');
    // a connection whose handshake was seen never starts with application data: no guess
    const seen = midstream(requests, answers, { syn: true });
    expect([seen.app, seen.tls]).toEqual(['unknown', null]);
  });

  it('midstreamRecords: where records chain to the end; one header at the start, two from inside a record', () => {
    expect(midstreamRecords(requests)).toBe(0);
    expect(midstreamRecords(requests.subarray(0, 3))).toBe(-1);
    expect(midstreamRecords(requests.subarray(0, 30))).toBe(0);
    expect(midstreamRecords(Buffer.concat([Buffer.alloc(11, 0x41), requests]))).toBe(11);
    // from inside a record, one header is not enough; records of two versions do not chain
    expect(midstreamRecords(Buffer.concat([Buffer.alloc(11, 0x41), record(50)]))).toBe(-1);
    expect(midstreamRecords(Buffer.concat([record(10), record(10, 0x17, 1)]))).toBe(-1);
    // types 20-23 only, TLS 1.0-1.3 records, a length within 2^14 + 2048
    expect(midstreamRecords(record(10, 0x18))).toBe(-1);
    expect(midstreamRecords(record(10, 0x17, 0))).toBe(-1);
    expect(midstreamRecords(Buffer.from([0x17, 0x03, 0x03, 0x48, 0x01]))).toBe(-1);
  });

  it('midstreamRecords resumes where it left off as the bytes grow: each offset ruled out once, the same answer as at once', () => {
    const noise = Buffer.alloc(30_000);
    for (let i = 0; i < noise.length; i++) noise[i] = (i * 197 + (i >> 3)) & 0xff;
    const progress = { from: 0 };
    for (let n = 100; n <= noise.length; n += 100) expect(midstreamRecords(noise.subarray(0, n), progress)).toBe(-1);
    // (offsets past the longest record are never a first record's start)
    expect(progress.from).toBe(16384 + 2048 + 5 + 1);
    for (const [bytes, want] of [[Buffer.concat([Buffer.alloc(11, 0x41), requests]), 11], [requests.subarray(65 + 38 + 700), 1200 + 5 - 700], [answers, 0]] as const) {
      const p = { from: 0 };
      let found = -1;
      for (let n = 1; n <= bytes.length && found < 0; n++) found = midstreamRecords(bytes.subarray(0, n), p);
      expect([found, midstreamRecords(bytes)]).toEqual([want, want]);
    }
  });

  it('the reason is not shared with flows whose hello was merely not seen (the verdicts kept per fingerprint)', () => {
    const ctx = { mode: null, modeReason: null };
    for (const order of [[true, false], [false, true]]) {
      const [a, b] = order.map((midstream) => decideSide('client', { process: null, plaintextSeen: null, ja4: null, midstream }, ctx)!.reason);
      expect(a === b, `midstream ${order[0]} first`).toBe(false);
    }
  });

  it('says so in its JSON line', async () => {
    const f = midstream(requests, answers);
    const lines = new FlowJsonLines();
    let text = '';
    await lines.addAll([f], (chunk) => { text += chunk.toString('utf8'); lines.reuse(chunk); });
    expect(JSON.parse(text).tls).toMatchObject({ midstream: true, sni: null });
  });
});

/**
 * A real TLS connection (tlsPair) as the capture saw it: its flights in order (`serverFirst`: all the server's before the
 * client's, as a capture may order them), with the handshake (SYN, SYN-ACK, ACK) unless `midstream`, without the
 * flights `lose` names ('c0': the client's first, its ClientHello; 's0': the server's first, its hello flight), then
 * both FINs.
 */
function captured(p: TlsPair, opts: { lose?: string[]; midstream?: boolean; serverFirst?: boolean } = {}): Flow {
  const b = new CaptureBuilder();
  let cseq = 1000;
  let sseq = 5000;
  if (!opts.midstream) {
    b.tcp({ ...C, seq: cseq, flags: 0x02 });
    b.tcp({ ...S, seq: sseq, ack: cseq + 1, flags: 0x12 });
    b.tcp({ ...C, seq: cseq + 1, ack: sseq + 1, flags: 0x10 });
  }
  cseq++;
  sseq++;
  const segs: { c: boolean; seq: number; ack: number; bytes: Buffer }[] = [];
  const n = { c: 0, s: 0 };
  for (const [who, bytes] of p.flights) {
    const name = `${who}${n[who]++}`;
    const c = who === 'c';
    if (!opts.lose?.includes(name)) segs.push({ c, seq: c ? cseq : sseq, ack: c ? sseq : cseq, bytes });
    if (c) cseq += bytes.length;
    else sseq += bytes.length;
  }
  if (opts.serverFirst) segs.sort((x, y) => Number(x.c) - Number(y.c));
  for (const g of segs) b.tcp({ ...(g.c ? C : S), seq: g.seq, ack: g.ack, flags: 0x18, payload: g.bytes });
  b.tcp({ ...C, seq: cseq, ack: sseq, flags: 0x11 });
  b.tcp({ ...S, seq: sseq, ack: cseq + 1, flags: 0x11 });
  const a = new Analyzer();
  const feed = a.stream('node-1');
  for (const blk of parseBuffer(b.build())) feed(blk);
  return a.flows()[0]!;
}

describe('TLS whose ClientHello the capture lost (its first segment dropped), the SYN seen', () => {
  const pairs: Record<string, TlsPair> = {};
  beforeAll(() => {
    const dir = mkdtempSync(join(tmpdir(), 'tapscope-lost-hello-'));
    makePairCert(dir);
    pairs.tls13 = tlsPair(dir, '1.3');
    pairs.tls12 = tlsPair(dir, '1.2', 'ECDHE-RSA-AES128-GCM-SHA256');
  });
  const LOST = /, and its ClientHello was not captured \(a gap at the start of the client's stream\): no fingerprint$/;

  it('is a TLS flow with both side verdicts, its client saying its ClientHello was lost; version and cipher from its ServerHello', () => {
    for (const [name, version, cipher] of [['tls13', 'TLS 1.3', 'TLS_AES_256_GCM_SHA384'], ['tls12', 'TLS 1.2', 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256']] as const) {
      const whole = captured(pairs[name]!);
      expect([whole.app, whole.tls?.ja4 !== null, whole.tls?.version], name).toEqual(['tls', true, version]);
      const f = captured(pairs[name]!, { lose: ['c0'] });
      expect([f.app, f.tls?.midstream, f.tls?.ja4, f.tls?.version, f.tls?.cipher], name).toEqual(['tls', undefined, null, version, cipher]);
      expect(f.tls!.client).toMatchObject({ library: 'unknown', plaintext: false, reason: expect.stringMatching(LOST) });
      expect(f.tls!.server).toMatchObject({ library: 'unknown', plaintext: false });
      expect(libraryBreakdown([f]).sides.map((r) => [r.side, r.flows])).toEqual([['client', 1], ['server', 1]]);
    }
  });

  it('told from the records after the gap when the server\'s hello flight was lost too, or came after the client\'s bytes', () => {
    const p = pairs.tls13!;
    const both = captured(p, { lose: ['c0', 's0'] });
    expect([both.app, both.tls?.midstream, both.tls?.version]).toEqual(['tls', undefined, null]);
    expect(both.tls!.client!.reason).toMatch(LOST);
    // (the client's bytes after its lost hello first, the server's hello after them)
    const b = new CaptureBuilder();
    b.tcp({ ...C, seq: 1000, flags: 0x02 });
    b.tcp({ ...S, seq: 5000, ack: 1001, flags: 0x12 });
    const ch = p.flights.find(([w]) => w === 'c')![1];
    let cseq = 1001 + ch.length;
    for (const [, bytes] of p.flights.slice(1).filter(([w]) => w === 'c')) {
      b.tcp({ ...C, seq: cseq, ack: 5001, flags: 0x18, payload: bytes });
      cseq += bytes.length;
    }
    b.tcp({ ...C, seq: cseq, ack: 5001, flags: 0x11 });
    let sseq = 5001;
    for (const [, bytes] of p.flights.filter(([w]) => w === 's')) {
      b.tcp({ ...S, seq: sseq, ack: cseq + 1, flags: 0x18, payload: bytes });
      sseq += bytes.length;
    }
    const a = new Analyzer();
    const feed = a.stream('node-1');
    for (const blk of parseBuffer(b.build())) feed(blk);
    const f = a.flows()[0]!;
    expect([f.app, f.tls?.version, f.tls?.cipher]).toEqual(['tls', 'TLS 1.3', 'TLS_AES_256_GCM_SHA384']);
    expect(f.tls!.client!.reason).toMatch(LOST);
  });

  it('its ServerHello before the ClientHello in the capture\'s order is no loss: the hello is read when it comes', () => {
    const f = captured(pairs.tls13!, { serverFirst: true });
    expect([f.app, f.tls?.ja4 !== null, f.tls?.version]).toEqual(['tls', true, 'TLS 1.3']);
    expect(f.tls!.client!.reason).not.toMatch(/ClientHello was not captured/);
  });

  it('taken up in the middle just after the ClientHello: midstream, its version and cipher read from the ServerHello captured', () => {
    const f = captured(pairs.tls13!, { midstream: true, lose: ['c0'] });
    expect([f.app, f.tls?.midstream, f.tls?.ja4, f.tls?.version, f.tls?.cipher]).toEqual(['tls', true, null, 'TLS 1.3', 'TLS_AES_256_GCM_SHA384']);
    expect(f.tls!.client!.reason).toMatch(/its TLS handshake came before the capture began: no ClientHello to fingerprint$/);
  });
});
