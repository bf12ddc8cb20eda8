// Key logs in the flow table: real OpenSSL connections (Python's ssl over memory BIOs) put into captures as TCP
// conversations. With the connection's secrets (given, or in the capture's own decryption secrets block) its requests
// and statuses come from the decrypted records and both sides have plaintext; in any segment size; a gap, secrets
// of another connection, no secrets, a TLS flow of no handshake: each said, none guessed. Without a key log nothing
// changes (no tls.keylog field at all).
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Analyzer, type AnalyzerOptions } from '../../src/flows/analyzer.js';
import { analyzeFiles } from '../../src/flows/load.js';
import { exportCapture } from '../../src/export/index.js';
import { KeyLog } from '../../src/dissect/tls-keylog.js';
import { parseBuffer } from '../../src/pcapng/index.js';
import { encodeDsb } from '../../src/pcapng/writer.js';
import { SECRETS_TLS_KEYLOG } from '../../src/pcapng/types.js';
import { compileFilter } from '../../src/filter/index.js';
import { keyLogText } from '../../src/model/flow-target.js';
import { CaptureBuilder, flightConversation } from './core-packet-builder.js';
import { makePairCert, tlsPair, type TlsPair } from '../lib/tls-memory-pair.js';
import type { Flow } from '../../src/model/flow.js';

const client = { ip: '10.0.0.1', port: 40000 };
const server = { ip: '10.0.0.2', port: 443 };
let dir = '';
const pairs: Record<string, TlsPair> = {};

/** The pair's flights as one TCP connection (see flightConversation), analyzed with `options`: its flow. `to`: another server. */
function flowOf(p: TlsPair, options: AnalyzerOptions, shape: Parameters<typeof flightConversation>[4] & { before?: (b: CaptureBuilder) => void; to?: typeof server; end?: boolean } = {}): Flow {
  const b = new CaptureBuilder();
  shape.before?.(b);
  flightConversation(b, client, shape.to ?? server, p.flights, shape);
  const a = new Analyzer(options);
  const feed = a.stream('node-1');
  for (const blk of parseBuffer(b.build())) feed(blk);
  if (shape.end) a.endCapture();
  const flows = a.flows();
  expect(flows).toHaveLength(1);
  return flows[0]!;
}

const keyLogOf = (...texts: string[]): KeyLog => {
  const log = new KeyLog();
  for (const t of texts) log.add(t, 'test.keys');
  return log;
};

/** How many data segments of `size` bytes the pair's server sends (flightConversation's count, for its `drop`). */
const serverSegments = (p: TlsPair, size: number): number =>
  p.flights.filter(([who]) => who === 's').reduce((n, [, bytes]) => n + Math.ceil(bytes.length / size), 0);

const exchanges = (f: Flow): [string | null, string | null, number | null][] => f.http.map((h) => [h.method, h.path, h.status]);
const BOTH: [string, string, number][] = [['GET', '/first', 200], ['GET', '/second', 200]];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tapscope-flows-keylog-'));
  makePairCert(dir);
  pairs.tls13 = tlsPair(dir, '1.3');
  pairs.tls13b = tlsPair(dir, '1.3');
  pairs.tls12 = tlsPair(dir, '1.2', 'ECDHE-RSA-AES128-GCM-SHA256');
  pairs.closeDelimited = tlsPair(dir, '1.3', '-', { closeDelimited: true });
});

