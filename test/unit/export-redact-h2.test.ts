// HTTP/2 secret redaction in decrypted records: names from the HPACK dynamic table, header blocks split over
// HEADERS + CONTINUATION and over records (every byte offset), same-length Huffman fills that keep the HPACK
// stream decodable (checked with hpack.js as an independent decoder, and with tshark), undecodable blocks,
// records cut by the capture, and connections seen mid-way.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { PacketRedactor } from '../../src/export/index.js';
import { huffmanDecode, huffmanFiller } from '../../src/export/redact-h2.js';
import { buildExportedPdu } from '../../src/pcapng/exported-pdu.js';
import { H2_PREFACE } from '../../src/dissect/http2.js';
import { CaptureBuilder, ethernet, ipPacket, tcpConversation } from './core-packet-builder.js';
import { exportBothWays } from './export-capture.js';
import { SessionStore } from '../../src/store/session-store.js';
import { CoreService } from '../../src/service/core-service.js';
import { decodePacket } from '../../src/flows/decode.js';
import { parseBuffer } from '../../src/pcapng/index.js';
import {
  CONTINUATION, DATA, END_HEADERS, END_STREAM, HEADERS, SETTINGS, addIdx, addNew, decodeBlocks, frame, indexed, int, litIdx, sizeUpdate, str,
} from './export-h2-frames.js';

const CLIENT = { ip: '10.232.10.1', port: 41000 };
const SERVER = { ip: '10.232.10.2', port: 443 };
const LINK_UPPER_PDU = 252;

// Request 1 puts 'Cookie' (capitalised, so not the static name) and 'authorization' (spelled as a literal)
// into the dynamic table; requests 2 and 3 send new secret values under those dynamic-table names.
const SECRETS = ['sid=one', 'sid=two-huff', 'sid=three', 'Bearer first', 'Bearer second-raw', 'tok=cont-split', 'Bearer 4th', 'Bearer 5th-dyn'];
function clientBlocks(): { blocks: Buffer[]; stream: Buffer } {
  const b1 = Buffer.concat([indexed(2), indexed(4), indexed(7), addIdx(1, 'api.test'),
    addNew('Cookie', 'sid=one', true), addNew('authorization', 'Bearer first'), addNew('x-pad', 'keep-pad', true)]);
  // dynamic table now: x-pad (62), authorization (63), Cookie (64), :authority (65)
  const b2 = Buffer.concat([indexed(2), indexed(4), indexed(7), indexed(65),
    litIdx(64, 'sid=two-huff', true), litIdx(63, 'Bearer second-raw', false, true), litIdx(62, 'visible-pad', true),
    addIdx(64, 'tok=cont-split', true), litIdx(15, 'x-keep', false)]);
  // a size update to 120 keeps Cookie (62) and x-pad (63); adding authorization evicts x-pad, adding x-later
  // evicts Cookie, so authorization is 63 at the end
  const b3 = Buffer.concat([sizeUpdate(120), indexed(2), indexed(4), indexed(7), litIdx(62, 'sid=three', true),
    addNew('authorization', 'Bearer 4th'), addNew('x-later', 'later-value'), litIdx(63, 'Bearer 5th-dyn', true)]);
  const h1 = frame(HEADERS, END_HEADERS | END_STREAM, 1, b1);
  // request 2's block is cut inside 'tok=cont-split' (a Huffman value) into HEADERS + CONTINUATION
  const cut = b2.length - 12;
  const h2 = Buffer.concat([frame(HEADERS, END_STREAM, 3, b2.subarray(0, cut)), frame(CONTINUATION, END_HEADERS, 3, b2.subarray(cut))]);
  const d = frame(DATA, 0, 3, Buffer.from('body bytes'));
  const h3 = frame(HEADERS, END_HEADERS | END_STREAM, 5, b3);
  return { blocks: [b1, b2, b3], stream: Buffer.concat([H2_PREFACE, SETTINGS, h1, h2, d, h3]) };
}

/** The header block fragments of a byte stream of frames from `from` (parsed plainly; test input is well formed). */
function blocksOf(stream: Buffer, from = H2_PREFACE.length): Buffer[] {
  const blocks: Buffer[] = [];
  let cur: Buffer[] = [];
  for (let p = from; p < stream.length;) {
    const len = stream.readUIntBE(p, 3);
    const type = stream[p + 3]!;
    const flags = stream[p + 4]!;
    if (type === HEADERS || type === CONTINUATION) {
      cur.push(stream.subarray(p + 9, p + 9 + len));
      if (flags & END_HEADERS) { blocks.push(Buffer.concat(cur)); cur = []; }
    }
    p += 9 + len;
  }
  return blocks;
}

const isSecretName = (n: string): boolean => ['authorization', 'cookie', 'proxy-authorization', 'set-cookie'].includes(n.toLowerCase());

