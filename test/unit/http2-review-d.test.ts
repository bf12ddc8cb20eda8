// HTTP/2 decoding found wrong by review D (against tshark 4.0.17): a PUSH_PROMISE continued by CONTINUATION (on the
// stream it came on, RFC 9113 §6.10); an HPACK bomb (a header block's fields were all built before the 64 KiB cap);
// a legal HPACK table above 1 MiB; and a direction whose decoding stopped with no word of why. Frames are built here,
// field by field (test/unit/export-h2-frames.ts), as the reviewer's captures had them.
import { describe, it, expect } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { Http2Parser, H2_PREFACE, HEADER_BYTES_CAP } from '../../src/dissect/http2.js';
import type { HttpMessage } from '../../src/dissect/http1.js';
import { CaptureBuilder, analyzeCapture, tcpConversation } from './core-packet-builder.js';
import { FlowJsonLines } from '../../src/model/flow-json.js';
import { har } from '../../src/export/index.js';
import { compileFilter } from '../../src/filter/index.js';
import { SETTINGS, addNew, frame, indexed, int, litIdx, str } from './export-h2-frames.js';

const HEADERS = 1;
const DATA = 0;
const PUSH_PROMISE = 5;
const CONTINUATION = 9;
const END_STREAM = 0x1;
const END_HEADERS = 0x4;

/** A request's head: :method GET, :scheme http, :path, :authority example.test (the last two literal, not indexed). */
const request = (p: string): Buffer => Buffer.concat([indexed(2), indexed(6), litIdx(4, p), litIdx(1, 'example.test')]);
const STATUS_200 = indexed(8);
const STATUS_404 = indexed(13);
/** A dynamic table size update (§6.3) to `n`, up to 2^32-1 (export-h2-frames' int() shifts in 32 bits, signed). */
function sizeUpdateTo(n: number): Buffer {
  if (n < 31) return Buffer.from([0x20 | n]);
  const out = [0x3f];
  for (n -= 31; n >= 128; n = Math.floor(n / 128)) out.push(0x80 | (n % 128));
  out.push(n);
  return Buffer.from(out);
}

function parse(side: 'client' | 'server', bytes: Buffer, chunk = bytes.length): { msgs: HttpMessage[]; p: Http2Parser } {
  const p = new Http2Parser(side);
  const msgs: HttpMessage[] = [];
  for (let o = 0; o < bytes.length; o += chunk) msgs.push(...p.push(bytes.subarray(o, o + chunk), o));
  return { msgs, p };
}
const header = (m: HttpMessage, k: string): string | undefined => m.headers.find(([n]) => n === k)?.[1];