describe('TLS connections decrypted with a key log', () => {
  it('TLS 1.3 and TLS 1.2: requests and statuses from the decrypted records, both sides plaintext, tls.keylog says so', () => {
    for (const p of [pairs.tls13!, pairs.tls12!]) {
      const before = flowOf(p, {});
      expect(before.tls!.keylog).toBeUndefined();
      expect(before.http).toEqual([]);
      expect([before.tls!.client!.plaintext, before.tls!.server!.plaintext]).toEqual([false, false]);
      const f = flowOf(p, { keyLog: keyLogOf(p.keylog) });
      expect(f.tls!.keylog).toEqual({ status: 'decrypted', reason: null, records: 4 });
      expect(exchanges(f)).toEqual(BOTH);
      expect([f.tls!.client!.plaintext, f.tls!.server!.plaintext, f.tls!.client!.reason, f.tls!.server!.reason]).toEqual([true, true, null, null]);
      // (the library verdict is the hello's, as without the key log)
      expect([f.tls!.client!.library, f.tls!.client!.via]).toEqual([before.tls!.client!.library, before.tls!.client!.via]);
      expect([compileFilter('tls.keylog == "decrypted"')(f), compileFilter('tls.keylog')(before)]).toEqual([true, false]);
    }
  });

  it('in segments of 1 to 700 bytes', () => {
    const log = keyLogOf(pairs.tls13!.keylog);
    for (const size of [1, 5, 64, 700]) {
      const f = flowOf(pairs.tls13!, { keyLog: log }, { size });
      expect(exchanges(f), `segments of ${size}`).toEqual(BOTH);
      expect(f.tls!.keylog!.status).toBe('decrypted');
    }
  });

  it("the capture's own decryption secrets block (as editcap --inject-secrets writes it) decrypts it with no key log given", () => {
    const f = flowOf(pairs.tls12!, {}, { before: (b) => b.raw(encodeDsb(SECRETS_TLS_KEYLOG, Buffer.from(pairs.tls12!.keylog))) });
    expect(exchanges(f)).toEqual(BOTH);
    expect(f.tls!.keylog!.status).toBe('decrypted');
    // (a block of another kind of secrets is not read as a key log)
    const other = flowOf(pairs.tls12!, {}, { before: (b) => b.raw(encodeDsb(0x5353484b, Buffer.from(pairs.tls12!.keylog))) });
    expect([other.http, other.tls!.keylog]).toEqual([[], undefined]);
  });

  it('a gap in the server\'s records: what came before it is read, and the flow says where decryption stopped', () => {
    // (in 40-byte segments, the server's last four carry its two answers; the first of the second answer is lost, and the
    // reassembler, told to wait for no segment, declares the gap at the next)
    const p = pairs.tls13!;
    const serverSegs = serverSegments(p, 40);
    const f = flowOf(p, { keyLog: keyLogOf(p.keylog), reassembly: { maxBuffered: 1 << 18, maxSegments: 0 } }, { size: 40, drop: serverSegs - 2 });
    expect(f.tls!.keylog).toMatchObject({ status: 'failed', reason: 'server to client: a gap in the capture: its records after it cannot be read' });
    expect(exchanges(f)).toEqual([['GET', '/first', 200], ['GET', '/second', null]]);
    expect(f.tls!.client!.plaintext).toBe(true);
    // (its plaintext is the key log's, not a hook's: where it came from is said, how its library was told stays)
    expect(f.tls!.client).toMatchObject({ plaintextFrom: 'keylog', reason: null });
    expect(f.tls!.client!.via).not.toBe('hook');
  });

  it('a segment lost near the end (the capture over before the hole was given up) or the last one before the FIN: said, not "decrypted"', () => {
    // (the same lost segment with the reassembler's usual limits: the server's last segment waits behind the hole when
    // the capture ends; the records in it are not read, and the second answer is missing)
    const p = pairs.tls13!;
    const serverSegs = serverSegments(p, 40);
    const f = flowOf(p, { keyLog: keyLogOf(p.keylog) }, { size: 40, drop: serverSegs - 2 });
    expect(f.tls!.keylog!.status).toBe('failed');
    expect(f.tls!.keylog!.reason).toMatch(/^server to client: a gap in the capture: \d+ bytes after it wait for the bytes it lost, and its records from it on are not read$/);
    expect(exchanges(f)).toEqual([['GET', '/first', 200], ['GET', '/second', null]]);
    // (the client's records all came: its side is not blamed)
    expect(f.tls!.keylog!.reason).not.toMatch(/client to server/);
    // the server's last segment lost, its FIN after it: the bytes before the FIN never came (the FIN waits for them, as a
    // segment sent again may come after it, until the client acknowledges it or, here, the capture ends)
    const last = flowOf(p, { keyLog: keyLogOf(p.keylog) }, { size: 40, drop: serverSegs - 1, end: true });
    expect(last.tls!.keylog!.status).toBe('failed');
    expect(last.tls!.keylog!.reason).toMatch(/^server to client: a gap in the capture: its last \d+ bytes before its FIN were not captured, and their records are not read$/);
    // nothing lost: decrypted, as before
    expect(flowOf(p, { keyLog: keyLogOf(p.keylog) }, { size: 40 }).tls!.keylog!.status).toBe('decrypted');
  });

  it('a connection that switched to TLS in place (SMTP STARTTLS, Postgres SSLRequest): its records after the switch decrypt', () => {
    const p = pairs.tls12!;
    const preludes: [number, string, ['c' | 's', Buffer][]][] = [
      [587, 'smtp', [['s', Buffer.from('220 mx.test ESMTP\r\n')], ['c', Buffer.from('EHLO client.test\r\n')], ['s', Buffer.from('250-mx.test\r\n250 STARTTLS\r\n')],
        ['c', Buffer.from('STARTTLS\r\n')], ['s', Buffer.from('220 go ahead\r\n')]]],
      [5432, 'postgres', [['c', Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])], ['s', Buffer.from('S')]]],
    ];
    for (const [port, app, prelude] of preludes) {
      const f = flowOf({ ...p, flights: [...prelude, ...p.flights] }, { keyLog: keyLogOf(p.keylog) }, { size: 64, to: { ip: server.ip, port } });
      expect(f.app, app).toBe(app);
      expect(f.tls!.keylog, app).toEqual({ status: 'decrypted', reason: null, records: 4 });
      expect([f.tls!.client!.plaintext, f.tls!.server!.plaintext], app).toEqual([true, true]);
    }
  });

  it('no secrets for it, secrets of another connection, a handshake not seen: each said, nothing decrypted', () => {
    const a = pairs.tls13!;
    const b = pairs.tls13b!;
    const none = flowOf(a, { keyLog: keyLogOf(b.keylog) });
    expect(none.tls!.keylog!.status).toBe('no-secrets');
    expect(none.tls!.keylog!.reason).toMatch(/^the key log has no secrets for its client random \([0-9a-f]{64}\)$/);
    expect([none.http, none.tls!.client!.plaintext]).toEqual([[], false]);
    const randomOf = (p: TlsPair): string => p.flights[0]![1].subarray(11, 43).toString('hex');
    const wrong = flowOf(a, { keyLog: keyLogOf(b.keylog.replaceAll(randomOf(b), randomOf(a))) });
    expect(wrong.tls!.keylog!.status).toBe('failed');
    expect(wrong.tls!.keylog!.reason).toMatch(/^client to server: none of its \d+ protected records opened with the key log's secrets .*; server to client: none of/);
    expect([wrong.http, wrong.tls!.client!.plaintext, wrong.tls!.server!.plaintext]).toEqual([[], false, false]);
    const mid = flowOf(a, { keyLog: keyLogOf(a.keylog) }, { midstream: true });
    expect(mid.tls!.midstream).toBe(true);
    expect(mid.tls!.keylog).toEqual({ status: 'no-secrets', reason: 'its handshake came before the capture began: no client random to find its secrets by', records: 0 });
  });

  it("the flow detail's words for each outcome", () => {
    expect(keyLogText({ status: 'decrypted', reason: null, records: 4 })).toBe('decrypted with its secrets (4 records of application data)');
    expect(keyLogText({ status: 'decrypted', reason: null, records: 1 })).toBe('decrypted with its secrets (1 record of application data)');
    expect(keyLogText({ status: 'no-secrets', reason: 'the key log has no secrets for its client random (ab)', records: 0 }))
      .toBe('no secrets for it: the key log has no secrets for its client random (ab)');
    expect(keyLogText({ status: 'failed', reason: 'server to client: a gap', records: 3 })).toBe('not decrypted: server to client: a gap (3 records read before)');
    expect(keyLogText({ status: 'decrypted', reason: null, records: 3, earlyData: { status: 'decrypted', records: 1, reason: null } }))
      .toBe('decrypted with its secrets (3 records of application data, 1 of them early data (0-RTT))');
    expect(keyLogText({ status: 'decrypted', reason: null, records: 2, earlyData: { status: 'rejected', records: 1, reason: null } }))
      .toBe('decrypted with its secrets (2 records of application data); the early data (0-RTT) it sent was declined by the server');
    expect(keyLogText({ status: 'failed', reason: 'x', records: 0 })).toBe('not decrypted: x');
  });
});