/** Feeds the records of one direction through a PacketRedactor; returns the redacted payloads. */
function redactRecords(records: Buffer[], opts: { proto?: string; missing?: number[]; redactor?: PacketRedactor; from?: typeof CLIENT; to?: typeof SERVER } = {}): Buffer[] {
  const r = opts.redactor ?? new PacketRedactor();
  return records.map((rec, i) => {
    const pdu = buildExportedPdu(opts.proto ?? 'http2', opts.from ?? CLIENT, opts.to ?? SERVER, rec);
    const out = r.packet(LINK_UPPER_PDU, pdu, 's', pdu.length + (opts.missing?.[i] ?? 0));
    expect(out.length).toBe(pdu.length);
    return out.subarray(pdu.length - rec.length);
  });
}

/** Checks a redacted stream against the original: same headers except secrets, which are masked. */
function expectRedacted(original: Buffer, redacted: Buffer): void {
  const before = decodeBlocks(blocksOf(original));
  const after = decodeBlocks(blocksOf(redacted));
  expect(after.map((b) => b.map(([n]) => n))).toEqual(before.map((b) => b.map(([n]) => n)));
  before.forEach((block, i) => block.forEach(([name, value], j) => {
    const got = after[i]![j]![1];
    if (!isSecretName(name)) expect(got, `${name} in block ${i}`).toBe(value);
    else expect(got, `${name} in block ${i}`).toMatch(/^[x0*-]*$/);
  }));
  const text = redacted.toString('latin1');
  expect(SECRETS.filter((s) => text.includes(s))).toEqual([]);
}

describe('HPACK Huffman fill', () => {
  it('gives a valid Huffman string of the same byte length and the same decoded length for every value hpack.js encodes', () => {
    let seed = 7;
    const rnd = (n: number): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
    const samples: string[] = ['a', 'Bearer eyJhbGciOi.J9', 'sid=1; theme=dark', '%%%%', '~~~~~~', '\u00ff\u00fe\u0001'];
    for (let i = 0; i < 2000; i++) {
      const alphabet = i % 3 === 0 ? 256 : 95;
      samples.push(String.fromCharCode(...Array.from({ length: 1 + rnd(60) }, () => (alphabet === 256 ? rnd(256) : 0x20 + rnd(95)))));
    }
    for (const s of samples) {
      const enc = str(s, true);
      const n = enc.length - (enc.length > 127 ? 2 : 1);
      const fill = huffmanFiller(n, s.length);
      expect(fill, JSON.stringify(s)).not.toBeNull();
      expect(fill!.length).toBe(n);
      expect(huffmanDecode(fill!, 0, n)?.length).toBe(s.length);
      // the independent decoder accepts it too
      const d = decodeBlocks([Buffer.concat([Buffer.from([0x00]), str('x-k', false), int(n, 7, 0x80), fill!])]);
      expect(d[0]![0]![1]).toHaveLength(s.length);
    }
  });
});