describe('a PUSH_PROMISE continued by CONTINUATION on the stream it came on', () => {
  // (review D's push-cont.pcap: the promise's block cut after 3 bytes, its CONTINUATION on stream 1, as nghttp2 sends a
  // promise longer than a frame)
  const promise = request('/pushed.css');
  // (the client asks for /page; the server promises /pushed.css and answers both; then the client asks for /after)
  const client = [Buffer.concat([H2_PREFACE, SETTINGS, frame(HEADERS, END_STREAM | END_HEADERS, 1, request('/page'))]), frame(HEADERS, END_STREAM | END_HEADERS, 3, request('/after'))];
  const answers = [
    Buffer.concat([
      SETTINGS,
      frame(PUSH_PROMISE, 0, 1, Buffer.concat([Buffer.from([0, 0, 0, 2]), promise.subarray(0, 3)])),
      frame(CONTINUATION, END_HEADERS, 1, promise.subarray(3)),
      frame(HEADERS, END_HEADERS, 1, STATUS_200), frame(DATA, END_STREAM, 1, Buffer.from('page')),
      frame(HEADERS, END_HEADERS, 2, STATUS_200), frame(DATA, END_STREAM, 2, Buffer.from('css')),
    ]),
    frame(HEADERS, END_STREAM | END_HEADERS, 3, STATUS_404),
  ];
  const server = Buffer.concat(answers);

  it('the pushed request, and every answer after it, are read, in every chunk size', () => {
    for (const chunk of [server.length, 1, 7, 9, 10, 23]) {
      const { msgs, p } = parse('server', server, chunk);
      expect(p.failure).toBeNull();
      expect(msgs.map((m) => [m.kind, m.streamId, m.path ?? m.status, m.body.toString()])).toEqual([
        ['request', 2, '/pushed.css', ''], ['response', 1, 200, 'page'], ['response', 2, 200, 'css'], ['response', 3, 404, ''],
      ]);
    }
  });

  it('the flow lists the pushed exchange and the later request with its answer', () => {
    const b = new CaptureBuilder();
    tcpConversation(b, { ip: '10.203.4.1', port: 40000 }, { ip: '10.203.4.2', port: 8080 }, [client[0]!, null, client[1]!, null], [null, answers[0]!, null, answers[1]!]);
    const f = analyzeCapture(b.build()).flows()[0]!;
    expect(f.http.map((x) => [x.path, x.status])).toEqual([['/page', 200], ['/pushed.css', 200], ['/after', 404]]);
  });

  it('a CONTINUATION on another stream than its block\'s still ends the direction, saying which', () => {
    const bad = Buffer.concat([SETTINGS, frame(PUSH_PROMISE, 0, 1, Buffer.concat([Buffer.from([0, 0, 0, 2]), promise.subarray(0, 3)])), frame(CONTINUATION, END_HEADERS, 2, promise.subarray(3))]);
    const { p } = parse('server', bad);
    expect(p.failure).toBe(`frame 3 (CONTINUATION, stream 2) at byte ${9 + 9 + 7}: a CONTINUATION on stream 2 while the header block on stream 1 was not ended`);
  });
});