describe('a key log followed while the capture runs (its lines come after each handshake)', () => {
  const WAITING = /^waiting for its secrets in the followed key log \(client random [0-9a-f]{64}\); its records are kept until they come$/;
  /** The lines of a key log with these labels. */
  const linesOf = (text: string, ...labels: string[]): string => text.split('\n').filter((l) => labels.includes(l.split(' ')[0]!)).join('\n');

  /** An analyzer following a key log, fed `blocks`, with `at(i)` run before block i (and after the last, at blocks.length). */
  function follow(blocks: ReturnType<typeof parseBuffer>, at: (i: number, a: Analyzer) => void = () => undefined): Analyzer {
    const a = new Analyzer({});
    a.followKeyLog();
    const feed = a.stream('node-1');
    blocks.forEach((blk, i) => {
      at(i, a);
      feed(blk);
    });
    at(blocks.length, a);
    return a;
  }
  const blocksOf = (p: TlsPair): ReturnType<typeof parseBuffer> => {
    const b = new CaptureBuilder();
    flightConversation(b, client, server, p.flights);
    return parseBuffer(b.build());
  };

  it('secrets that come after the whole connection (TLS 1.3 and 1.2): its kept records are decrypted then', () => {
    for (const p of [pairs.tls13!, pairs.tls12!]) {
      const a = follow(blocksOf(p));
      const before = a.flows()[0]!;
      expect(before.tls!.keylog!.status).toBe('no-secrets');
      expect(before.tls!.keylog!.reason).toMatch(WAITING);
      expect(before.http).toEqual([]);
      a.addKeyLog(p.keylog, 'followed.keys');
      const f = a.flows()[0]!;
      expect(f.tls!.keylog).toEqual({ status: 'decrypted', reason: null, records: 4 });
      expect(exchanges(f)).toEqual(BOTH);
      expect([f.tls!.client!.plaintext, f.tls!.server!.plaintext]).toEqual([true, true]);
    }
  });

  it('secrets that come after the connection closed: an answer whose body ran to the close ends as the close did', () => {
    const p = pairs.closeDelimited!;
    // (as with the key log given first)
    expect(exchanges(flowOf(p, { keyLog: keyLogOf(p.keylog) }))).toEqual(BOTH);
    const a = follow(blocksOf(p));
    a.addKeyLog(p.keylog, 'followed.keys');
    expect(exchanges(a.flows()[0]!)).toEqual(BOTH);
  });

  it('TLS 1.3: the handshake secrets halfway through, the traffic secrets later: it waits for both', () => {
    const p = pairs.tls13!;
    const blocks = blocksOf(p);
    const half = blocks.length >> 1;
    const a = follow(blocks, (i, an) => {
      if (i === half) an.addKeyLog(linesOf(p.keylog, 'CLIENT_HANDSHAKE_TRAFFIC_SECRET', 'SERVER_HANDSHAKE_TRAFFIC_SECRET'), 'followed.keys');
    });
    expect(a.flows()[0]!.tls!.keylog!.reason).toMatch(WAITING);
    a.addKeyLog(linesOf(p.keylog, 'CLIENT_TRAFFIC_SECRET_0', 'SERVER_TRAFFIC_SECRET_0'), 'followed.keys');
    expect(exchanges(a.flows()[0]!)).toEqual(BOTH);
    expect(a.flows()[0]!.tls!.keylog!.status).toBe('decrypted');
  });

  it('TLS 1.3: part of its secrets before its hello, the rest after its server\'s hello: it waits for the rest', () => {
    // (a helper reads the key log as the client writes it, line by line, and its ring may hand the handshake's packets
    // over later: a secrets block with the first lines comes before the ClientHello, the next one after the ServerHello)
    const p = pairs.tls13!;
    const labels = p.keylog.split('\n').filter(Boolean).map((l) => l.split(' ')[0]!);
    for (const first of [['SERVER_HANDSHAKE_TRAFFIC_SECRET'], ['SERVER_HANDSHAKE_TRAFFIC_SECRET', 'SERVER_TRAFFIC_SECRET_0']]) {
      const a = follow(blocksOf(p), (i, an) => {
        if (i === 0) an.addKeyLog(linesOf(p.keylog, ...first), 'followed.keys');
      });
      expect(a.flows()[0]!.tls!.keylog!.reason).toMatch(WAITING);
      a.addKeyLog(linesOf(p.keylog, ...labels.filter((l) => !first.includes(l))), 'followed.keys');
      expect(a.flows()[0]!.tls!.keylog!.status, first.join()).toBe('decrypted');
      expect(exchanges(a.flows()[0]!)).toEqual(BOTH);
    }
  });

  it('secrets that come while its records still arrive: the rest are decrypted as they come', () => {
    const p = pairs.tls13!;
    const blocks = blocksOf(p);
    const a = follow(blocks, (i, an) => {
      if (i === blocks.length - 4) an.addKeyLog(p.keylog, 'followed.keys');
    });
    expect(exchanges(a.flows()[0]!)).toEqual(BOTH);
  });

  it('a connection whose hello came before the key log did: not decrypted, and it says why', () => {
    const a = new Analyzer({});
    const feed = a.stream('node-1');
    for (const blk of blocksOf(pairs.tls13!)) feed(blk);
    a.followKeyLog();
    a.addKeyLog(pairs.tls13!.keylog, 'followed.keys');
    const f = a.flows()[0]!;
    expect(f.tls!.keylog).toEqual({ status: 'no-secrets', reason: 'its hello came before the key log did (one added during the capture, a secrets block later in the file), and its records were not kept', records: 0 });
    expect(f.http).toEqual([]);
  });

  it('secrets that never come: the capture stopping says so, and frees what the connection kept', () => {
    const a = follow(blocksOf(pairs.tls13!));
    // (read while it waits, as a live view reads it: giving up then changes what it says)
    expect(a.flows()[0]!.tls!.keylog!.reason).toMatch(WAITING);
    a.stopFollowingKeyLog();
    const f = a.flows()[0]!;
    expect(f.tls!.keylog).toEqual({ status: 'no-secrets', reason: 'the capture stopped before its secrets came in the followed key log', records: 0 });
    expect([f.http, f.tls!.client!.plaintext]).toEqual([[], false]);
  });

  it(`a connection waits 10 s of capture time: one whose hello came later lets it go, and is decrypted itself`, () => {
    const b = new CaptureBuilder();
    flightConversation(b, client, server, pairs.tls13!.flights);
    b.ts += 11_000;
    flightConversation(b, { ...client, port: client.port + 1 }, server, pairs.tls13b!.flights);
    // (read while it waits, as a live view reads it, just before the second connection's first packet)
    const firstEnds = blocksOf(pairs.tls13!).length;
    const a = follow(parseBuffer(b.build()), (i, an) => {
      if (i === firstEnds) expect(an.flows()[0]!.tls!.keylog!.reason).toMatch(WAITING);
    });
    a.addKeyLog(`${pairs.tls13!.keylog}\n${pairs.tls13b!.keylog}`, 'followed.keys');
    const [first, second] = a.flows();
    expect(first!.tls!.keylog).toEqual({ status: 'no-secrets', reason: 'no secrets for its client random came in the followed key log within 10 s of its hello', records: 0 });
    expect(first!.http).toEqual([]);
    expect(second!.tls!.keylog!.status).toBe('decrypted');
    expect(exchanges(second!)).toEqual(BOTH);
  });

  it('a connection that gave up before its server\'s hello came: the hello is read, nothing decrypted, it says why', () => {
    const p = pairs.tls13!;
    expect([p.flights[0]![0], p.flights[1]![0]]).toEqual(['c', 's']);
    const hello = p.flights[0]![1];
    const C = { src: client.ip, dst: server.ip, sport: client.port, dport: server.port };
    const S = { src: server.ip, dst: client.ip, sport: server.port, dport: client.port };
    const b = new CaptureBuilder();
    b.tcp({ ...C, seq: 1000, flags: 0x02 });
    b.tcp({ ...S, seq: 5000, ack: 1001, flags: 0x12 });
    b.tcp({ ...C, seq: 1001, ack: 5001, flags: 0x18, payload: hello });
    b.ts += 11_000;
    // (another connection's hello, 11 s later, lets the first go)
    flightConversation(b, { ...client, port: client.port + 1 }, server, pairs.tls13b!.flights);
    b.tcp({ ...S, seq: 5001, ack: 1001 + hello.length, flags: 0x18, payload: p.flights[1]![1] });
    const a = follow(parseBuffer(b.build()));
    a.addKeyLog(p.keylog, 'followed.keys');
    const f = a.flows().find((x) => x.src.port === client.port)!;
    expect(f.tls!.version).toBe('TLS 1.3');
    expect(f.tls!.keylog).toEqual({ status: 'no-secrets', reason: 'no secrets for its client random came in the followed key log within 10 s of its hello', records: 0 });
  });

  it('secrets of only one side that came before it gave up: that side is decrypted, the other says why', () => {
    const p = pairs.tls13!;
    const a = follow(blocksOf(p));
    a.addKeyLog(linesOf(p.keylog, 'CLIENT_TRAFFIC_SECRET_0'), 'followed.keys');
    a.stopFollowingKeyLog();
    const f = a.flows()[0]!;
    expect(f.tls!.keylog!.status).toBe('failed');
    expect(exchanges(f)).toEqual([['GET', '/first', null], ['GET', '/second', null]]);
    expect([f.tls!.client!.plaintext, f.tls!.server!.plaintext]).toEqual([true, false]);
  });
});

