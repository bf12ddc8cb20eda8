// pcapng reader/writer: golden fixtures from dumpcap/tcpdump, both byte orders, every chunking, malformed
// input, random mutations, and the writer checked by tshark.
import { describe, it, expect, afterAll } from 'vitest';
import { appendFileSync, readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import {
  PcapngParser, PcapngReader, parseBuffer, readBlocks, encodeShb, encodeIdb, encodeEpb, encodeIsb, encodeTapscopeRecord,
  encodeNrb, encodeDsb, encodeCustom, buildExportedPdu, parseExportedPdu, parseTlsComment, tsFromMs,
  type PcapngBlock, type PacketBlock, type RawPacketSink,
} from '../../src/pcapng/index.js';
import { newFraming, wholeBlocks } from '../../src/pcapng/framing.js';
import { readPacketAt } from '../../src/pcapng/block-at.js';
import { BLOCK_EPB, BLOCK_OBSOLETE_PB } from '../../src/pcapng/types.js';
import { analyzeFiles } from '../../src/flows/load.js';
import { exportCapture } from '../../src/export/index.js';
import { isTapscopeError, TapscopeError } from '../../src/errors.js';
import { CaptureBuilder, tcpConversation } from './core-packet-builder.js';

const FIX = join(import.meta.dirname, '../fixtures/pcapng');
const pcapng = readFileSync(join(FIX, 'lo-udp.pcapng'));
const pcapngBe = readFileSync(join(FIX, 'lo-udp-be.pcapng'));
const pcap = readFileSync(join(FIX, 'lo-udp.pcap'));
const expected = JSON.parse(readFileSync(join(FIX, 'lo-udp.expected.json'), 'utf8')) as {
  shb: { hardware: string; os: string; userappl: string };
  iface: { name: string; description: string; linkType: number; snapLen: number; tsresol: number };
  packets: { timeEpoch: string; len: number; capLen: number; payloadHex: string }[];
};
const expectedPcap = JSON.parse(readFileSync(join(FIX, 'lo-udp.pcap.expected.json'), 'utf8')) as typeof expected;
const tmp = mkdtempSync(join(tmpdir(), 'tsc-pcapng-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A comparable view of blocks (no offsets, data as hex, bigint as string). */
function view(blocks: PcapngBlock[]): unknown[] {
  return blocks.map((b) => JSON.parse(JSON.stringify(b, (k, v: unknown) => {
    if (k === 'offset' || k === 'littleEndian') return undefined;
    if (typeof v === 'bigint') return v.toString();
    if (v && typeof v === 'object' && (v as { type?: string }).type === 'Buffer') return Buffer.from((v as { data: number[] }).data).toString('hex');
    return v;
  })));
}

function ticksString(p: PacketBlock): string {
  const ns = (BigInt(p.tsHigh) << 32n) | BigInt(p.tsLow);
  const per = BigInt(p.iface.unitsPerSecond);
  const frac = (ns % per).toString().padStart(String(p.iface.unitsPerSecond).length - 1, '0');
  return `${ns / per}.${frac}`;
}

/** The blocks of `buf` pushed `size` bytes at a time; packets `packet` takes in place are not among them. */
function parseChunked(buf: Buffer, size: number, packet: RawPacketSink | null = null): PcapngBlock[] {
  const out: PcapngBlock[] = [];
  const p = new PcapngParser();
  for (let i = 0; i < buf.length; i += size) p.push(buf.subarray(i, i + size), (b) => out.push(b), packet);
  p.end();
  return out;
}

function expectMalformed(buf: Buffer, text: RegExp, offset: number): void {
  let err: unknown;
  try {
    parseBuffer(buf);
  } catch (e) {
    err = e;
  }
  expect(isTapscopeError(err, 'E_PCAPNG_MALFORMED'), String(err)).toBe(true);
  expect((err as TapscopeError).message).toMatch(text);
  expect((err as TapscopeError).message).toContain(`at offset ${offset}`);
}

describe('pcapng reader: golden fixture (dumpcap on lo)', () => {
  const blocks = parseBuffer(pcapng);
  const packets = blocks.filter((b): b is PacketBlock => b.type === 'epb');

  it('decodes the section header and interface as capinfos reports them', () => {
    const shb = blocks[0];
    expect(shb?.type).toBe('shb');
    if (shb?.type !== 'shb') return;
    expect({ hardware: shb.hardware, os: shb.os, userappl: shb.userappl }).toEqual(expected.shb);
    const idb = blocks.find((b) => b.type === 'idb');
    expect(idb?.type === 'idb' && {
      name: idb.iface.name, description: idb.iface.description, linkType: idb.iface.linkType, snapLen: idb.iface.snapLen, tsresol: idb.iface.tsresol,
    }).toEqual(expected.iface);
  });

  it('decodes every packet with the timestamp, lengths and payload tshark shows', () => {
    expect(packets).toHaveLength(expected.packets.length);
    packets.forEach((p, i) => {
      const e = expected.packets[i]!;
      expect(ticksString(p)).toBe(e.timeEpoch);
      expect(p.origLen).toBe(e.len);
      expect(p.capLen).toBe(e.capLen);
      expect(p.data.toString('hex').endsWith(e.payloadHex)).toBe(true);
      expect(p.tsMs).toBeCloseTo(Number(e.timeEpoch) * 1000, 0);
    });
  });

  it('reads the big-endian rewrite of the same capture into identical blocks', () => {
    const be = parseBuffer(pcapngBe);
    expect(be[0]?.type === 'shb' && be[0].littleEndian).toBe(false);
    expect(view(be)).toEqual(view(blocks));
  });

  it('reads classic pcap (tcpdump) files', () => {
    const pb = parseBuffer(pcap).filter((b): b is PacketBlock => b.type === 'epb');
    expect(pb).toHaveLength(expectedPcap.packets.length);
    pb.forEach((p, i) => {
      const e = expectedPcap.packets[i]!;
      expect(ticksString(p)).toBe(e.timeEpoch.replace(/000$/, ''));
      expect(p.origLen).toBe(e.len);
      expect(p.iface.linkType).toBe(1);
      expect(p.data.toString('hex').endsWith(e.payloadHex)).toBe(true);
    });
  });

  it('gives identical blocks for every chunk size (stride test)', () => {
    const whole = view(blocks);
    for (let size = 1; size <= 97; size++) expect(view(parseChunked(pcapng, size)), `chunk ${size}`).toEqual(whole);
    for (let size = 1; size <= 41; size += 4) expect(view(parseChunked(pcap, size))).toEqual(view(parseBuffer(pcap)));
  });

  it('streams through the Transform with backpressure and the same result', async () => {
    const got: PcapngBlock[] = [];
    const chunks: Buffer[] = [];
    for (let i = 0; i < pcapng.length; i += 13) chunks.push(pcapng.subarray(i, i + 13));
    await pipeline(Readable.from(chunks), new PcapngReader(), new Writable({
      objectMode: true, highWaterMark: 1,
      write(b: PcapngBlock, _e, cb) { got.push(b); setImmediate(cb); },
    }));
    expect(view(got)).toEqual(view(blocks));
  });
});

describe('pcapng reader: file reads', () => {
  /** A capture of `n` packets of 1,000 bytes each, numbered in their first four bytes from `from`. */
  const packets = (from: number, n: number): Buffer => Buffer.concat(Array.from({ length: n }, (_, i) => {
    const data = Buffer.alloc(1000, 0xab);
    data.writeUInt32BE(from + i, 0);
    return encodeEpb({ interfaceId: 0, ...tsFromMs(1_732_620_000_000 + from + i), data });
  }));
  const head = Buffer.concat([encodeShb({}), encodeIdb({ linkType: 1, snapLen: 65535 })]);
  // (block data points into reused read buffers: the number is taken as the block is delivered)
  const numberOf = (b: PcapngBlock): number[] => (b.type === 'epb' ? [b.data.readUInt32BE(0)] : []);

  it('a file that grows while its reads ahead are in flight is read whole, in order, without a gap', async () => {
    // 100 packets (~100 KiB) read 65,541 bytes at a time: the second read is short (the end of the file as it
    // was) and the third finds nothing. While the first read's blocks are parsed, and after the reads ahead
    // have ended, 300 more packets are appended: they must be read after the short read's bytes.
    const f = join(tmp, 'growing.pcapng');
    writeFileSync(f, Buffer.concat([head, packets(0, 100)]));
    let grown = false;
    const got: number[] = [];
    await readBlocks(f, (b) => {
      got.push(...numberOf(b));
      if (!grown && b.type === 'epb') {
        grown = true;
        const until = Date.now() + 100;
        while (Date.now() < until) { /* the reads ahead end at the old end of the file meanwhile */ }
        appendFileSync(f, packets(100, 300));
      }
    }, { readSize: 65_541 });
    expect(got).toEqual(Array.from({ length: 400 }, (_, i) => i));
  });

  it('a FIFO is read as it is written, in pieces, as a file is', async () => {
    const fifo = join(tmp, 'capture.fifo');
    execFileSync('mkfifo', [fifo]);
    const bytes = Buffer.concat([head, packets(0, 500)]);
    const src = join(tmp, 'fifo-src.pcapng');
    writeFileSync(src, bytes);
    // a writer that sends the capture in three pieces with pauses: reads come back short, mid-block
    const writer = spawn('sh', ['-c', '{ head -c 30001 "$0"; sleep 0.1; tail -c +30002 "$0" | head -c 200000; sleep 0.1; tail -c +230002 "$0"; } > "$1"', src, fifo]);
    // (listened for at once: the writer may be gone before the read ends)
    const exited = new Promise((r) => writer.once('exit', r));
    const got: number[] = [];
    await readBlocks(fifo, (b) => got.push(...numberOf(b)));
    await exited;
    expect(got).toEqual(Array.from({ length: 500 }, (_, i) => i));
  });
});

describe('pcapng reader: truncated and malformed input', () => {
  const all = parseBuffer(pcapng);
  const third = all[3]!;

  it('rejects a partial last block with E_PCAPNG_TRUNCATED and its offset, after delivering the complete ones', async () => {
    const cut = pcapng.subarray(0, third.offset + 10);
    const got: PcapngBlock[] = [];
    const reader = new PcapngReader();
    reader.on('data', (b: PcapngBlock) => got.push(b));
    const err = await new Promise<unknown>((resolve) => {
      reader.on('error', resolve);
      reader.on('end', () => resolve(null));
      reader.end(cut);
    });
    expect(isTapscopeError(err, 'E_PCAPNG_TRUNCATED')).toBe(true);
    expect((err as TapscopeError).message).toContain(`offset ${third.offset}`);
    expect(view(got)).toEqual(view(all.slice(0, 3)));
  });

  it('tolerates the truncated tail when asked (crash recovery)', async () => {
    const f = join(tmp, 'cut.pcapng');
    writeFileSync(f, pcapng.subarray(0, third.offset + 10));
    const got: PcapngBlock[] = [];
    const res = await readBlocks(f, (b) => got.push(b), { tolerateTruncatedTail: true });
    expect(res.truncated).toEqual({ offset: third.offset, pending: 10 });
    expect(got).toHaveLength(3);
    await expect(readBlocks(f, () => undefined)).rejects.toMatchObject({ code: 'E_PCAPNG_TRUNCATED' });
    await expect(readBlocks(join(tmp, 'none.pcapng'), () => undefined)).rejects.toMatchObject({ code: 'E_FILE_NOT_FOUND' });
  });

  it('stops at a block damaged in the middle when asked, with every block before it delivered and the error returned', async () => {
    const f = join(tmp, 'damaged.pcapng');
    const broken = Buffer.from(pcapng);
    broken.writeUInt32LE(30, third.offset + 4);
    writeFileSync(f, broken);
    for (const readSize of [7, 1 << 16]) {
      const got: PcapngBlock[] = [];
      const res = await readBlocks(f, (b) => got.push(b), { tolerateDamage: true, tolerateTruncatedTail: true, readSize });
      expect(view(got), `read size ${readSize}`).toEqual(view(all.slice(0, 3)));
      expect(res.truncated).toBeNull();
      expect(res.damaged).toMatchObject({ code: 'E_PCAPNG_MALFORMED', message: `block length 30 is not a multiple of 4 at offset ${third.offset}` });
      expect(res.bytes).toBe(third.offset);
    }
    // without the option, and for a file that is no capture at all (nothing before the damage), it throws
    await expect(readBlocks(f, () => undefined)).rejects.toMatchObject({ code: 'E_PCAPNG_MALFORMED' });
    const junk = join(tmp, 'junk.pcapng');
    writeFileSync(junk, Buffer.from('definitely not a capture'));
    await expect(readBlocks(junk, () => undefined, { tolerateDamage: true })).rejects.toMatchObject({ code: 'E_PCAPNG_MALFORMED', details: { offset: 0 } });
  });

  it('tells a packet block whose damaged length reaches past the end of the file from a capture cut off inside it', async () => {
    const epb = all.find((b) => b.type === 'epb' && b.offset > third.offset)!;
    const f = join(tmp, 'long.pcapng');
    const broken = Buffer.from(pcapng);
    // 2 MiB: past the end of the file, and more than its packet and any options could need
    broken.writeUInt32LE(2 * 1024 * 1024, epb.offset + 4);
    writeFileSync(f, broken);
    for (const readSize of [7, 1 << 16]) {
      const got: PcapngBlock[] = [];
      const res = await readBlocks(f, (b) => got.push(b), { tolerateDamage: true, tolerateTruncatedTail: true, readSize });
      expect(res.truncated, `read size ${readSize}`).toBeNull();
      expect(res.damaged?.message).toMatch(new RegExp(`enhanced packet block length 2097152 leaves \\d+ bytes after its \\d+-byte packet \\(its length is damaged\\) at offset ${epb.offset}`));
      expect(view(got)).toEqual(view(all.filter((b) => b.offset < epb.offset)));
    }
    // a capture really cut off inside that block is still a cut tail
    const cut = join(tmp, 'cut-epb.pcapng');
    writeFileSync(cut, pcapng.subarray(0, epb.offset + 40));
    const res = await readBlocks(cut, () => undefined, { tolerateDamage: true, tolerateTruncatedTail: true });
    expect([res.truncated?.offset, res.damaged]).toEqual([epb.offset, null]);
  });

  it('goes on at the next section after a damaged block: one node\'s broken stream does not take the next ones along', async () => {
    // three sections, as a merged multi-node capture holds them: the first's fourth block damaged; the second ends cut
    // inside a block (a stream that stopped mid-block, another appended after it) whose length runs past the file's end;
    // the damaged bytes hold a section header's first bytes that are no section header (its trailing length differs)
    const damaged = Buffer.from(pcapng);
    damaged.writeUInt32LE(30, third.offset + 4);
    const fakeShb = Buffer.from(pcapng.subarray(0, all[1]!.offset));
    fakeShb.writeUInt32LE(0, fakeShb.length - 4);
    damaged.set(fakeShb.subarray(0, Math.min(fakeShb.length, damaged.length - third.offset - 8)), third.offset + 8);
    const cutAt = all[all.length - 1]!.offset + 10;
    const secondAt = damaged.length;
    const thirdAt = secondAt + cutAt;
    const f = join(tmp, 'sections.pcapng');
    writeFileSync(f, Buffer.concat([damaged, pcapng.subarray(0, cutAt), pcapngBe]));
    for (const readSize of [7, 1 << 16]) {
      const got: PcapngBlock[] = [];
      const res = await readBlocks(f, (b) => got.push(b), { tolerateDamage: true, tolerateTruncatedTail: true, readSize });
      const at = `read size ${readSize}`;
      expect(res.skipped.map((d) => [d.error.details?.offset, d.resumedAt]), at).toEqual([[third.offset, secondAt], [secondAt + all[all.length - 1]!.offset, thirdAt]]);
      expect([res.damaged, res.truncated, res.bytes], at).toEqual([null, null, thirdAt + pcapngBe.length]);
      // every complete block of each section, with its own offsets
      const big = parseBuffer(pcapngBe);
      expect(view(got), at).toEqual(view([...all.slice(0, 3), ...all.slice(0, all.length - 1), ...big]));
      expect(got.filter((b) => b.type === 'shb').map((b) => b.offset), at).toEqual([0, secondAt, thirdAt]);
    }
    // a cut block whose length runs past the end of the file, over all of the short section after it: not a cut tail
    const short = encodeShb({});
    const lastAt = all[all.length - 1]!.offset;
    expect(lastAt + 108 - cutAt).toBeGreaterThan(short.length);
    const over = join(tmp, 'cut-over.pcapng');
    writeFileSync(over, Buffer.concat([pcapng.subarray(0, cutAt), short]));
    const shbs: number[] = [];
    const r = await readBlocks(over, (b) => { if (b.type === 'shb') shbs.push(b.offset); }, { tolerateDamage: true, tolerateTruncatedTail: true });
    expect([r.truncated, r.damaged, shbs]).toEqual([null, null, [0, cutAt]]);
    expect(r.skipped.map((d) => [d.error.message, d.resumedAt])).toEqual([[`block cut off by the section header block at offset ${cutAt} at offset ${lastAt}`, cutAt]]);
    // with no section after the damage, the read stops there as before
    const alone = join(tmp, 'damaged-alone.pcapng');
    writeFileSync(alone, damaged);
    const res = await readBlocks(alone, () => undefined, { tolerateDamage: true, tolerateTruncatedTail: true });
    expect([res.skipped, res.damaged?.details?.offset]).toEqual([[], third.offset]);
  });

  it('names the offset for each kind of corruption', () => {
    const at = third.offset;
    const withLen = (len: number): Buffer => { const b = Buffer.from(pcapng); b.writeUInt32LE(len, at + 4); return b; };
    expectMalformed(withLen(8), /less than 12/, at);
    expectMalformed(withLen(30), /not a multiple of 4/, at);
    expectMalformed(withLen(300 * 1024 * 1024), /absurd/, at);
    const trailer = Buffer.from(pcapng);
    const len = trailer.readUInt32LE(at + 4);
    trailer.writeUInt32LE(len + 4, at + len - 4);
    expectMalformed(trailer, /trailing length/, at);
    expectMalformed(Buffer.from('GET / HTTP/1.1\r\n\r\n'), /not a pcapng or pcap file/, 0);
    const badIface = Buffer.from(pcapng);
    const firstEpb = all.find((b) => b.type === 'epb')!;
    badIface.writeUInt32LE(7, firstEpb.offset + 8);
    expectMalformed(badIface, /interface 7/, firstEpb.offset);
    const badBom = Buffer.from(pcapng);
    badBom.writeUInt32LE(0x12345678, 8);
    expectMalformed(badBom, /byte-order magic/, 0);
  });

  it('survives random mutations with only TapscopeErrors (fuzz smoke)', () => {
    let seed = 12345;
    const rnd = (n: number): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
    const codes = new Set<string>();
    for (let i = 0; i < 3000; i++) {
      const src = i % 3 === 0 ? pcap : i % 3 === 1 ? pcapngBe : pcapng;
      const b = Buffer.from(src.subarray(0, rnd(src.length) + 1));
      const mutations = 1 + rnd(6);
      for (let m = 0; m < mutations; m++) b[rnd(b.length)] = rnd(256);
      try {
        parseChunked(b, 1 + rnd(300));
        codes.add('ok');
      } catch (e) {
        if (!(e instanceof TapscopeError)) throw e;
        codes.add(e.code);
      }
    }
    expect(codes.has('E_PCAPNG_MALFORMED')).toBe(true);
    expect(codes.has('E_PCAPNG_TRUNCATED')).toBe(true);
  });
});

describe('pcapng reader: obsolete packet blocks (type 2, as early writers wrote; tshark reads them)', () => {
  /**
   * The capture with each EPB written as the obsolete Packet Block it replaced, in its section's byte order: the same
   * length, timestamp, data and options; the 32-bit interface id a 16-bit one and a 16-bit drops count.
   */
  function asObsolete(capture: Buffer, drops = 3): Buffer {
    const out = Buffer.from(capture);
    const f = newFraming();
    wholeBlocks(out, 0, f, (start) => {
      if ((f.le ? out.readUInt32LE(start) : out.readUInt32BE(start)) !== BLOCK_EPB) return;
      const id = f.le ? out.readUInt32LE(start + 8) : out.readUInt32BE(start + 8);
      if (f.le) {
        out.writeUInt32LE(BLOCK_OBSOLETE_PB, start);
        out.writeUInt16LE(id, start + 8);
        out.writeUInt16LE(drops, start + 10);
      } else {
        out.writeUInt32BE(BLOCK_OBSOLETE_PB, start);
        out.writeUInt16BE(id, start + 8);
        out.writeUInt16BE(drops, start + 10);
      }
    });
    return out;
  }
  const orders = { le: pcapng, be: pcapngBe };
  /** The blocks and the packets taken in place when `buf` is pushed `size` bytes at a time, with and without a raw sink. */
  const bothWays = (buf: Buffer, size: number): unknown => {
    const inPlace: unknown[] = [];
    const blocks = parseChunked(buf, size, (iface, b, start, capLen, origLen, tsMs, offset) => {
      inPlace.push({ iface: iface.interfaceId, data: b.toString('hex', start, start + capLen), origLen, tsMs, offset });
      return true;
    });
    return { objects: view(parseChunked(buf, size)), blocks: view(blocks), inPlace };
  };

  it('reads them as the EPBs they were, in both byte orders', () => {
    for (const [order, epbs] of Object.entries(orders)) {
      const pbs = asObsolete(epbs);
      expect(pbs.equals(epbs), order).toBe(false);
      const blocks = parseBuffer(pbs);
      expect(blocks.filter((b) => b.type === 'epb'), order).toHaveLength(expected.packets.length);
      expect(view(blocks), order).toEqual(view(parseBuffer(epbs)));
    }
  });

  it('gives the same blocks, and packets in place, for every chunk size (stride test)', () => {
    for (const [order, epbs] of Object.entries(orders)) {
      const pbs = asObsolete(epbs);
      const whole = bothWays(epbs, epbs.length);
      for (let size = 1; size <= 97; size++) expect(bothWays(pbs, size), `${order} chunk ${size}`).toEqual(whole);
    }
  });

  it('keeps their interface (its 16 bits, not the drops count beside them), flags and comments', () => {
    const b = new CaptureBuilder();
    b.iface('eth0', 1);
    b.packet(Buffer.alloc(60, 1), { iface: 'eth1', flags: 1, comments: ['seen on eth1'] });
    const [packet] = parseBuffer(asObsolete(b.build(), 0xffff)).filter((x) => x.type === 'epb');
    expect(packet).toMatchObject({ iface: { interfaceId: 1, name: 'eth1' }, flags: 1, comments: ['seen on eth1'], capLen: 60 });
  });

  it('gives the flows, packet bytes and export its EPB twin gives', async () => {
    const b = new CaptureBuilder();
    const server = { ip: '10.61.0.2', port: 80 };
    tcpConversation(b, { ip: '10.61.0.1', port: 40100 }, server, [Buffer.from('GET /old HTTP/1.1\r\nHost: pb.test\r\nAuthorization: Bearer PBSECRET\r\n\r\n')],
      [Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')]);
    // (a decrypted record: an exported PDU with its flags and comment)
    b.tls({ ip: '10.61.0.1', port: 40101 }, { ...server, port: 443 }, 'out', Buffer.from('GET /tls HTTP/1.1\r\nHost: pb.test\r\n\r\n'), { pid: 9, comm: 'curl', lib: 'openssl' });
    const epbs = b.build();
    const paths = { epb: join(tmp, 'twin-epb.pcapng'), pb: join(tmp, 'twin-pb.pcapng') };
    writeFileSync(paths.epb, epbs);
    writeFileSync(paths.pb, asObsolete(epbs));
    const flows = async (path: string): Promise<unknown> => (await analyzeFiles([{ path }])).analyzer.flows();
    const got = await flows(paths.pb);
    expect(got).toEqual(await flows(paths.epb));
    expect((got as { http: { path: string; status: number | null }[] }[]).flatMap((f) => f.http.map((h) => [h.path, h.status]))).toEqual([['/old', 200], ['/tls', null]]);
    // (a row of a flow's packet list opened for its bytes)
    const offsets = parseBuffer(epbs).flatMap((x) => (x.type === 'epb' ? [x.offset] : []));
    for (const at of offsets) expect(await readPacketAt(paths.pb, at), `offset ${at}`).toEqual(await readPacketAt(paths.epb, at));
    // (exported as EPBs: the file the EPBs export to, redacted or not)
    for (const includeSecrets of [false, true]) {
      const out = (name: string): string => join(tmp, `twin-${name}-${includeSecrets}.out.pcapng`);
      for (const [name, path] of Object.entries(paths)) {
        const { analyzer } = await analyzeFiles([{ path }]);
        await exportCapture([{ path }], analyzer, { format: 'pcapng', out: out(name), includeSecrets });
      }
      const exported = readFileSync(out('pb'));
      expect(parseBuffer(exported).filter((x) => x.type === 'epb')).toHaveLength(offsets.length);
      expect(exported.equals(readFileSync(out('epb'))), `includeSecrets ${includeSecrets}`).toBe(true);
    }
  });

  it('names a damaged one and its offset', () => {
    const pbs = asObsolete(pcapng);
    const first = parseBuffer(pbs).find((x) => x.type === 'epb')!.offset;
    const damaged = (edit: (b: Buffer) => void): Buffer => {
      const b = Buffer.from(pbs);
      edit(b);
      return b;
    };
    expectMalformed(damaged((b) => b.writeUInt16LE(7, first + 8)), /^packet block refers to interface 7 but the section defines 1/, first);
    expectMalformed(damaged((b) => b.writeUInt32LE(0xffff, first + 20)), /^packet captured length 65535 overruns its block/, first);
    // (a 28-byte block: its fields cut before the lengths)
    expectMalformed(damaged((b) => { b.writeUInt32LE(28, first + 4); b.writeUInt32LE(28, first + 24); }), /^packet block is too short \(28 bytes\)/, first);
    expectMalformed(damaged((b) => b.writeUInt32LE(4 * 1024 * 1024, first + 4)), /^packet block length 4194304 leaves \d+ bytes after its \d+-byte packet/, first);
  });
});

describe('pcapng writer', () => {
  it('round-trips every block kind and tshark reads the file without warnings', () => {
    const t0 = tsFromMs(1732620000123.456);
    const http = Buffer.from('GET /hello HTTP/1.1\r\nHost: example.test\r\nUser-Agent: t\r\n\r\n');
    const pdu = buildExportedPdu('http', { ip: '10.202.0.1', port: 41000 }, { ip: '10.202.0.2', port: 443 }, http);
    const file = Buffer.concat([
      encodeShb({ hardware: 'x86_64', os: 'Linux', userappl: 'tapscope test', comments: ['hi'] }),
      encodeTapscopeRecord({ t: 'capture', mode: 'ebpf', reason: 'test', hostname: 'node-1' }),
      encodeIdb({ linkType: 1, snapLen: 262144, name: 'lo', description: 'ifindex=1', tsresol: 9 }),
      encodeIdb({ linkType: 252, snapLen: 0, name: 'tapscope-tls', description: 'decrypted TLS plaintext from uprobes', tsresol: 9 }),
      encodeEpb({ interfaceId: 0, ...t0, data: Buffer.alloc(60, 1), origLen: 1500, flags: 2, comments: ['a packet'] }),
      encodeEpb({ interfaceId: 1, ...t0, data: pdu, flags: 2, comments: ['tapscope-tls pid=7 tid=7 comm=curl lib=openssl fn=SSL_write dir=out len=58 trunc=0'] }),
      encodeNrb([{ kind: 'ipv4', address: '10.202.0.2', names: ['example.test'] }, { kind: 'ipv6', address: 'fd00::2', names: ['v6.test'] }]),
      encodeDsb(0x544c534b, Buffer.from('CLIENT_RANDOM 00 11\n')),
      encodeCustom(99, Buffer.from([1, 2, 3]), false),
      encodeIsb({ interfaceId: 0, ...t0, ifRecv: 5n, ifDrop: 1n, osDrop: 0n }),
    ]);
    const blocks = parseBuffer(file);
    expect(blocks.map((b) => b.type)).toEqual(['shb', 'custom', 'idb', 'idb', 'epb', 'epb', 'nrb', 'dsb', 'custom', 'isb']);
    const [shb, cb, idb, , epb, tls, nrb, dsb, other, isb] = blocks;
    expect(shb?.type === 'shb' && [shb.hardware, shb.os, shb.userappl, shb.comments]).toEqual(['x86_64', 'Linux', 'tapscope test', ['hi']]);
    expect(cb?.type === 'custom' && cb.json).toEqual({ t: 'capture', mode: 'ebpf', reason: 'test', hostname: 'node-1' });
    expect(idb?.type === 'idb' && [idb.iface.name, idb.iface.description, idb.iface.unitsPerSecond]).toEqual(['lo', 'ifindex=1', 1e9]);
    expect(epb?.type === 'epb' && [epb.capLen, epb.origLen, epb.flags, epb.comments, Math.round(epb.tsMs)]).toEqual([60, 1500, 2, ['a packet'], 1732620000123]);
    if (tls?.type !== 'epb') throw new Error('no tls epb');
    const parsed = parseExportedPdu(tls.data);
    expect(parsed && { p: parsed.protoName, s: parsed.src, d: parsed.dst, body: parsed.payload.toString() }).toEqual({
      p: 'http', s: { ip: '10.202.0.1', port: 41000, v4: (10 << 24) | (202 << 16) | 1 }, d: { ip: '10.202.0.2', port: 443, v4: (10 << 24) | (202 << 16) | 2 }, body: http.toString(),
    });
    // IPv6 ends carry no IPv4 key, but an IPv4 address mapped into IPv6 does (as its IPv4 form would)
    const six = parseExportedPdu(buildExportedPdu('data', { ip: 'fd00::1', port: 1 }, { ip: '::ffff:192.168.0.1', port: 2 }, Buffer.from('x')));
    expect([six?.src?.v4, six?.dst?.v4, six?.protoName]).toEqual([null, (192 << 24) | (168 << 16) | 1, 'data']);
    expect(parseTlsComment(tls.comments[0]!)).toMatchObject({ comm: 'curl', lib: 'openssl', dir: 'out', len: '58' });
    expect(nrb?.type === 'nrb' && nrb.records).toEqual([
      { kind: 'ipv4', address: '10.202.0.2', names: ['example.test'] }, { kind: 'ipv6', address: 'fd00::2', names: ['v6.test'] },
    ]);
    expect(dsb?.type === 'dsb' && dsb.data.toString()).toBe('CLIENT_RANDOM 00 11\n');
    expect(other?.type === 'custom' && [other.pen, other.copiable, other.json]).toEqual([99, false, undefined]);
    expect(isb?.type === 'isb' && [isb.ifRecv, isb.ifDrop, isb.osDrop]).toEqual([5n, 1n, 0n]);

    const f = join(tmp, 'w.pcapng');
    writeFileSync(f, file);
    const r = spawnSync('tshark', ['-r', f, '-Y', 'http.request', '-T', 'fields', '-e', 'http.host', '-e', 'http.request.uri'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stderr.split('\n').filter((l) => l && !l.startsWith('Running as user'))).toEqual([]);
    expect(r.stdout.trim()).toBe('example.test\t/hello');
    const count = execFileSync('capinfos', ['-c', '-M', f], { encoding: 'utf8' });
    expect(count).toMatch(/Number of packets:\s+2/);
  });
});

describe('decrypted records (exported PDU)', () => {
  it('reads each record of a run in place: its own tags and payload, also when the last record\'s tags are shared', () => {
    let seed = 5;
    const rnd = (n: number): number => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return (seed >>> 8) % n; };
    const ends = [
      [{ ip: '10.0.0.1', port: 40000 }, { ip: '10.0.0.2', port: 443 }], [{ ip: '10.0.0.1', port: 40001 }, { ip: '10.0.0.2', port: 443 }],
      [{ ip: '10.0.0.1', port: 40000 }, { ip: '10.0.0.2', port: 444 }],
      [{ ip: '10.0.0.2', port: 443 }, { ip: '10.0.0.1', port: 40000 }], [{ ip: '10.0.1.1', port: 40000 }, { ip: '10.0.0.2', port: 443 }],
      [{ ip: 'fd00::1', port: 40000 }, { ip: 'fd00::2', port: 443 }], [{ ip: '::ffff:10.0.0.1', port: 40000 }, { ip: 'fd00::2', port: 443 }],
    ] as const;
    const protos = ['http', 'data', 'http2', 'dat'];
    const want: { proto: string; src: string; dst: string; payload: string }[] = [];
    const parts: Buffer[] = [];
    const at: [number, number][] = [];
    let off = 0;
    for (let i = 0; i < 400; i++) {
      // runs: mostly the last record's tags again
      const last = want.at(-1);
      const [src, dst] = last && rnd(4) > 0 ? ends.find(([a, b]) => `${a.ip}|${a.port}` === last.src && `${b.ip}|${b.port}` === last.dst)! : ends[rnd(ends.length)]!;
      const proto = last && rnd(4) > 0 ? last.proto : protos[rnd(protos.length)]!;
      const payload = Buffer.from(Array.from({ length: rnd(40) }, () => 0x41 + rnd(26)));
      const pad = Buffer.alloc(rnd(3) * 4, 0xee);
      const rec = buildExportedPdu(proto, src, dst, payload);
      parts.push(pad, rec);
      at.push([off + pad.length, off + pad.length + rec.length]);
      off += pad.length + rec.length;
      want.push({ proto, src: `${src.ip}|${src.port}`, dst: `${dst.ip}|${dst.port}`, payload: payload.toString() });
    }
    const buf = Buffer.concat(parts);
    for (let i = 0; i < want.length; i++) {
      const [start, end] = at[i]!;
      const p = parseExportedPdu(buf, start, end);
      const got = p && { proto: p.protoName, src: `${p.src?.ip}|${p.src?.port}`, dst: `${p.dst?.ip}|${p.dst?.port}`, payload: p.payload.toString() };
      expect(got, `record ${i}`).toEqual(want[i]);
      expect(buf.subarray(p!.payloadOffset, end).toString()).toBe(want[i]!.payload);
    }
    // a record cut inside its tags after a complete one with the same start is malformed, not the last parse
    const [s0, e0] = at[0]!;
    expect(parseExportedPdu(buf, s0, e0)).not.toBeNull();
    expect(parseExportedPdu(buf, s0, s0 + 12)).toBeNull();
  });

  it('LastText gives each option text without its NUL padding, decoded or remembered', async () => {
    const { LastText } = await import('../../src/pcapng/bytes.js');
    const t = new LastText();
    const texts = ['tapscope-tls pid=1 dir=in len=1200', 'tapscope-tls pid=1 dir=in len=1200', 'tapscope-tls pid=1 dir=in len=1201',
      'tapscope-tls pid=1 dir=on len=1201', 'héllo', 'héllo', 'hëllo', '', 'x'.repeat(300), 'x'.repeat(299) + 'y', 'x'.repeat(300), 'a', 'a\u0000b'];
    for (const [i, s] of texts.entries()) {
      const nul = Buffer.alloc(i % 4);
      const b = Buffer.concat([Buffer.from('zz'), Buffer.from(s), nul, Buffer.from('q')]);
      expect(t.of(b, 2, b.length - 1), `text ${i}`).toBe(s);
    }
  });
  it('parseTlsComment reads every attribution key as splitting on spaces does, on 20k mutated comments', async () => {
    const { parseTlsComment } = await import('../../src/pcapng/exported-pdu.js');
    // what the comment means (FORMAT.md): space-separated key=value after the first token; the last of a
    // repeated key counts; a piece without '=' or with an empty key is no pair
    const byPieces = (c: string): Record<string, string> | null => {
      if (!c.startsWith('tapscope-tls')) return null;
      const out: Record<string, string> = {};
      for (const part of c.split(' ').slice(1)) {
        const eq = part.indexOf('=');
        if (eq > 0) out[part.slice(0, eq)] = part.slice(eq + 1);
      }
      return out;
    };
    const keys = ['pid', 'tid', 'comm', 'lib', 'fn', 'dir', 'len', 'trunc', 'conn', 'netns'];
    const known = (o: Record<string, string> | null): Record<string, string> | null => (o ? Object.fromEntries(keys.filter((k) => o[k] !== undefined).map((k) => [k, o[k]!])) : null);
    let seed = 11;
    const rnd = (n: number): number => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return (seed >>> 8) % n; };
    const pieces = ['pid=4242', 'tid=4243', 'comm=curl', 'lib=openssl', 'fn=SSL_write', 'dir=out', 'dir=in', 'len=78', 'trunc=0', 'conn=fd', 'netns=4026531840',
      'len=', '=x', 'junk', 'pid==1', 'x=y', 'comm=a=b', 'lib', 'pidx=1', 'netns=1', ''];
    const comments = ['tapscope-tls', 'tapscope-tls ', 'tapscope-tlsx pid=1', 'other pid=1', 'tapscope-tls pid=4242 tid=4242 comm=curl lib=openssl fn=SSL_write dir=out len=78 trunc=0 conn=fd netns=4026531840'];
    for (let i = 0; i < 20_000; i++) comments.push(['tapscope-tls', ...Array.from({ length: rnd(12) }, () => pieces[rnd(pieces.length)]!)].join(' '));
    for (const c of comments) {
      const got = parseTlsComment(c);
      expect(got && known(got as unknown as Record<string, string>), c).toEqual(known(byPieces(c)));
    }
    // a record's attribution: the first comment that is one; repeated text (the cache) and a change both right
    const { tlsAttrsOf } = await import('../../src/pcapng/exported-pdu.js');
    const seq = [['x', comments[4]!], [comments[4]!], [comments[6]!], ['y'], [comments[4]!], [comments[4]!], [], [comments[7]!, comments[8]!]];
    for (const cs of seq) {
      const want = cs.map(byPieces).find((x) => x !== null) ?? null;
      const got = tlsAttrsOf(cs);
      expect(got && known(got as unknown as Record<string, string>), cs.join(' | ')).toEqual(known(want));
    }
  });
});