describe('an HPACK bomb: a block\'s fields past 64 KiB of headers are counted, not built', () => {
  it('a 4 MiB block naming a 4000-byte entry 4 million times decodes in a 64 MB heap, the table kept in step', () => {
    // (stream 1 adds x-bomb: 4000 bytes to the table; stream 3's block in one frame names it 4,194,304 times (index 62),
    // then adds x-after, which stream 5 names: inserted although past the cap. Before, every field was built, a
    // [name, value] each, before the cap applied: 850 MB for 8 MiB, here an out-of-memory crash.)
    const bytes = Buffer.concat([
      H2_PREFACE, SETTINGS,
      frame(HEADERS, END_STREAM | END_HEADERS, 1, Buffer.concat([request('/seed'), addNew('x-bomb', 'B'.repeat(4000))])),
      frame(HEADERS, END_STREAM | END_HEADERS, 3, Buffer.concat([request('/bomb'), Buffer.alloc(4 << 20, 0xbe), addNew('x-after', 'in-step')])),
      frame(HEADERS, END_STREAM | END_HEADERS, 5, Buffer.concat([request('/next'), indexed(62), indexed(63)])),
    ]);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'h2-bomb-'));
    try {
      fs.writeFileSync(path.join(dir, 'c2s'), bytes);
      const script = `
        import fs from 'node:fs';
        const { Http2Parser } = await import(${JSON.stringify(path.join(import.meta.dirname, '../../src/dissect/http2.ts'))});
        const bytes = fs.readFileSync(${JSON.stringify(path.join(dir, 'c2s'))});
        const p = new Http2Parser('client');
        const msgs = [];
        for (let o = 0; o < bytes.length; o += 1448) msgs.push(...p.push(bytes.subarray(o, o + 1448), o));
        console.log(JSON.stringify({ failure: p.failure ?? null, msgs: msgs.map((m) => ({ path: m.path, headers: m.headers, dropped: m.headersDropped ?? 0 })) }));`;
      const run = spawnSync(process.execPath, ['--max-old-space-size=64', '--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', maxBuffer: 64 << 20, cwd: path.join(import.meta.dirname, '../..') });
      expect(run.stderr.slice(-400)).not.toMatch(/heap out of memory/);
      expect(run.status).toBe(0);
      const got = JSON.parse(run.stdout) as { failure: string | null; msgs: { path: string; headers: [string, string][]; dropped: number }[] };
      expect(got.failure).toBeNull();
      expect(got.msgs.map((m) => m.path)).toEqual(['/seed', '/bomb', '/next']);
      const bomb = got.msgs[1]!;
      const size = bomb.headers.reduce((n, [k, v]) => n + k.length + v.length, 0);
      expect(size).toBeLessThanOrEqual(HEADER_BYTES_CAP);
      expect(size).toBeGreaterThan(HEADER_BYTES_CAP - 4010);
      expect(bomb.headers.length + bomb.dropped).toBe(4 + (4 << 20) + 1);
      expect(got.msgs[2]!.headers.slice(4)).toEqual([['x-after', 'in-step'], ['x-bomb', 'B'.repeat(4000)]]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('past the cap, a literal field is still inserted, and a pseudo-header still names the request', () => {
    // (a block of 20 references to a 4000-byte entry fills the 64 KiB; then, not kept: :path literal, a field without
    // indexing and one added to the table; the next block names the latter)
    const bytes = Buffer.concat([
      H2_PREFACE, SETTINGS,
      frame(HEADERS, END_STREAM | END_HEADERS, 1, Buffer.concat([indexed(2), indexed(6), addNew('x-big', 'a'.repeat(4000)), Buffer.alloc(20, 0xbe),
        litIdx(4, '/late-path'), litIdx(58, 'skipped', true), addNew('x-late', 'kept in the table', true)])),
      frame(HEADERS, END_STREAM | END_HEADERS, 3, Buffer.concat([request('/next'), indexed(62)])),
    ]);
    const { msgs, p } = parse('client', bytes);
    expect(p.failure).toBeNull();
    expect(msgs.map((m) => [m.method, m.path, m.headers.length, m.headersDropped])).toEqual([['GET', '/late-path', 2 + 1 + 15, 5 + 3], ['GET', '/next', 5, undefined]]);
    expect(header(msgs[1]!, 'x-late')).toBe('kept in the table');
  });
});

describe('an HPACK table above 1 MiB (SETTINGS_HEADER_TABLE_SIZE allows up to 2^32-1)', () => {
  it('size updates to 2 MiB and to 2^32-1 are taken; their entries are named later', () => {
    // (review D's hpack-2mib-table.pcap: a size update to 2 MiB heads the server's first block; before, above 1 MiB the
    // table threw and every answer after was lost. 2^32-1 needs a 5-byte integer.)
    const server = Buffer.concat([
      SETTINGS,
      frame(HEADERS, END_STREAM | END_HEADERS, 1, Buffer.concat([sizeUpdateTo(2 << 20), STATUS_200, addNew('x-c', 'zzzzzzzzzz')])),
      frame(HEADERS, END_STREAM | END_HEADERS, 3, Buffer.concat([sizeUpdateTo(0xffffffff), STATUS_200, indexed(62)])),
    ]);
    expect(sizeUpdateTo(0xffffffff).length).toBe(6);
    const { msgs, p } = parse('server', server);
    expect(p.failure).toBeNull();
    expect(msgs.map((m) => [m.streamId, m.status, header(m, 'x-c')])).toEqual([[1, 200, 'zzzzzzzzzz'], [3, 200, 'zzzzzzzzzz']]);
    expect(p.hpackTableSize).toBe(0xffffffff);
  });

  it('of a table declared 2^32-1, the entries kept stop at 16 MiB; naming one let go ends the direction, saying so', () => {
    // (17 entries of 1 MiB: the 2 oldest go. The oldest kept is index 61 + 15; its name is taken for a short field.)
    const mib = 'v'.repeat(1 << 20);
    const frames = [SETTINGS, frame(HEADERS, END_STREAM | END_HEADERS, 1, Buffer.concat([sizeUpdateTo(0xffffffff), STATUS_200]))];
    for (let i = 0; i < 17; i++) frames.push(frame(HEADERS, END_STREAM | END_HEADERS, 3 + 2 * i, Buffer.concat([STATUS_200, addNew(`x-${i}`, mib)])));
    frames.push(frame(HEADERS, END_STREAM | END_HEADERS, 101, Buffer.concat([STATUS_200, litIdx(61 + 15, 'named')])));
    frames.push(frame(HEADERS, END_STREAM | END_HEADERS, 103, Buffer.concat([STATUS_200, litIdx(61 + 16, 'named')])));
    const { msgs, p } = parse('server', Buffer.concat(frames));
    expect(msgs.map((m) => m.streamId)).toEqual([1, ...Array.from({ length: 17 }, (_, i) => 3 + 2 * i), 101]);
    expect(msgs.at(-1)!.headers).toEqual([[':status', '200'], ['x-2', 'named']]);
    expect(p.failure).toMatch(/^frame 21 \(HEADERS, stream 103\) at byte \d+: HPACK index 77 names no entry \(the dynamic table holds 15, its oldest let go past Tapscope's bound of 16 MiB\)$/);
  });
});

describe('a direction whose decoding stops says why and where', () => {
  it('an HPACK error: the frame, its stream and offset; the answer in flight is returned, cut short', () => {
    // (stream 1's answer came, its body not all; stream 3's block names index 70 of an empty dynamic table)
    const server = Buffer.concat([SETTINGS, frame(HEADERS, END_HEADERS, 1, Buffer.concat([STATUS_200, litIdx(28, '10')])), frame(DATA, 0, 1, Buffer.from('hello')),
      frame(HEADERS, END_STREAM | END_HEADERS, 3, Buffer.concat([STATUS_200, indexed(70)]))]);
    const { msgs, p } = parse('server', server);
    expect(p.failed).toBe(true);
    const at = server.length - 9 - 2; // (the last frame's: its header, then its block of 2 bytes)
    expect(p.failure).toBe(`frame 4 (HEADERS, stream 3) at byte ${at}: HPACK index 70 names no entry (the dynamic table holds 0)`);
    expect(msgs.map((m) => [m.streamId, m.status, m.body.toString(), m.bodyTruncated])).toEqual([[1, 200, 'hello', true]]);
    expect(p.push(frame(HEADERS, END_STREAM | END_HEADERS, 5, STATUS_200), 1)).toEqual([]);
  });

  it('the flow says which side stopped and why (flow.httpStopped), and the HAR entry left without an answer says so', () => {
    const client = Buffer.concat([H2_PREFACE, SETTINGS, frame(HEADERS, END_STREAM | END_HEADERS, 1, request('/one')), frame(HEADERS, END_STREAM | END_HEADERS, 3, request('/two'))]);
    const server = Buffer.concat([SETTINGS, frame(HEADERS, END_STREAM | END_HEADERS, 1, STATUS_200), frame(HEADERS, END_STREAM | END_HEADERS, 3, indexed(70))]);
    const b = new CaptureBuilder();
    tcpConversation(b, { ip: '10.203.4.1', port: 40002 }, { ip: '10.203.4.2', port: 8080 }, [client, null], [null, server]);
    const a = analyzeCapture(b.build(), { end: true });
    const f = a.flows()[0]!;
    expect(f.http.map((x) => [x.path, x.status])).toEqual([['/one', 200], ['/two', null]]);
    expect(f.httpStopped).toEqual([{ side: 'server', reason: expect.stringMatching(/^frame 3 \(HEADERS, stream 3\) at byte \d+: HPACK index 70 names no entry/) }]);
    expect(compileFilter('http.stopped contains "server: frame 3"')(f)).toBe(true);
    expect(compileFilter('http.stopped contains "client"')(f)).toBe(false);
    const lines = new FlowJsonLines();
    lines.add(f);
    expect(JSON.parse(lines.take().toString()).httpStopped).toEqual(f.httpStopped);
    const entries = (har([f], (id) => a.exchangesOf(id), false) as { log: { entries: { request: { url: string }; response: { comment?: string } }[] } }).log.entries;
    expect(entries.find((e) => e.request.url.endsWith('/two'))!.response.comment).toMatch(/^no response was read: HTTP\/2 decoding of the server's side stopped: frame 3/);
  });

  it('a malformed integer, a string past its block, and a gap each name themselves', () => {
    const overlong = Buffer.concat([Buffer.from([0xff]), Buffer.alloc(5, 0xff), Buffer.from([0x01])]);
    expect(parse('server', Buffer.concat([SETTINGS, frame(HEADERS, END_HEADERS, 1, overlong)])).p.failure).toBe('frame 2 (HEADERS, stream 1) at byte 9: HPACK integer longer than 32 bits');
    const cut = Buffer.concat([STATUS_200, int(0, 4, 0), str('x-long', false), int(100, 7, 0), Buffer.from('short')]);
    expect(parse('server', Buffer.concat([SETTINGS, frame(HEADERS, END_HEADERS, 1, cut)])).p.failure).toBe('frame 2 (HEADERS, stream 1) at byte 9: HPACK string of 100 bytes past its block\'s end (5 left)');
    const { p } = parse('server', Buffer.concat([SETTINGS, frame(HEADERS, END_STREAM | END_HEADERS, 1, STATUS_200)]));
    p.gap();
    expect(p.failure).toBe('bytes missing from the capture after frame 2 (byte 19 on): the HPACK table cannot be followed past them');
  });
});

describe('Huffman strings (the decoder replaced hpack.js\'s: a guard, not a bug found)', () => {
  it('every byte value, raw and in Huffman code, and codes that are not one', () => {
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i)).toString('latin1');
    const block = Buffer.concat([STATUS_200, litIdx(58, all, true), litIdx(58, all, false), litIdx(58, 'café', true), litIdx(58, '', true)]);
    const { msgs, p } = parse('server', Buffer.concat([SETTINGS, frame(HEADERS, END_STREAM | END_HEADERS, 1, block)]));
    expect(p.failure).toBeNull();
    expect(msgs[0]!.headers.slice(1).map(([, v]) => v)).toEqual([all, all, 'café', '']);
    // (a code of 8 one-bits of padding; EOS itself, 30 one-bits)
    for (const [code, why] of [[Buffer.from([0xff]), 'padding'], [Buffer.from([0xff, 0xff, 0xff, 0xff]), 'EOS']] as const) {
      const bad = Buffer.concat([STATUS_200, int(58, 4, 0), int(code.length, 7, 0x80), code]);
      expect(parse('server', Buffer.concat([SETTINGS, frame(HEADERS, END_HEADERS, 1, bad)])).p.failure).toMatch(why === 'EOS' ? /holds EOS$/ : /padding that is not 1 to 7 one-bits$/);
    }
  });
});

describe('HPACK decoding against hpack.js (the library the decoder replaced, as the reference)', () => {
  it('3,000 random header blocks, through one dynamic table each way, decode to what hpack.js decodes', async () => {
    const { createRequire } = await import('node:module');
    const lib = createRequire(import.meta.url)('hpack.js') as {
      compressor: { create(o: unknown): { write(h: unknown[]): void; read(): Buffer | null; updateTableSize(n: number): void; reset(): void } };
      decompressor: { create(o: unknown): { write(b: Buffer): void; execute(): void; read(): { name: string; value: string } | null; on(e: string, f: (e: Error) => void): void } };
    };
    // (a fixed seed: the same blocks every run)
    let seed = 0x2545f491;
    const rnd = (n: number): number => {
      seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5;
      return (seed >>> 0) % n;
    };
    const names = [':path', ':authority', 'user-agent', 'accept', 'cookie', 'x-trace-id', 'content-type', 'grpc-timeout', 'x-é', 'x-long-name-'.repeat(8)];
    const value = (): string => {
      const kind = rnd(4);
      if (kind === 0) return `v${rnd(20)}`;
      if (kind === 1) return String.fromCharCode(...Array.from({ length: rnd(40) }, () => rnd(256)));
      if (kind === 2) return 'x'.repeat(rnd(3000));
      return `/api/${rnd(1000)}?q=${'%20'.repeat(rnd(5))}`;
    };
    for (const tableSize of [0, 256, 4096, 65536]) {
      const comp = lib.compressor.create({ table: { maxSize: tableSize } });
      // (the decoder's table is 4096 bytes until the encoder's first block says otherwise, a size update, as a peer's
      // SETTINGS_HEADER_TABLE_SIZE lets it)
      const dec = lib.decompressor.create({ table: { maxSize: Math.max(4096, tableSize) } });
      let err: Error | null = null;
      dec.on('error', (e) => { err = e; });
      const frames: Buffer[] = [H2_PREFACE, SETTINGS];
      const expected: [string, string][][] = [];
      for (let i = 0; i < 750; i++) {
        if (rnd(50) === 0) comp.reset();
        const fields = [{ name: ':method', value: 'GET' }, ...Array.from({ length: 1 + rnd(12) }, () => ({
          name: names[rnd(names.length)]!, value: value(), huffman: rnd(2) === 0, incremental: rnd(5) !== 0, neverIndex: rnd(10) === 0,
        }))];
        comp.write(fields);
        const chunks: Buffer[] = [];
        for (let c = comp.read(); c; c = comp.read()) chunks.push(c);
        const block = Buffer.concat(i === 0 && tableSize !== 4096 ? [sizeUpdateTo(tableSize), ...chunks] : chunks);
        dec.write(block);
        dec.execute();
        expect(err).toBeNull();
        const want: [string, string][] = [];
        for (let h = dec.read(); h; h = dec.read()) want.push([h.name, h.value]);
        expected.push(want);
        frames.push(frame(HEADERS, END_STREAM | END_HEADERS, 2 * i + 1, block));
      }
      const { msgs, p } = parse('client', Buffer.concat(frames), 1 + rnd(5000));
      expect(p.failure, `table ${tableSize}`).toBeNull();
      expect(msgs.map((m) => m.headers)).toEqual(expected);
    }
  });
});

describe('a stream reset (RST_STREAM) marks its exchange: by whom and why, as tshark shows the frame', () => {
  const RST_STREAM = 3;
  const rst = (stream: number, code: number): Buffer => { const p = Buffer.alloc(4); p.writeUInt32BE(code); return frame(RST_STREAM, 0, stream, p); };

  it('a client that cancels its request, a server that refuses a stream; the other exchanges unmarked', () => {
    // (the client sends /a, /upload and /refused whole; cancels /upload; the server answers /a, refuses /refused)
    const client = [Buffer.concat([H2_PREFACE, SETTINGS, frame(HEADERS, END_STREAM | END_HEADERS, 1, request('/a')), frame(HEADERS, END_STREAM | END_HEADERS, 3, request('/upload')),
      frame(HEADERS, END_STREAM | END_HEADERS, 5, request('/refused'))]), rst(3, 8)];
    const server = [Buffer.concat([SETTINGS, frame(HEADERS, END_STREAM | END_HEADERS, 1, STATUS_200)]), rst(5, 7)];
    const b = new CaptureBuilder();
    tcpConversation(b, { ip: '10.203.5.1', port: 40010 }, { ip: '10.203.5.2', port: 8080 }, [client[0]!, null, client[1]!, null], [null, server[0]!, null, server[1]!]);
    const a = analyzeCapture(b.build(), { end: true });
    const f = a.flows()[0]!;
    expect(f.http.map((x) => [x.path, x.status, x.reset ?? null])).toEqual([
      ['/a', 200, null], ['/upload', null, { by: 'client', error: 'CANCEL' }], ['/refused', null, { by: 'server', error: 'REFUSED_STREAM' }],
    ]);
    expect(a.exchangesOf(f.id).map((e) => e.reset ?? null)).toEqual([null, { by: 'client', error: 'CANCEL' }, { by: 'server', error: 'REFUSED_STREAM' }]);
    expect(compileFilter('http.reset == "client CANCEL"')(f)).toBe(true);
    const entries = (har([f], (id) => a.exchangesOf(id), false) as { log: { entries: { request: { url: string }; response: { comment?: string } }[] } }).log.entries;
    expect(entries.map((e) => e.response.comment ?? '')).toEqual([
      '', 'no response was captured; its HTTP/2 stream was reset by the client (RST_STREAM CANCEL)', 'no response was captured; its HTTP/2 stream was reset by the server (RST_STREAM REFUSED_STREAM)',
    ]);
    expect(compileFilter('http.reset contains "PROTOCOL"')(f)).toBe(false);
  });
});