describe("a filtered export of a capture with its own secrets block (capture --keylog's, editcap's)", () => {
  it('keeps only the exported connections\' lines with --include-secrets; an export of everything keeps the block whole', async () => {
    const a = pairs.tls13!;
    const b = pairs.tls13b!;
    const foreign = `CLIENT_RANDOM ${'5a'.repeat(32)} ${'c3'.repeat(48)}`;
    const block = `# keys\n${a.keylog}${b.keylog}${foreign}\n`;
    const cap = new CaptureBuilder();
    cap.raw(encodeDsb(SECRETS_TLS_KEYLOG, Buffer.from(block)));
    flightConversation(cap, client, server, a.flights);
    flightConversation(cap, { ip: '10.0.0.3', port: 40001 }, { ip: '10.0.0.4', port: 443 }, b.flights);
    const path = join(dir, 'with-block.pcapng');
    writeFileSync(path, cap.build());
    const files = [{ path }];
    const { analyzer } = await analyzeFiles(files);
    const flows = analyzer.flows();
    expect(flows.map((f) => f.tls?.keylog?.status)).toEqual(['decrypted', 'decrypted']);
    const blocksOf = async (flowIds: Set<string> | undefined, includeSecrets: boolean): Promise<string[]> => {
      const out = join(dir, `export-${flowIds?.size ?? 'all'}-${includeSecrets}.pcapng`);
      await exportCapture(files, analyzer, { format: 'pcapng', out, flowIds, includeSecrets });
      return parseBuffer(readFileSync(out)).flatMap((x) => (x.type === 'dsb' ? [x.data.toString('utf8')] : []));
    };
    const linesOf = (keylog: string): string[] => keylog.split('\n').filter((l) => l && !l.startsWith('#'));
    const randomOf = (keylog: string): string => linesOf(keylog)[0]!.split(' ')[1]!;
    // (the first flow only: its lines, not the other connection's, not the foreign one, no comment)
    const one = await blocksOf(new Set([flows[0]!.id]), true);
    expect(one).toHaveLength(1);
    expect(new Set(one[0]!.trim().split('\n').map((l) => l.split(' ')[1]))).toEqual(new Set([randomOf(a.keylog)]));
    expect(one[0]!.trim().split('\n')).toEqual(linesOf(a.keylog));
    // (the second flow only, whose lines come after the first's in the block)
    const two = await blocksOf(new Set([flows[1]!.id]), true);
    expect(new Set(two[0]!.trim().split('\n').map((l) => l.split(' ')[1]))).toEqual(new Set([randomOf(b.keylog)]));
    expect(await blocksOf(undefined, true)).toEqual([block]);
    expect(await blocksOf(new Set([flows[0]!.id]), false)).toEqual([]);
  });
});