describe('HTTP/2 redaction in decrypted records', () => {
  it('masks values under dynamic-table names and keeps the HPACK stream decodable with the same table (one record)', () => {
    const { stream } = clientBlocks();
    const [out] = redactRecords([stream]);
    expectRedacted(stream, out!);
  });

  it('masks every secret when the client stream is split into two records at every byte offset', () => {
    const { stream } = clientBlocks();
    for (let cut = 1; cut < stream.length; cut++) {
      const out = Buffer.concat(redactRecords([stream.subarray(0, cut), stream.subarray(cut)]));
      try {
        expectRedacted(stream, out);
      } catch (e) {
        throw new Error(`cut at ${cut}: ${(e as Error).message}`);
      }
    }
  });

  it('masks every secret when each byte is its own record', () => {
    const { stream } = clientBlocks();
    const out = Buffer.concat(redactRecords([...stream].map((b) => Buffer.from([b]))));
    const text = out.toString('latin1');
    expect(SECRETS.filter((s) => text.includes(s))).toEqual([]);
    // raw values keep their exact masks; the stream still decodes
    expect(decodeBlocks(blocksOf(out)).flat().filter(([n]) => n === 'accept-charset' || n === 'x-later').map(([, v]) => v)).toEqual(['x-keep', 'later-value']);
  });

  it('masks the rest of a block that ends inside a field, and literals under dynamic names after bytes went missing', () => {
    // the last field claims a 20-byte value but the block ends after 8 bytes of it
    const bad = Buffer.concat([indexed(2), indexed(4), Buffer.from([0x0f, 0x11]), int(20, 7, 0), Buffer.from('sid=leak')]);
    const s1 = Buffer.concat([H2_PREFACE, SETTINGS, frame(HEADERS, END_HEADERS, 1, bad)]);
    const [o1] = redactRecords([s1]);
    expect(o1!.includes('sid=leak')).toBe(false);
    expect(o1!.subarray(o1!.length - bad.length, o1!.length - bad.length + 2).equals(bad.subarray(0, 2))).toBe(true);

    // a record cut by the capture inside a header block: the table is unknown afterwards
    const b1 = Buffer.concat([indexed(2), addNew('x-name', 'plain'), addNew('x-two', 'also')]);
    const h1 = frame(HEADERS, END_HEADERS, 1, b1);
    const h3 = frame(HEADERS, END_HEADERS, 3, Buffer.concat([indexed(2), litIdx(62, 'maybe-secret')]));
    const rec1 = Buffer.concat([H2_PREFACE, SETTINGS, h1.subarray(0, h1.length - 6)]);
    const [, o2] = redactRecords([rec1, h3], { missing: [6, 0] });
    expect(o2!.includes('maybe-secret')).toBe(false);

    // bytes missing inside a DATA frame only: the table stays known and the same literal is left alone
    const d = frame(DATA, 0, 1, Buffer.alloc(100, 0x61));
    const rec2 = Buffer.concat([H2_PREFACE, SETTINGS, h1, d.subarray(0, 50)]);
    const [, o3] = redactRecords([rec2, h3], { missing: [59, 0] });
    expect(o3!.includes('maybe-secret')).toBe(true);
  });

  it('finds the header block inside padded and prioritised HEADERS and in PUSH_PROMISE, split at every offset', () => {
    const PADDED = 0x8;
    const PRIORITY = 0x20;
    const pad = Buffer.from('PADPAD');
    const block = Buffer.concat([indexed(8), litIdx(55, 'push=secret-one'), litIdx(54, 'x-keep-server')]);
    const headers = frame(HEADERS, END_HEADERS | PADDED | PRIORITY, 1,
      Buffer.concat([Buffer.from([pad.length]), Buffer.from([0, 0, 0, 3, 16]), block, pad]));
    const promised = Buffer.concat([indexed(2), indexed(4), litIdx(32, 'sid=promise-two')]);
    const push = frame(5, END_HEADERS | PADDED, 1, Buffer.concat([Buffer.from([pad.length]), Buffer.from([0, 0, 0, 2]), promised, pad]));
    const stream = Buffer.concat([SETTINGS, push, headers]);
    for (let cut = 1; cut < stream.length; cut++) {
      const r = new PacketRedactor();
      // the client preface makes the connection known as HTTP/2 from its start
      redactRecords([Buffer.concat([H2_PREFACE, SETTINGS])], { redactor: r });
      const out = Buffer.concat(redactRecords([stream.subarray(0, cut), stream.subarray(cut)], { redactor: r, from: SERVER, to: CLIENT }));
      const text = out.toString('latin1');
      expect(text.includes('secret-one') || text.includes('promise-two'), `cut at ${cut}`).toBe(false);
      expect(text.split('PADPAD').length, `cut at ${cut}`).toBe(3);
      expect(text.includes('x-keep-server'), `cut at ${cut}`).toBe(true);
      expect(out.length).toBe(stream.length);
    }
  });

  it('reads a direction that begins as HTTP/1 as HTTP/1 whatever its records\' label, and a first write of "P" as "POST"\'s', () => {
    // (HTTP/2's redaction finds no frame in HTTP/1 text: a connection taken for HTTP/2 had every secret left in clear,
    // whether a label said http2 (helpers before 88b3dce labelled an HTTP/1 server's records so) or its first write was
    // "P", which begins the HTTP/2 preface too)
    const req = Buffer.from('POST /x HTTP/1.1\r\nHost: a\r\nCookie: sid=CLIENTSECRET\r\nAuthorization: Bearer AUTHSECRET\r\nContent-Length: 0\r\n\r\n');
    const res = Buffer.from('HTTP/1.1 200 OK\r\nSet-Cookie: sid=SERVERSECRET\r\nContent-Length: 0\r\n\r\n');
    const cases: [string, Buffer[], string][] = [
      ['labelled http2', [req], 'http2'], ['written "P" first', [req.subarray(0, 1), req.subarray(1)], 'http'],
      ['written "P", "OS" first, labelled http2', [req.subarray(0, 1), req.subarray(1, 3), req.subarray(3)], 'http2'],
    ];
    for (const [what, records, proto] of cases) {
      const r = new PacketRedactor();
      const out = Buffer.concat(redactRecords(records, { proto, redactor: r }));
      const back = Buffer.concat(redactRecords([res], { proto, redactor: r, from: SERVER, to: CLIENT }));
      const left = ['CLIENTSECRET', 'AUTHSECRET'].filter((x) => out.includes(x)).concat(back.includes('SERVERSECRET') ? ['SERVERSECRET'] : []);
      expect([what, left]).toEqual([what, []]);
      expect(out.toString('latin1')).toMatch(/^POST \/x HTTP\/1\.1\r\nHost: a\r\nCookie: x+\r\n/);
    }
  });

  it('reads HTTP/1 records on ports an HTTP/2 connection used before as HTTP/1 (a later connection of the same ends)', () => {
    const r = new PacketRedactor();
    const { stream } = clientBlocks();
    expectRedacted(stream, redactRecords([stream], { redactor: r })[0]!);
    const req = Buffer.from('GET /again HTTP/1.1\r\nHost: a\r\nCookie: sid=REUSEDSECRET\r\n\r\n');
    const [out] = redactRecords([req], { proto: 'http', redactor: r });
    expect(out!.toString('latin1')).toBe(`GET /again HTTP/1.1\r\nHost: a\r\nCookie: ${'x'.repeat('sid=REUSEDSECRET'.length)}\r\n\r\n`);
  });

  it('exports the helper capture whose HTTP/1 server records an old helper labelled http2 with every cookie masked', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tapscope-h1-as-h2-'));
    try {
      const svc = new CoreService({ store: new SessionStore(join(dir, 'store')) });
      const { id } = await svc.openFile({ path: join(import.meta.dirname, '../fixtures/pcapng/ebpf-lo-hooks.pcapng') });
      const out = join(dir, 'red.pcapng');
      await svc.exportSession({ sessionId: id, format: 'pcapng', path: out });
      const text = readFileSync(out).toString('latin1');
      // (in packets, records and the process records' command lines alike; both ends were hooked, and each direction's
      // records go once: 7 cookies in records, the command lines' after them)
      expect(text.match(/(set-)?cookie: [^\r\n"\\]*/gi)?.filter((h) => !/: x+$/.test(h))).toEqual([]);
      expect(text.match(/(set-)?cookie: x+/gi)?.length).toBeGreaterThanOrEqual(10);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('masks values under dynamic-table names on a connection seen mid-way (no preface: table unknown)', () => {
    const h = frame(HEADERS, END_HEADERS, 7, Buffer.concat([indexed(2), litIdx(62, 'unknown-name-value'), litIdx(15, 'x-static-ok')]));
    const [out] = redactRecords([h], { from: SERVER, to: CLIENT });
    expect(out!.includes('unknown-name-value')).toBe(false);
    expect(out!.includes('x-static-ok')).toBe(true);
  });
});

describe('garbage', () => {
  it('never throws and keeps every length on random records, mutated HTTP/2 streams and random h2c segments (seeded)', () => {
    let seed = 5;
    const rnd = (n: number): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
    const bytes = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => rnd(256)));
    const { stream } = clientBlocks();
    for (let round = 0; round < 300; round++) {
      const mutated = Buffer.from(stream);
      for (let k = 1 + rnd(8); k > 0; k--) mutated[H2_PREFACE.length + rnd(mutated.length - H2_PREFACE.length)] = rnd(256);
      const records = [mutated.subarray(0, 30 + rnd(100)), mutated.subarray(130), bytes(rnd(300))];
      redactRecords(records, { missing: [0, rnd(3) * 50, 0] });
      redactRecords([bytes(1 + rnd(500)), bytes(1 + rnd(500))], { from: SERVER, to: CLIENT });
      const r = new PacketRedactor();
      for (let k = 0; k < 5; k++) {
        const f = ethernet(ipPacket('tcp', { src: CLIENT.ip, dst: SERVER.ip, sport: CLIENT.port, dport: 80, seq: 7000 + rnd(400), flags: 0x18, payload: k === 0 ? mutated : bytes(1 + rnd(300)) }));
        expect(r.packet(1, f, 's').length).toBe(f.length);
      }
    }
  });
});

describe('cleartext HTTP/2 (h2c) over TCP', () => {
  const C = { src: CLIENT.ip, dst: SERVER.ip, sport: CLIENT.port, dport: 80 };
  const ISN = 3000;
  const seg = (seq: number, payload: Buffer, flags = 0x18): Buffer => ethernet(ipPacket('tcp', { ...C, seq, flags, payload }));
  const payloadOf = (frame: Buffer): Buffer => decodePacket(1, frame)!.payload;
  /** Feeds SYN + segments [seq offset, bytes] of the client stream; returns the redacted payloads. */
  const feed = (pieces: [number, Buffer][]): Buffer[] => {
    const r = new PacketRedactor();
    r.packet(1, seg(ISN, Buffer.alloc(0), 0x02), 's');
    return pieces.map(([off, bytes]) => {
      const f = seg(ISN + 1 + off, bytes);
      const out = r.packet(1, f, 's');
      expect(out.length).toBe(f.length);
      return payloadOf(out);
    });
  };

  it('masks every secret with the stream split into two segments at every offset', () => {
    const { stream } = clientBlocks();
    for (let cut = H2_PREFACE.length; cut < stream.length; cut++) {
      const out = Buffer.concat(feed([[0, stream.subarray(0, cut)], [cut, stream.subarray(cut)]]));
      try {
        expectRedacted(stream, out);
      } catch (e) {
        throw new Error(`cut at ${cut}: ${(e as Error).message}`);
      }
    }
  });

  it('holds an early segment until the gap before it is filled, so the frames after stay in step', () => {
    const { stream } = clientBlocks();
    // after request 3 the dynamic table holds x-later (62) and authorization (63)
    const extra = frame(HEADERS, END_HEADERS | END_STREAM, 7, Buffer.concat([indexed(2), litIdx(63, 'Bearer after-gap'), litIdx(15, 'x-keep-after')]));
    // the gap [40, 90) holds request 1's header block: the segment after it cannot be placed until it comes
    const [, early, filler, later] = feed([[0, stream.subarray(0, 40)], [90, stream.subarray(90)], [40, stream.subarray(40, 90)], [stream.length, extra]]);
    expect(early!.equals(Buffer.alloc(stream.length - 90, 0x78))).toBe(true);
    expect(filler!.includes('Bearer first')).toBe(false);
    expect(filler!.includes('api.test')).toBe(true);
    expect(later!.toString('latin1')).toContain(`${'x'.repeat('Bearer after-gap'.length)}\x0f\x00\x0cx-keep-after`);
  });

  it('never lets a raw secret through with random cuts, duplicates, reordering and overlapping retransmissions (seeded)', () => {
    const { stream } = clientBlocks();
    const raws = ['Bearer first', 'Bearer second-raw', 'Bearer 4th'];
    let seed = 9;
    const rnd = (n: number): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
    for (let round = 0; round < 300; round++) {
      const cuts = [...new Set(Array.from({ length: 1 + rnd(6) }, () => H2_PREFACE.length + rnd(stream.length - H2_PREFACE.length)))].sort((a, b) => a - b);
      const bounds = [0, ...cuts, stream.length];
      const pieces: [number, Buffer][] = bounds.slice(0, -1).map((a, i) => [a, stream.subarray(a, bounds[i + 1])]);
      const sent = [...pieces];
      for (let k = rnd(4); k > 0; k--) {
        const a = rnd(stream.length - 1);
        sent.splice(1 + rnd(sent.length), 0, rnd(2) ? pieces[rnd(pieces.length)]! : [a, stream.subarray(a, a + 1 + rnd(stream.length - a - 1))]);
      }
      for (let k = rnd(3); k > 0 && sent.length > 2; k--) {
        const i = 1 + rnd(sent.length - 2);
        [sent[i], sent[i + 1]] = [sent[i + 1]!, sent[i]!];
      }
      const out = feed(sent);
      const text = out.map((o) => o.toString('latin1'));
      expect(raws.filter((r) => text.some((t) => t.includes(r))), `round ${round}`).toEqual([]);
      const rebuilt = Buffer.alloc(stream.length);
      sent.forEach(([off], i) => out[i]!.copy(rebuilt, off));
      expect(raws.filter((r) => rebuilt.includes(r)), `round ${round}`).toEqual([]);
    }
  });

  it('gives a retransmitted segment the same masks; data filling a gap inside DATA stays, other late data is masked', () => {
    const { stream } = clientBlocks();
    const dataAt = stream.indexOf('body bytes');
    const [a, b, again, gapFill] = feed([
      [0, stream.subarray(0, dataAt + 2)],
      // 'body bytes' is DATA: a gap of 4 bytes inside it, then the rest of the stream
      [dataAt + 6, stream.subarray(dataAt + 6)],
      [dataAt + 6, stream.subarray(dataAt + 6)],
      [dataAt + 2, stream.subarray(dataAt + 2, dataAt + 6)],
    ]);
    expect(again!.equals(b!)).toBe(true);
    expect(gapFill!.toString('latin1')).toBe('dy b');
    expectRedacted(stream, Buffer.concat([a!, gapFill!, b!]));
    // a late piece of a header block cannot be placed: masked whole
    const [, , late] = feed([[0, stream.subarray(0, 200)], [200, stream.subarray(200)], [100, stream.subarray(100, 150)]]);
    expect(late!.equals(Buffer.alloc(50, 0x78))).toBe(true);
  });
});

/**
 * A TCP conversation's packets (built by `build` into a capture) read in order by one PacketRedactor: each
 * direction's redacted payloads, joined, and the segments' apart.
 */
function redactConversation(build: (b: CaptureBuilder) => void, serverPort: number): { c2s: Buffer; s2c: Buffer; s2cSegments: Buffer[] } {
  const b = new CaptureBuilder();
  build(b);
  const r = new PacketRedactor();
  const c2s: Buffer[] = [];
  const s2c: Buffer[] = [];
  for (const block of parseBuffer(b.build())) {
    if (block.type !== 'epb') continue;
    const out = r.packet(block.iface.linkType, block.data, 's');
    expect(out.length).toBe(block.data.length);
    const d = decodePacket(block.iface.linkType, out)!;
    if (d.payload.length > 0) (d.dstPort === serverPort ? c2s : s2c).push(Buffer.from(d.payload));
  }
  return { c2s: Buffer.concat(c2s), s2c: Buffer.concat(s2c), s2cSegments: s2c };
}

describe('cleartext HTTP/2 reached by Upgrade, or taken up in the middle of its connection', () => {
  const UP = { ip: SERVER.ip, port: 8088 };
  const upRequest = 'GET /up HTTP/1.1\r\nHost: up.test\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nCookie: c=up-req-cookie\r\n\r\n';
  const head101 = 'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n';
  // the answer to the upgraded request (stream 1) puts set-cookie in the server's dynamic table (62); its next answer
  // sends a value under that name
  const answer1 = Buffer.concat([indexed(8), addIdx(55, 'sid=up-set-cookie-1'), litIdx(31, 'text/plain')]);
  const server1 = Buffer.concat([Buffer.from(head101), SETTINGS, frame(HEADERS, END_HEADERS, 1, answer1), frame(DATA, END_STREAM, 1, Buffer.from('hi'))]);
  const request3 = Buffer.concat([indexed(2), indexed(6), indexed(4), litIdx(1, 'up.test'), addNew('authorization', 'Bearer up-auth-1')]);
  const client2 = Buffer.concat([H2_PREFACE, SETTINGS, frame(HEADERS, END_HEADERS | END_STREAM, 3, request3)]);
  const answer3 = Buffer.concat([indexed(8), litIdx(62, 'sid=up-set-cookie-2')]);
  const request5 = Buffer.concat([indexed(2), indexed(6), indexed(4), litIdx(1, 'up.test'), litIdx(62, 'Bearer up-auth-2')]);
  const upSecrets = ['up-req-cookie', 'up-set-cookie-1', 'up-set-cookie-2', 'up-auth-1', 'up-auth-2'];

  it('h2c by Upgrade: the server\'s 101 and its first frames, before the client\'s preface, in one segment or cut anywhere', () => {
    for (let cut = 1; cut <= server1.length; cut++) {
      // (cut === its length: the 101's segment whole)
      const { c2s, s2c } = redactConversation((b) => tcpConversation(b, CLIENT, UP,
        [Buffer.from(upRequest), null, client2, frame(HEADERS, END_HEADERS | END_STREAM, 5, request5)],
        [server1.subarray(0, cut), cut < server1.length ? server1.subarray(cut) : null, frame(HEADERS, END_HEADERS | END_STREAM, 3, answer3)]), UP.port);
      const text = Buffer.concat([c2s, s2c]).toString('latin1');
      expect([cut, upSecrets.filter((x) => text.includes(x))]).toEqual([cut, []]);
      // the server's frames still decode with one HPACK table: its second answer's cookie under the name its first added
      const answers = decodeBlocks(blocksOf(s2c, head101.length));
      expect(answers.map((h) => h.map(([n, v]) => `${n}=${v.replace(/^[x0*-]+$/, '*')}`))).toEqual([[':status=200', 'set-cookie=*', 'content-type=text/plain'], [':status=200', 'set-cookie=*']]);
      expect(decodeBlocks(blocksOf(c2s, upRequest.length + H2_PREFACE.length)).flat().filter(([n]) => n === 'authorization').map(([, v]) => /^x+$/.test(v))).toEqual([true, true]);
    }
  });

  it('a 101 with "Upgrade: h2c" in a body\'s text, not followed by the server\'s SETTINGS, does not turn the direction to HTTP/2', () => {
    const body = `see:\r\n${head101}and more text\r\n`;
    const { s2c } = redactConversation((b) => tcpConversation(b, CLIENT, UP, [Buffer.from('GET /a HTTP/1.1\r\nHost: up.test\r\n\r\n'), Buffer.from('GET /b HTTP/1.1\r\nHost: up.test\r\n\r\n')],
      [Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`), Buffer.from('HTTP/1.1 200 OK\r\nSet-Cookie: sid=after-body-101\r\nContent-Length: 0\r\n\r\n')]), UP.port);
    expect(s2c.toString('latin1')).toContain(`Set-Cookie: ${'x'.repeat('sid=after-body-101'.length)}\r\n`);
  });

  // a connection open before the capture began (plaintext gRPC's long-lived one): no SYN, no preface
  const MID = { ip: SERVER.ip, port: 50051 };
  const call = (stream: number, extra: Buffer[]): Buffer => frame(HEADERS, END_HEADERS, stream,
    Buffer.concat([indexed(3), indexed(6), litIdx(4, '/svc/Call'), litIdx(1, 'grpc.test'), ...extra]));
  const midSecrets = ['mid-auth-1', 'mid-cookie-1', 'mid-setcookie-0', 'mid-setcookie-1', 'mid-dynamic-server', 'mid-dynamic-client'];
  /** Segments [client?, bytes] of a connection taken up in the middle, in this order, each direction's sequence numbers running on. */
  const midstream = (segments: [boolean, Buffer][]): (b: CaptureBuilder) => void => (b) => {
    const seq = { c: 70000, s: 90000 };
    for (const [client, payload] of segments) {
      const [src, dst] = client ? [CLIENT, MID] : [MID, CLIENT];
      b.tcp({ src: src.ip, dst: dst.ip, sport: src.port, dport: dst.port, seq: client ? seq.c : seq.s, ack: 1, flags: 0x18, payload });
      if (client) seq.c += payload.length; else seq.s += payload.length;
    }
  };

  it('h2c taken up in the middle: secrets under static names and every literal under an unknown dynamic name masked, either side first', () => {
    const request = Buffer.concat([call(101, [litIdx(23, 'Bearer mid-auth-1', false, true), litIdx(32, 'c=mid-cookie-1', true)]), frame(DATA, END_STREAM, 101, Buffer.from('\0\0\0\0\x02hi'))]);
    const answer = Buffer.concat([frame(HEADERS, END_HEADERS, 101, Buffer.concat([indexed(8), litIdx(55, 'srv=mid-setcookie-1'), litIdx(62, 'mid-dynamic-server')])), frame(DATA, END_STREAM, 101, Buffer.from('\0\0\0\0\x02ok'))]);
    const later = call(103, [litIdx(63, 'mid-dynamic-client')]);
    // (the server's first segment begins inside a DATA frame sent before: no frame starts it, so it is masked whole)
    const tail = Buffer.concat([Buffer.from('z'.repeat(30)), frame(HEADERS, END_HEADERS, 99, Buffer.concat([indexed(8), litIdx(55, 'srv=mid-setcookie-0')]))]);
    for (const order of ['client first', 'server first']) {
      const segments: [boolean, Buffer][] = order === 'client first'
        ? [[true, request], [false, tail], [false, answer], [true, later]]
        : [[false, answer], [true, request], [true, later]];
      const { c2s, s2c, s2cSegments } = redactConversation(midstream(segments), MID.port);
      const text = Buffer.concat([c2s, s2c]).toString('latin1');
      expect([order, midSecrets.filter((x) => text.includes(x))]).toEqual([order, []]);
      // what is not secret stays for Wireshark
      expect([order, ['/svc/Call', 'grpc.test', '\x02ok'].filter((x) => !text.includes(x))]).toEqual([order, []]);
      if (order === 'client first') expect(s2cSegments[0]!.equals(Buffer.alloc(tail.length, 0x78))).toBe(true);
    }
  });

  it('connections taken up in the middle that are not HTTP/2 are left as they were: TLS records, and HTTP/1 masked as before', () => {
    const appData = Buffer.concat([Buffer.from([0x17, 3, 3, 0, 40]), Buffer.alloc(40, 0x5a), Buffer.from([0x17, 3, 3, 0, 10]), Buffer.alloc(10, 0x00)]);
    const tls = redactConversation(midstream([[true, appData], [false, appData], [true, appData.subarray(7)]]), MID.port);
    expect(tls.c2s.equals(Buffer.concat([appData, appData.subarray(7)]))).toBe(true);
    // a binary protocol's segment that begins like a frame header, but whose "frame" does not end with it
    const binary = Buffer.concat([Buffer.from([0, 0, 0x40, 0, 0, 0, 0, 0, 1]), Buffer.alloc(30, 0xab)]);
    const other = redactConversation(midstream([[true, binary], [true, Buffer.alloc(100, 0xab)]]), MID.port);
    expect(other.c2s.equals(Buffer.concat([binary, Buffer.alloc(100, 0xab)]))).toBe(true);
    const h1 = redactConversation(midstream([[true, Buffer.from('GET /x HTTP/1.1\r\nCookie: c=mid-h1-cookie\r\n\r\n')], [false, Buffer.from('HTTP/1.1 204 No Content\r\nSet-Cookie: s=mid-h1-set\r\n\r\n')]]), MID.port);
    expect(Buffer.concat([h1.c2s, h1.s2c]).toString('latin1')).toBe(`GET /x HTTP/1.1\r\nCookie: ${'x'.repeat(15)}\r\n\r\nHTTP/1.1 204 No Content\r\nSet-Cookie: ${'x'.repeat(12)}\r\n\r\n`);
    // an HTTP/1 direction stays one when a segment of a body reads as frames (a body may be any bytes)
    const framesLike = frame(DATA, 0, 1, Buffer.from('abc'));
    const next = 'HTTP/1.1 204 No Content\r\nSet-Cookie: s=after\r\n\r\n';
    const body = redactConversation(midstream([[false, Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${framesLike.length + 4}\r\n\r\n`)], [false, framesLike], [false, Buffer.from(`zzzz${next}`)]]), MID.port);
    expect(body.s2cSegments[2]!.toString('latin1')).toBe(`zzzz${next.replace('s=after', 'xxxxxxx')}`);
  });

  it('tshark reads both from the redacted export, with every secret masked (and with --include-secrets, in clear)', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'tsr-h2c-'));
    try {
      const b = new CaptureBuilder();
      tcpConversation(b, CLIENT, UP, [Buffer.from(upRequest), client2, frame(HEADERS, END_HEADERS | END_STREAM, 5, request5)], [server1, frame(HEADERS, END_HEADERS | END_STREAM, 3, answer3)]);
      midstream([[true, call(101, [litIdx(23, 'Bearer mid-auth-1', false, true), litIdx(32, 'c=mid-cookie-1', true)])],
        [false, frame(HEADERS, END_HEADERS | END_STREAM, 101, Buffer.concat([indexed(8), litIdx(55, 'srv=mid-setcookie-1')]))]])(b);
      const { redacted, all } = await exportBothWays(b, tmp, 'h2c-up-mid');
      const headers = (file: string): string[] => {
        const t = spawnSync('tshark', ['-r', file, '-d', `tcp.port==${MID.port},http2`, '-Y', 'http2.type == 1', '-T', 'fields', '-E', 'occurrence=a', '-e', 'http2.header.name', '-e', 'http2.header.value'], { encoding: 'utf8' });
        expect(t.status, t.stderr).toBe(0);
        return t.stdout.trim().split('\n').flatMap((l) => { const [n, v] = l.split('\t'); return n!.split(',').map((name, i) => `${name}=${v!.split(',')[i]}`); });
      };
      const red = headers(redacted);
      const secret = /^(authorization|cookie|set-cookie)=/;
      // (every header block of both connections decodes: the upgraded one's server table followed from its 101)
      expect(red.filter((h) => secret.test(h)).map((h) => h.replace(/=[x0*-]+$/, '=*'))).toEqual(
        ['set-cookie=*', 'authorization=*', 'set-cookie=*', 'authorization=*', 'authorization=*', 'cookie=*', 'set-cookie=*']);
      expect(red).toContain('content-type=text/plain');
      expect([...upSecrets, ...midSecrets].filter((x) => readFileSync(redacted).includes(x))).toEqual([]);
      expect(headers(all).filter((h) => secret.test(h))).toEqual(['set-cookie=sid=up-set-cookie-1', 'authorization=Bearer up-auth-1', 'set-cookie=sid=up-set-cookie-2',
        'authorization=Bearer up-auth-2', 'authorization=Bearer mid-auth-1', 'cookie=c=mid-cookie-1', 'set-cookie=srv=mid-setcookie-1']);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('decrypted records of a connection the hooks took up in the middle (labelled "data": no preface seen) are read as HTTP/2 by their frames', () => {
    const h = frame(HEADERS, END_HEADERS, 9, Buffer.concat([indexed(2), litIdx(23, 'Bearer rec-mid-auth', false, true), litIdx(62, 'rec-mid-dynamic'), litIdx(15, 'x-static-ok')]));
    const [out] = redactRecords([h], { proto: 'data' });
    expect(['rec-mid-auth', 'rec-mid-dynamic'].filter((x) => out!.includes(x))).toEqual([]);
    expect(out!.includes('x-static-ok')).toBe(true);
  });
});

describe('HTTP/2 redaction checked with tshark', () => {
  const fields = ['-Y', 'http2.type == 1', '-T', 'fields', '-E', 'occurrence=a', '-e', 'http2.header.name', '-e', 'http2.header.value'];
  let tmp: string;
  beforeAll(() => { tmp = mkdtempSync(join(tmpdir(), 'tsr-h2-')); });
  afterAll(() => { rmSync(tmp, { recursive: true, force: true }); });

  it('tshark decodes every header block of the redacted export, with no secret value left', async () => {
    const { stream } = clientBlocks();
    const b = new CaptureBuilder();
    b.tls(CLIENT, SERVER, 'out', stream, { pid: 5, comm: 'client', lib: 'openssl', proto: 'http2' });
    const { redacted: red, all } = await exportBothWays(b, tmp, 'h2');
    const t = spawnSync('tshark', ['-r', red, ...fields], { encoding: 'utf8' });
    expect(t.status, t.stderr).toBe(0);
    const [names, values] = t.stdout.trim().split('\t');
    const pairs = names!.split(',').map((n, i) => [n, values!.split(',')[i]]);
    expect(pairs.filter(([n]) => n === ':authority').map(([, v]) => v)).toEqual(['api.test', 'api.test']);
    expect(pairs.filter(([n]) => n === 'x-pad' || n === 'x-later').map(([, v]) => v)).toEqual(['keep-pad', 'visible-pad', 'later-value']);
    expect(pairs.filter(([n]) => isSecretName(n!)).every(([, v]) => /^[x0*-]+$/.test(v!))).toBe(true);
    expect(pairs.filter(([n]) => isSecretName(n!))).toHaveLength(SECRETS.length);
    expect(SECRETS.filter((x) => t.stdout.includes(x) || readFileSync(red).includes(x))).toEqual([]);
    const t2 = spawnSync('tshark', ['-r', all, ...fields], { encoding: 'utf8' });
    expect(SECRETS.filter((x) => t2.stdout.includes(x))).toEqual(SECRETS);
  });

  it('tshark decodes cleartext HTTP/2 (h2c) on the wire after the export, with the secret masked', async () => {
    const block = Buffer.concat([indexed(2), indexed(6), indexed(4), litIdx(1, 'h2c.test'), litIdx(23, 'Bearer h2c-secret'), litIdx(32, 'sid=h2c-huff', true)]);
    const b = new CaptureBuilder();
    tcpConversation(b, CLIENT, { ip: SERVER.ip, port: 8080 }, [Buffer.concat([H2_PREFACE, SETTINGS, frame(HEADERS, END_HEADERS | END_STREAM, 1, block)])], [SETTINGS]);
    const { redacted: red, all } = await exportBothWays(b, tmp, 'h2c');
    const t = spawnSync('tshark', ['-r', red, ...fields], { encoding: 'utf8' });
    expect(t.stdout.trim()).toMatch(new RegExp(`^:method,:scheme,:path,:authority,authorization,cookie\tGET,http,/,h2c\\.test,x{17},[x0*-]{12}$`));
    expect(spawnSync('tshark', ['-r', all, ...fields], { encoding: 'utf8' }).stdout).toContain('Bearer h2c-secret,sid=h2c-huff');
  });
});
